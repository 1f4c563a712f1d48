import keras_hub

from tftune.families import hgnetv2
from tftune.families.testing import FamilyCase, run_family_test


def tiny_hgnetv2(directory: str) -> None:
    keras_hub.models.HGNetV2Backbone(
        depths=[1, 1],
        embedding_size=8,
        hidden_sizes=[8, 16],
        stem_channels=[3, 8, 8],
        hidden_act="relu",
        use_learnable_affine_block=False,
        stackwise_stage_filters=[(8, 4, 8, 1, 1, 3), (8, 8, 16, 1, 1, 3)],
        apply_downsample=[False, True],
        use_lightweight_conv_block=[False, False],
    ).save_to_preset(directory)
    keras_hub.layers.HGNetV2ImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=hgnetv2.FAMILY,
    make_preset=tiny_hgnetv2,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

import keras_hub

from tftune.families import efficientnet
from tftune.families.testing import FamilyCase, run_family_test


def tiny_efficientnet(directory: str) -> None:
    keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0],
        stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3],
        stackwise_num_repeats=[1, 1],
        stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16],
        stackwise_expansion_ratios=[1, 2],
        stackwise_squeeze_and_excite_ratios=[0.25, 0.25],
        stackwise_strides=[1, 2],
        # A composite fused block, then plain-layer v1 blocks: both kinds of keras-hub block.
        stackwise_block_types=["fused", "v1"],
        stackwise_force_input_filters=[0, 0],
        stackwise_nores_option=[False, False],
        # num_features stays at its 1280 default: keras-hub 0.32's get_config leaves it out.
    ).save_to_preset(directory)
    keras_hub.layers.EfficientNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=efficientnet.FAMILY,
    make_preset=tiny_efficientnet,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    assert "top_conv" in [layer.name for layer in model.layer_groups[-2].layers]  # the top conv joins the last stage

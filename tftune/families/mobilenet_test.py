import keras_hub

from tftune.families import mobilenet
from tftune.families.testing import FamilyCase, run_family_test


def tiny_mobilenet(directory: str) -> None:
    keras_hub.models.MobileNetBackbone(
        stackwise_expansion=[[16], [24]],
        stackwise_num_blocks=[1, 1],
        stackwise_num_filters=[[8], [16]],
        stackwise_kernel_size=[[3], [3]],
        stackwise_num_strides=[[2], [2]],
        stackwise_se_ratio=[[None], [0.25]],
        stackwise_activation=[["relu"], ["hard_swish"]],
        stackwise_padding=[[1], [1]],
        output_num_filters=32,
        depthwise_filters=8,
        depthwise_stride=2,
        depthwise_residual=False,
        last_layer_filter=32,
        squeeze_and_excite=0.5,
        input_num_filters=8,
    ).save_to_preset(directory)
    keras_hub.layers.MobileNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=mobilenet.FAMILY,
    make_preset=tiny_mobilenet,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    assert [layer.name for layer in model.layer_groups[-2].layers] == ["block_2_0", "block_3_0"]  # last 1x1 block

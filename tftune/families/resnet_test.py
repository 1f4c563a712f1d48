import keras
import keras_hub

from tftune.families import resnet
from tftune.families.testing import FamilyCase, run_family_test


def tiny_resnet(directory: str) -> None:
    keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 8],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
    ).save_to_preset(directory)
    keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=resnet.FAMILY,
    make_preset=tiny_resnet,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_keras_applications_groups():
    backbone = keras.applications.ResNet50V2(weights=None, include_top=False)
    groups = resnet.FAMILY.layer_groups(backbone)
    assert [group.name for group in groups] == ["stem", "stage_1", "stage_2", "stage_3", "stage_4"]
    assert groups[-1].layers[-1].name == "post_relu"  # v2's final BatchNorm joins the last stage

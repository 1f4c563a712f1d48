import keras_hub

from tftune.families import xception
from tftune.families.testing import FamilyCase, run_family_test


def tiny_xception(directory: str) -> None:
    keras_hub.models.XceptionBackbone(
        stackwise_conv_filters=[[4, 8], [16, 16], [16, 16]], stackwise_pooling=[False, True, False]
    ).save_to_preset(directory)
    keras_hub.layers.XceptionImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=xception.FAMILY,
    make_preset=tiny_xception,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

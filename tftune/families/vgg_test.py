import keras_hub

from tftune.families import vgg
from tftune.families.testing import FamilyCase, run_family_test


def tiny_vgg(directory: str) -> None:
    backbone = keras_hub.models.VGGBackbone(stackwise_num_repeats=[1, 2], stackwise_num_filters=[4, 8])
    backbone.save_to_preset(directory)
    keras_hub.layers.VGGImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=vgg.FAMILY,
    make_preset=tiny_vgg,
    groups=("stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

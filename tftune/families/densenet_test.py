import keras_hub

from tftune.families import densenet
from tftune.families.testing import FamilyCase, run_family_test


def tiny_densenet(directory: str) -> None:
    keras_hub.models.DenseNetBackbone(stackwise_num_repeats=[1, 2], growth_rate=4).save_to_preset(directory)
    keras_hub.layers.DenseNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=densenet.FAMILY,
    make_preset=tiny_densenet,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

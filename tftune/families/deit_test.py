import keras_hub

from tftune.families import deit
from tftune.families.testing import FamilyCase, run_family_test


def tiny_deit(directory: str) -> None:
    keras_hub.models.DeiTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16
    ).save_to_preset(directory)
    keras_hub.layers.DeiTImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(family=deit.FAMILY, make_preset=tiny_deit, groups=("patch_embedding", "block_1", "block_2"))


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

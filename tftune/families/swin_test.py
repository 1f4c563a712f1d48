import keras_hub

from tftune.families import swin
from tftune.families.testing import FamilyCase, run_family_test


def tiny_swin(directory: str) -> None:
    keras_hub.models.SwinTransformerBackbone(
        image_shape=(32, 32, 3), embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4, patch_size=4
    ).save_to_preset(directory)
    # What keras-hub's converter makes of a Hugging Face Swin folder: bicubic, antialiased, no crop.
    keras_hub.layers.SwinTransformerImageConverter(
        image_size=(32, 32), scale=1 / 255.0, interpolation="bicubic", antialias=True, crop_to_aspect_ratio=False
    ).save_to_preset(directory)


CASE = FamilyCase(family=swin.FAMILY, make_preset=tiny_swin, groups=("patch_embedding", "stage_1", "stage_2"))


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    assert model.resizing == {"interpolation": "bicubic", "crop_to_aspect_ratio": False, "antialias": True}

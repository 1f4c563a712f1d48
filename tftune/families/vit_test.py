import json
import os

import keras_hub
import numpy as np
import pytest

from tftune.families import vit
from tftune.families.registry import resolve_backbone
from tftune.families.testing import FamilyCase, run_family_test


def tiny_vit(directory: str) -> None:
    keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16
    ).save_to_preset(directory)
    keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 127.5, offset=-1.0).save_to_preset(directory)


CASE = FamilyCase(family=vit.FAMILY, make_preset=tiny_vit, groups=("patch_embedding", "block_1", "block_2"))


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    assert model.image_size == (32, 32)  # the backbone's own size, with no image_size option
    assert model.layer_groups[-2].layers[-1].name == "ln"  # the final norm joins the last block


def _hugging_face_vit(directory: str, preprocessor: dict | None) -> str:
    os.makedirs(directory)
    config = {
        "architectures": ["ViTModel"],
        "model_type": "vit",
        "image_size": 32,
        "patch_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "hidden_size": 8,
        "intermediate_size": 16,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "qkv_bias": True,
    }
    with open(os.path.join(directory, "config.json"), "w") as file:
        json.dump(config, file)
    if preprocessor is not None:
        with open(os.path.join(directory, "preprocessor_config.json"), "w") as file:
            json.dump(preprocessor, file)
    return directory


def test_hugging_face_folder_normalizes_as_its_preprocessor_config_says(tmp_path):
    # keras-hub loads a Hugging Face ViT folder with no image converter (no resize, no normalization).
    preprocessor = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "rescale_factor": 1 / 255, "resample": 2}
    preprocessor.update({"do_center_crop": True, "crop_size": 32, "size": 36})  # the crop is a stated limit
    resolved = resolve_backbone(_hugging_face_vit(str(tmp_path / "vit"), preprocessor), weights=None)
    assert resolved.family is vit.FAMILY and resolved.image_size == (32, 32)
    np.testing.assert_allclose(resolved.normalization["scale"], [2 / 255] * 3)
    np.testing.assert_allclose(resolved.normalization["offset"], [-1.0] * 3)
    assert resolved.resizing == {"interpolation": "bilinear", "crop_to_aspect_ratio": False, "antialias": True}


def test_hugging_face_folder_without_preprocessor_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="preprocessor_config.json"):
        resolve_backbone(_hugging_face_vit(str(tmp_path / "vit"), None), weights=None)

import json
import os

import keras_hub
import numpy as np
import pytest

from tftune.families import swin
from tftune.families.registry import resolve_backbone
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


def _hugging_face_swin(directory: str, with_preprocessor: bool) -> str:
    os.makedirs(directory)
    config = {
        "architectures": ["SwinModel"],
        "model_type": "swin",
        "image_size": 32,
        "patch_size": 4,
        "embed_dim": 8,
        "depths": [1, 1],
        "num_heads": [1, 2],
        "window_size": 4,
        "mlp_ratio": 4.0,
        "qkv_bias": True,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "drop_path_rate": 0.0,
    }
    with open(os.path.join(directory, "config.json"), "w") as file:
        json.dump(config, file)
    if with_preprocessor:
        preprocessor = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "size": 32}
        with open(os.path.join(directory, "preprocessor_config.json"), "w") as file:
            json.dump(preprocessor, file)
    return directory


def test_hugging_face_folder_resizes_bicubic_as_keras_hub_converts_it(tmp_path):
    resolved = resolve_backbone(_hugging_face_swin(str(tmp_path / "swin"), with_preprocessor=True), weights=None)
    assert resolved.family is swin.FAMILY and resolved.image_size == (32, 32)
    assert resolved.resizing == {"interpolation": "bicubic", "crop_to_aspect_ratio": False, "antialias": True}
    np.testing.assert_allclose(resolved.normalization["offset"], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])


def test_hugging_face_folder_without_preprocessor_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="preprocessor_config.json"):
        resolve_backbone(_hugging_face_swin(str(tmp_path / "swin"), with_preprocessor=False), weights=None)

import json

import keras_hub
import numpy as np

from tftune.families import deit
from tftune.families.registry import resolve_backbone
from tftune.families.testing import FamilyCase, run_family_test


def tiny_deit(directory: str) -> None:
    keras_hub.models.DeiTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16
    ).save_to_preset(directory)
    keras_hub.layers.DeiTImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(family=deit.FAMILY, make_preset=tiny_deit, groups=("patch_embedding", "block_1", "block_2"))


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_hugging_face_folder_normalizes_as_its_preprocessor_config_says(tmp_path):
    directory = tmp_path / "deit"
    directory.mkdir()
    config = {
        "architectures": ["DeiTModel"],
        "model_type": "deit",
        "image_size": 32,
        "patch_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "hidden_size": 8,
        "intermediate_size": 16,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": 1e-12,
    }
    (directory / "config.json").write_text(json.dumps(config))
    preprocessor = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 3}
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    resolved = resolve_backbone(str(directory), weights=None)
    assert resolved.family is deit.FAMILY and resolved.image_size == (32, 32)
    np.testing.assert_allclose(resolved.normalization["scale"], [1 / (255 * std) for std in (0.229, 0.224, 0.225)])
    assert resolved.resizing == {"interpolation": "bicubic", "crop_to_aspect_ratio": False, "antialias": True}

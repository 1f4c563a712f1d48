import json

import keras_hub
import numpy as np
import pytest

from tftune.families import mobilenet
from tftune.families.registry import resolve_backbone
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


def test_timm_folder_preprocesses_as_its_pretrained_cfg_says(tmp_path):
    # keras-hub builds the image converter from `pretrained_cfg`; without one it builds none, and tftune refuses.
    directory = tmp_path / "timm"
    directory.mkdir()
    config = {"architecture": "mobilenetv3_small_050", "num_classes": 10, "num_features": 1024}
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="pretrained_cfg"):
        resolve_backbone(str(directory), weights=None)
    pretrained_cfg = {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic"}
    config["pretrained_cfg"] = pretrained_cfg
    (directory / "config.json").write_text(json.dumps(config))
    resolved = resolve_backbone(str(directory), weights=None)
    assert resolved.family is mobilenet.FAMILY
    np.testing.assert_allclose(resolved.normalization["scale"], [2 / 255] * 3)
    assert resolved.resizing == {"interpolation": "bicubic", "crop_to_aspect_ratio": True, "antialias": False}

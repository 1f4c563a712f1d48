"""What image families share: normalization and resizing exactly as the checkpoint's image converter does them.

Serving must preprocess images exactly as training does. keras-hub image
converters crop to the aspect ratio by default, and some checkpoints resize
bicubic with antialiasing; `resize_image` applies the model's own resizing
(Keras' `Resizing` with the converter's options), and both the training
pipeline and the SavedModel's bytes signature call it, one image at a time.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

import keras
import keras_hub

from tftune._validation import image_size_error
from tftune.families.base import (
    TIMM,
    Family,
    LayerGroup,
    LocalDirectory,
    Modality,
    groups_from_rules,
    load_component,
)

# The offline default: keras.applications' ResNet50V2 (its ImageNet weights need a download; random init offline).
IMAGE = Modality(
    name="image", raw_input="image_bytes", tensor_signature="serve_images", raw_noun="JPEG / PNG bytes",
    offline_backbone=lambda: "resnet50v2",
)
# ImageNet mean / std on 0..255 inputs, what most keras-hub and timm converters use.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# Resizing as a keras-hub ImageConverter does it when its preset says nothing else.
STRETCH_RESIZING = {"interpolation": "bilinear", "crop_to_aspect_ratio": False, "antialias": False}


def imagenet_normalization() -> dict:
    """Scale / offset mapping 0..255 RGB to ImageNet-standardized values."""
    return {
        "scale": [1.0 / std for std in IMAGENET_STD],
        "offset": [-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)],
        "reverse_channels": False,
    }


@dataclasses.dataclass(frozen=True)
class ResolvedImage:
    """An image backbone with the normalization and resizing its checkpoint was trained with.

    `normalization` holds the `scale`, `offset` and `reverse_channels` that map
    0..255 RGB images to what the backbone expects; `resizing` the Keras
    `Resizing` options; `image_size` is fixed for ViT-like backbones, else None.

    Example:

    ```python
    resolved = tftune.resolve_backbone("resnet50", weights=None)
    resolved.family.name, resolved.normalization["reverse_channels"]  # ('resnet', True)
    ```
    """

    spec: str
    family: ImageFamily
    model: keras.Model
    layer_groups: tuple
    normalization: dict
    resizing: dict
    image_size: tuple[int, int] | None = None


class ImageFamily(Family):
    """An image backbone family: normalization, resizing, feature pooling and image layer groups.

    Example:

    ```python
    family = tftune.families.get_family("resnet")
    family.modality.name  # 'image'
    ```
    """

    modality = IMAGE
    image_converter_class: type = keras_hub.layers.ImageConverter
    group_rules: tuple = ()

    def layer_groups(self, backbone: keras.Model) -> tuple[LayerGroup, ...]:
        return groups_from_rules(backbone.layers, self.group_rules, backbone.name)

    def fixed_image_size(self, backbone: keras.Model) -> tuple[int, int] | None:
        """The only image size the backbone takes (ViT-like), or None when any size works."""
        return None

    def features(self, backbone: keras.Model, images):
        """One feature vector per image: global average pooling of the backbone's feature map."""
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone(images))

    def option_errors(self, image_size=(224, 224), **_) -> list[str | None]:
        return [image_size_error("image_size", image_size)]

    def default_normalization(self, spec: str, local: LocalDirectory | None) -> dict:
        """The normalization when the checkpoint ships no image converter (ImageNet's, unless a family knows better).

        A timm folder without `pretrained_cfg` is refused: keras-hub then loads
        no converter, and timm checkpoints differ (ImageNet's mean / std, or 0.5).
        """
        if local is not None and local.source == TIMM:
            raise ValueError(
                f"{spec!r} is a timm folder whose config.json has no 'pretrained_cfg' (input_size, mean, std, "
                f"interpolation), so tftune cannot tell how the checkpoint's images were normalized. Add the "
                f"checkpoint's pretrained_cfg to config.json, as timm's push_to_hf_hub writes it."
            )
        return imagenet_normalization()

    def default_resizing(self, spec: str, local: LocalDirectory | None) -> dict:
        """The resizing when the checkpoint ships no image converter: a plain stretch to the model's size.

        Nothing says how the checkpoint was trained, and a stretch keeps every pixel (a converter's crop to the
        aspect ratio also computes its box in the graph, which an ONNX float16 export gets wrong).
        """
        return dict(STRETCH_RESIZING)

    def resolve(self, spec: str, local: LocalDirectory | None, pretrained: bool, **_):
        backbone = self.load_backbone(spec, local, pretrained)
        converter = load_component(self.image_converter_class, spec, "image converter")
        if converter is not None and converter.scale is not None:
            normalization = {
                "scale": _plain(converter.scale),
                "offset": _plain(converter.offset if converter.offset is not None else 0.0),
                "reverse_channels": False,
            }
            resizing = {
                "interpolation": converter.resizing.interpolation,
                "crop_to_aspect_ratio": bool(converter.resizing.crop_to_aspect_ratio),
                "antialias": bool(converter.resizing.antialias),
            }
        else:
            normalization, resizing = self.default_normalization(spec, local), self.default_resizing(spec, local)
        return ResolvedImage(
            spec=spec,
            family=self,
            model=backbone,
            layer_groups=self.layer_groups(backbone),
            normalization=normalization,
            resizing=resizing,
            image_size=self.fixed_image_size(backbone),
        )


def transformers_normalization(local: LocalDirectory) -> dict | None:
    """The normalization a Hugging Face folder's `preprocessor_config.json` states, or None without one."""
    path = os.path.join(local.path, "preprocessor_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as config_file:
        config = json.load(config_file)
    rescale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
    mean, std = config.get("image_mean", [0.0] * 3), config.get("image_std", [1.0] * 3)
    return {
        "scale": [rescale / s for s in std],
        "offset": [-m / s for m, s in zip(mean, std, strict=True)],
        "reverse_channels": False,
    }


def transformers_resizing(local: LocalDirectory) -> dict:
    """The resizing of a Hugging Face image processor: a stretch to the size, `resample` 2 bilinear / 3 bicubic.

    Like keras-hub's Swin converter, with antialiasing (PIL, which Hugging Face
    processors resize with, filters when it shrinks). A processor's center crop
    (`do_center_crop`) is not reproduced.
    """
    path = os.path.join(local.path, "preprocessor_config.json")
    config = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as config_file:
            config = json.load(config_file)
    interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(config.get("resample", 2), "bilinear")
    return {"interpolation": interpolation, "crop_to_aspect_ratio": False, "antialias": True}


def input_image_size(backbone: keras.Model) -> tuple[int, int] | None:
    """The (height, width) a backbone's input layer is built for, or None when either is free."""
    height, width = backbone.input_shape[1:3]
    return None if height is None or width is None else (int(height), int(width))


def resize_image(image, image_size: Sequence[int], resizing: Mapping):
    """Resize 0..255 RGB `[H, W, 3]` images (or a batch) to `image_size` as training sees them: float32, whole numbers.

    The resize is the classifier's `Resizing` layer's (crop to aspect ratio,
    interpolation, antialias); the result is rounded to whole 0..255 values,
    because the training pipelines cache images as uint8. The serving
    signatures resize with this same function, so a served image gives the
    pixels training gave.

    Example:

    ```python
    image = np.random.RandomState(0).uniform(0, 255, (40, 70, 3)).astype("float32")
    resized = tftune.families.resize_image(image, (32, 32), {"crop_to_aspect_ratio": True})
    resized.shape, bool(np.all(np.round(resized) == resized))  # ((32, 32, 3), True)
    ```
    """
    # The op behind Keras' `Resizing` layer: no layer (and no layer state) is created inside a traced serving function.
    resized = keras.ops.image.resize(image, tuple(image_size), **resizing)
    return keras.ops.clip(keras.ops.round(resized), 0.0, 255.0)


def _plain(value):
    """A float or a list of floats (converters may hold tuples or arrays)."""
    if isinstance(value, (int, float)):
        return float(value)
    return [float(item) for item in value]


__all__ = [
    "IMAGE",
    "STRETCH_RESIZING",
    "ImageFamily",
    "ResolvedImage",
    "imagenet_normalization",
    "input_image_size",
    "resize_image",
    "transformers_normalization",
    "transformers_resizing",
]

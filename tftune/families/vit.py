"""ViT: keras-hub presets and folders, and Hugging Face `vit` folders.

The backbone takes one fixed image size, and keeps its transformer blocks
nested in `vit_encoder`. Groups: `patch_embedding` (patches, class token,
positions), `block_1` ... `block_N` (the encoder's blocks; the final
LayerNorm joins the last block). The feature is the class token, as
keras-hub's `ViTImageClassifier` takes it (the mean token for a backbone
built without one).

A Hugging Face folder comes without an image converter: tftune reads the
normalization and resizing from its `preprocessor_config.json`, and refuses
a folder without one.

Example:

```python
tftune.families.get_family("vit_base_patch16_224_imagenet").title  # 'ViT'
```
"""

from __future__ import annotations

import keras
import keras_hub

from tftune.families.base import TRANSFORMERS, LayerGroup, LocalDirectory, numbered_groups
from tftune.families.image import (
    ImageFamily,
    input_image_size,
    transformers_normalization,
    transformers_resizing,
)


class ViTFamily(ImageFamily):
    name = "vit"
    title = "ViT"
    backbone_class = keras_hub.models.ViTBackbone
    image_converter_class = keras_hub.layers.ViTImageConverter
    transformers_model_types = ("vit",)
    lora_targets = ("query", "value")
    limits = (
        "a Hugging Face folder's center crop (DeiT's: resize to 256, crop 224) is not applied: images are resized "
        "straight to the model's size",
    )
    # The backbone's two composite layers.
    embedding_layer = "vit_patching_and_embedding"
    encoder_layer = "vit_encoder"

    def layer_groups(self, backbone):
        encoder = backbone.get_layer(self.encoder_layer)
        blocks = [[block] for block in encoder.encoder_layers]
        blocks[-1].append(encoder.layer_norm)
        embedding = LayerGroup("patch_embedding", (backbone.get_layer(self.embedding_layer),))
        return (embedding,) + numbered_groups("block", blocks)

    def fixed_image_size(self, backbone):
        return input_image_size(backbone)

    def features(self, backbone, images):
        tokens = backbone(images)
        if getattr(backbone, "use_class_token", True):  # DeiT backbones always have one (no such option).
            return tokens[:, 0, :]
        return keras.layers.GlobalAveragePooling1D(name="avg_pool")(tokens)

    def default_normalization(self, spec: str, local: LocalDirectory | None) -> dict:
        from_folder = local is not None and local.source == TRANSFORMERS
        normalization = transformers_normalization(local) if from_folder else None
        if normalization is None:
            raise ValueError(
                f"{spec!r} holds a {self.title} backbone but no image converter, so tftune cannot tell how its "
                f"images were normalized. For a Hugging Face folder, put the checkpoint's preprocessor_config.json "
                f"(image_mean, image_std) beside config.json; for a keras-hub folder, save the image converter "
                f"with `save_to_preset` too."
            )
        return normalization

    def default_resizing(self, spec: str, local: LocalDirectory | None) -> dict:
        if local is not None and local.source == TRANSFORMERS:
            return transformers_resizing(local)
        return super().default_resizing(spec, local)


FAMILY = ViTFamily()

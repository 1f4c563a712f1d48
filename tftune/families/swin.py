"""Swin Transformer: keras-hub presets and folders, and Hugging Face `swin` folders.

The backbone takes one fixed image size and returns tokens `[batch, tokens,
channels]`; the feature is their mean, as keras-hub's
`SwinTransformerImageClassifier` takes it. Groups: `patch_embedding`,
`stage_1` ... `stage_N` (keras-hub's `stage_{s}`, numbered from 0 there:
its blocks, nested, and the patch merging after them); the final LayerNorm
joins the last stage. A Hugging Face folder's converter (from its
`preprocessor_config.json`) resizes bicubic with antialiasing and without
cropping, and tftune serves the same way.

Example:

```python
tftune.families.get_family("swin_base_patch4_window7_224").title  # 'Swin Transformer'
```
"""

import keras
import keras_hub

from tftune.families.base import merge_into_previous
from tftune.families.image import ImageFamily, input_image_size


class SwinFamily(ImageFamily):
    name = "swin"
    title = "Swin Transformer"
    backbone_class = keras_hub.models.SwinTransformerBackbone
    image_converter_class = keras_hub.layers.SwinTransformerImageConverter
    transformers_model_types = ("swin",)
    transformers_files = ("preprocessor_config.json",)
    # Swin fuses query, key and value in one Dense; keras-hub's default names match nothing.
    lora_targets = ("attention_qkv",)
    group_rules = (
        (r"^(patch_embedding|pos_drop)$", "patch_embedding", 0),
        (r"^stage_(\d+)$", "stage_{index}", 1),
        (r"^norm$", "norm", 0),
    )

    def layer_groups(self, backbone):
        return merge_into_previous(super().layer_groups(backbone), "norm")

    def fixed_image_size(self, backbone):
        return input_image_size(backbone)

    def features(self, backbone, images):
        return keras.layers.GlobalAveragePooling1D(name="avg_pool")(backbone(images))


FAMILY = SwinFamily()

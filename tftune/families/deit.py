"""DeiT: keras-hub presets and folders, and Hugging Face `deit` folders.

Like ViT (`tftune.families.vit`): a fixed image size, blocks nested in
`deit_encoder`, groups `patch_embedding`, `block_1` ... `block_N` (the final
LayerNorm joins the last block), and the Hugging Face normalization read
from `preprocessor_config.json`. The feature is the class token, as
keras-hub's `DeiTImageClassifier` takes it (the distillation token is left
out).

Example:

```python
tftune.families.get_family("deit_tiny_distilled_patch16_224_imagenet").title  # 'DeiT'
```
"""

import keras_hub

from tftune.families.vit import ViTFamily


class DeiTFamily(ViTFamily):
    name = "deit"
    title = "DeiT"
    backbone_class = keras_hub.models.DeiTBackbone
    image_converter_class = keras_hub.layers.DeiTImageConverter
    transformers_model_types = ("deit",)
    embedding_layer = "deit_patching_and_embedding"
    encoder_layer = "deit_encoder"


FAMILY = DeiTFamily()

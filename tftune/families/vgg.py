"""VGG: keras-hub presets and folders, and timm `vgg*` checkpoints.

Groups: `stage_1` ... `stage_N`, one per `block{s}` of convolutions (VGG
has no separate stem). tftune's head (global average pooling, dropout,
Dense) replaces keras-hub's 4096-wide two-layer head, so the backbone is
the convolutional part only.

Example:

```python
tftune.families.get_family("vgg_16_imagenet").title  # 'VGG'
```
"""

import keras_hub

from tftune.families.image import ImageFamily


class VGGFamily(ImageFamily):
    name = "vgg"
    title = "VGG"
    backbone_class = keras_hub.models.VGGBackbone
    image_converter_class = keras_hub.layers.VGGImageConverter
    timm_architectures = ("vgg",)
    group_rules = ((r"^block(\d+)_", "stage_{index}", 0),)


FAMILY = VGGFamily()

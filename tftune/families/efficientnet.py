"""EfficientNet (v1, v2, lite, EdgeTPU): keras-hub presets and folders, and timm `efficientnet*` checkpoints.

Groups: `stem`, `stage_1` ... `stage_N`, one per stack of blocks (keras-hub's
`block{s}{a,b,...}_` layers, plain layers for v1 blocks and one composite
layer per fused / MBConv block); the top 1x1 conv and its BatchNorm join
the last stage.

Example:

```python
tftune.families.get_family("efficientnet_b0_ra_imagenet").title  # 'EfficientNet'
```
"""

import keras_hub

from tftune.families.base import merge_into_previous
from tftune.families.image import ImageFamily


class EfficientNetFamily(ImageFamily):
    name = "efficientnet"
    title = "EfficientNet"
    backbone_class = keras_hub.models.EfficientNetBackbone
    image_converter_class = keras_hub.layers.EfficientNetImageConverter
    # keras-hub's timm converter takes efficientnet_{b0..b5,lite0,el,em,es} and efficientnetv2_rw_{m,s,t}.
    timm_architectures = ("efficientnet",)
    group_rules = (
        (r"^stem_", "stem", 0),
        (r"^block(\d+)\D", "stage_{index}", 0),
        (r"^top_", "top", 0),
    )

    def layer_groups(self, backbone):
        return merge_into_previous(super().layer_groups(backbone), "top")


FAMILY = EfficientNetFamily()

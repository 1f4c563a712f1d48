"""MobileNet v3: keras-hub presets and folders, and timm `mobilenetv3*` checkpoints.

Groups: `stem` (the input conv and the first depthwise block, `block_0`),
`stage_1` ... `stage_N` (the composite `block_{s}_{b}` inverted-residual
blocks of each stack); the final 1x1 ConvBnAct block joins the last stage.

Example:

```python
tftune.families.get_family("mobilenet_v3_small_100_imagenet").title  # 'MobileNet v3'
```
"""

import keras_hub

from tftune.families.base import merge_into_previous
from tftune.families.image import ImageFamily


class MobileNetFamily(ImageFamily):
    name = "mobilenet"
    title = "MobileNet v3"
    backbone_class = keras_hub.models.MobileNetBackbone
    image_converter_class = keras_hub.layers.MobileNetImageConverter
    # keras-hub's timm converter takes MobileNet v3 only (`mobilenetv5*` is its own family).
    timm_architectures = ("mobilenetv3",)
    group_rules = (
        (r"^(input_|block_0_)", "stem", 0),
        (r"^block_(\d+)_", "stage_{index}", 0),
    )

    def layer_groups(self, backbone):
        # The last block, `block_{N + 1}_0`, is the 1x1 ConvBnAct after the N stacks.
        last_block = f"stage_{len(backbone.stackwise_num_blocks) + 1}"
        return merge_into_previous(super().layer_groups(backbone), last_block)


FAMILY = MobileNetFamily()

"""Xception: keras-hub presets and folders (keras-hub has no timm or Hugging Face converter for it).

Groups: `stem` (`block1`, the two plain entry convolutions), then
`stage_1` ... `stage_N` for keras-hub's `block2` ... `block{N + 1}`.

Example:

```python
tftune.families.get_family("xception_41_imagenet").title  # 'Xception'
```
"""

import keras_hub

from tftune.families.image import ImageFamily


class XceptionFamily(ImageFamily):
    name = "xception"
    title = "Xception"
    backbone_class = keras_hub.models.XceptionBackbone
    image_converter_class = keras_hub.layers.XceptionImageConverter
    group_rules = (
        (r"^block1_", "stem", 0),
        (r"^block(\d+)_", "stage_{index}", -1),
    )


FAMILY = XceptionFamily()

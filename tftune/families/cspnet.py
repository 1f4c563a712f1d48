"""CSPNet (CSPDarkNet, CSPResNet, CSPResNeXt, DarkNet): keras-hub presets and folders, and timm checkpoints.

Groups: `stem` (`csp_stem_*`), `stage_1` ... `stage_N` (keras-hub's
`stage_{s}_*` layers, numbered from 0 there).

Example:

```python
tftune.families.get_family("csp_darknet_53_ra_imagenet").title  # 'CSPNet'
```
"""

import keras_hub

from tftune.families.image import ImageFamily


class CSPNetFamily(ImageFamily):
    name = "cspnet"
    title = "CSPNet"
    backbone_class = keras_hub.models.CSPNetBackbone
    image_converter_class = keras_hub.layers.CSPNetImageConverter
    # keras-hub's timm converter takes cspdarknet53, cspresnet50, cspresnext50 and darknet53.
    timm_architectures = ("csp", "dark")
    group_rules = (
        (r"^csp_stem_", "stem", 0),
        (r"^stage_(\d+)_", "stage_{index}", 1),
    )


FAMILY = CSPNetFamily()

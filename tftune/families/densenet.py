"""DenseNet: keras-hub presets and folders, and timm `densenet*` checkpoints.

Groups: `stem` (`conv1`, `pool1`), `stage_1` ... `stage_N` (each dense
block `stack{s}` with the `transition{s}` block after it); the final
BatchNorm joins the last stage.

Example:

```python
tftune.families.get_family("densenet_121_imagenet").title  # 'DenseNet'
```
"""

import keras_hub

from tftune.families.base import merge_into_previous
from tftune.families.image import ImageFamily


class DenseNetFamily(ImageFamily):
    name = "densenet"
    title = "DenseNet"
    backbone_class = keras_hub.models.DenseNetBackbone
    image_converter_class = keras_hub.layers.DenseNetImageConverter
    timm_architectures = ("densenet",)
    group_rules = (
        (r"^(conv1|pool1)", "stem", 0),
        (r"^(?:stack|transition)(\d+)_", "stage_{index}", 0),
        (r"^(bn|relu)$", "top", 0),
    )

    def layer_groups(self, backbone):
        return merge_into_previous(super().layer_groups(backbone), "top")


FAMILY = DenseNetFamily()

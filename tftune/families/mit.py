"""MiT (the SegFormer encoder): keras-hub presets and folders (keras-hub has no timm or Hugging Face converter for it).

keras-hub's MiT presets are segmentation checkpoints (ADE20K, Cityscapes);
the backbone takes one fixed image size (its stages reshape tokens to that
size's feature maps). Groups: `stage_1` ... `stage_N`, each a patch
embedding, its transformer blocks and the stage's LayerNorm. The norms are
auto-named (`layer_normalization_7`: the number changes with what was built
before in the process), so stages are found by layer order from each
`patch_and_embed_{s}` layer, never by those names.

Example:

```python
tftune.families.get_family("mit_b0_ade20k_512").title  # 'MiT'
```
"""

import re

import keras_hub

from tftune.families.base import numbered_groups
from tftune.families.image import ImageFamily, input_image_size


class MiTFamily(ImageFamily):
    name = "mit"
    title = "MiT"
    backbone_class = keras_hub.models.MiTBackbone
    image_converter_class = keras_hub.layers.MiTImageConverter
    limits = ("keras-hub's MiT presets are segmentation checkpoints (ADE20K, Cityscapes), not ImageNet classifiers",)

    def layer_groups(self, backbone):
        stages: list[list] = []
        for layer in backbone.layers:
            if re.match(r"^patch_and_embed_\d+$", layer.name):
                stages.append([])
            if stages:
                stages[-1].append(layer)
        return numbered_groups("stage", stages)

    def fixed_image_size(self, backbone):
        return input_image_size(backbone)


FAMILY = MiTFamily()

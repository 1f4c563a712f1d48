"""MobileNetV5 (Gemma 3n's vision encoder): keras-hub presets and folders, and timm `mobilenetv5*` checkpoints.

Groups: `stem` (`conv_stem`), `stage_1` ... `stage_N` (the blocks of each
stack, `stackwise_num_blocks` of them); the multi-scale fusion adapter
(`msfa`) joins the last stage. keras-hub names the blocks automatically
(`universal_inverted_residual_4`: the number changes with what was built
before in the process), so the stages come from the backbone's layer order
and its config, never from those names.

Example:

```python
tftune.families.get_family("mobilenetv5_300m_enc_gemma3n").title  # 'MobileNetV5'
```
"""

import keras
import keras_hub

from tftune.families.base import LayerGroup, by_identity, numbered_groups
from tftune.families.image import ImageFamily


class MobileNetV5Family(ImageFamily):
    name = "mobilenetv5"
    title = "MobileNetV5"
    backbone_class = keras_hub.models.MobileNetV5Backbone
    image_converter_class = keras_hub.layers.MobileNetV5ImageConverter
    timm_architectures = ("mobilenetv5",)
    # Its attention blocks' projections (keras-hub's default query / value names match nothing).
    lora_targets = ("query_proj", "value_proj")

    def layer_groups(self, backbone):
        stem = backbone.get_layer("conv_stem")
        top = [backbone.get_layer("msfa")] if backbone.use_msfa else []
        is_stem_or_top = by_identity([stem, *top])
        blocks = [
            layer
            for layer in backbone.layers
            if not isinstance(layer, keras.layers.InputLayer) and not is_stem_or_top(layer)
        ]
        counts = list(backbone.stackwise_num_blocks)
        if len(blocks) != sum(counts):
            raise ValueError(
                f"MobileNetV5 backbone {backbone.name!r} has {len(blocks)} block layers but its config "
                f"stackwise_num_blocks={counts} sums to {sum(counts)}; tftune cannot tell its stages apart."
            )
        stages, start = [], 0
        for count in counts:
            stages.append(blocks[start : start + count])
            start += count
        stages[-1] = stages[-1] + top
        return (LayerGroup("stem", (stem,)),) + numbered_groups("stage", stages)


FAMILY = MobileNetV5Family()

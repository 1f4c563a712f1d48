"""HGNetV2: keras-hub presets and folders, and timm `hgnetv2*` checkpoints.

The backbone keeps its blocks in two composite layers and returns a dict of
feature maps; tftune pools the last stage's map, as keras-hub's classifier
does. Groups: `stem` (the `embedder`), `stage_1` ... `stage_N` (the
encoder's stages, nested in the `encoder` layer).

Example:

```python
tftune.families.get_family("hgnetv2_b5_ssld_stage2_ft_in1k").title  # 'HGNetV2'
```
"""

import keras
import keras_hub

from tftune.families.base import LayerGroup, numbered_groups
from tftune.families.image import ImageFamily


class HGNetV2Family(ImageFamily):
    name = "hgnetv2"
    title = "HGNetV2"
    backbone_class = keras_hub.models.HGNetV2Backbone
    image_converter_class = keras_hub.layers.HGNetV2ImageConverter
    timm_architectures = ("hgnetv2",)

    def layer_groups(self, backbone):
        stages = [[stage] for stage in backbone.encoder_layer.stages_list]
        return (LayerGroup("stem", (backbone.embedder_layer,)),) + numbered_groups("stage", stages)

    def features(self, backbone, images):
        last_stage = backbone.stage_names[-1]
        if last_stage not in backbone.out_features:
            raise ValueError(
                f"HGNetV2 backbone {backbone.name!r} does not output its last stage {last_stage!r} "
                f"(out_features={backbone.out_features}). Load it with out_features=None (every stage)."
            )
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone(images)[last_stage])


FAMILY = HGNetV2Family()

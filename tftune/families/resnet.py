"""ResNet: keras-hub ResNet presets and folders (v1, v2, vd; timm checkpoints), and keras.applications ResNets.

Groups: `stem`, `stage_1` ... `stage_4` (a v2 backbone's final BatchNorm
joins the last stage). keras.applications names ("resnet50" ...) normalize
the way the applications' ImageNet weights were trained: caffe-style
(RGB->BGR, mean subtraction) for v1, [-1, 1] for v2.

Example:

```python
resolved = tftune.resolve_backbone("resnet50", weights=None)
[group.name for group in resolved.layer_groups]  # ['stem', 'stage_1', 'stage_2', 'stage_3', 'stage_4']
```
"""

from __future__ import annotations

import keras
import keras_hub

from tftune.families.base import BackboneUnavailableError, LocalDirectory, groups_from_rules, merge_into_previous
from tftune.families.image import STRETCH_RESIZING, ImageFamily, ResolvedImage

# keras.applications ResNets: name -> (constructor name, preprocessing mode).
# "caffe" = RGB->BGR then ImageNet mean subtraction; "tf" = scale to [-1, 1].
APPLICATIONS = {
    "resnet50": ("ResNet50", "caffe"),
    "resnet101": ("ResNet101", "caffe"),
    "resnet152": ("ResNet152", "caffe"),
    "resnet50v2": ("ResNet50V2", "tf"),
    "resnet101v2": ("ResNet101V2", "tf"),
    "resnet152v2": ("ResNet152V2", "tf"),
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_KERAS_HUB_RULES = (
    (r"^(conv1|pool1)", "stem", 0),
    (r"^stack(\d+)_", "stage_{index}", 1),
    (r"^post_", "stage_last", 0),
)
_APPLICATIONS_RULES = (
    (r"^(conv1|pool1)", "stem", 0),
    (r"^conv(\d+)_", "stage_{index}", -1),
    (r"^post_", "stage_last", 0),
)


class ResNetFamily(ImageFamily):
    name = "resnet"
    title = "ResNet"
    backbone_class = keras_hub.models.ResNetBackbone
    image_converter_class = keras_hub.layers.ResNetImageConverter
    timm_architectures = ("resnet", "resnetv2")

    def spec_forms(self) -> list[str]:
        return super().spec_forms() + [f"keras.applications name ({', '.join(APPLICATIONS)})"]

    def accepts(self, spec: str, local: LocalDirectory | None) -> bool:
        return (local is None and spec.lower() in APPLICATIONS) or super().accepts(spec, local)

    def owns(self, backbone: keras.Model) -> bool:
        return super().owns(backbone) or backbone.name in APPLICATIONS

    def load_backbone(self, spec: str, local: LocalDirectory | None, pretrained: bool) -> keras.Model:
        if local is None and spec.lower() in APPLICATIONS:
            return _load_applications(spec.lower(), pretrained)
        return super().load_backbone(spec, local, pretrained)

    def layer_groups(self, backbone: keras.Model):
        rules = _KERAS_HUB_RULES if super().owns(backbone) else _APPLICATIONS_RULES
        groups = groups_from_rules(backbone.layers, rules, backbone.name)
        return merge_into_previous(groups, "stage_last")

    def resolve(self, spec: str, local: LocalDirectory | None, pretrained: bool, **options):
        if local is not None or spec.lower() not in APPLICATIONS:
            return super().resolve(spec, local, pretrained, **options)
        name = spec.lower()
        backbone = self.load_backbone(name, local, pretrained)
        if APPLICATIONS[name][1] == "caffe":
            normalization = {"scale": 1.0, "offset": [-mean for mean in _CAFFE_MEAN_BGR], "reverse_channels": True}
        else:
            normalization = {"scale": 1.0 / 127.5, "offset": -1.0, "reverse_channels": False}
        return ResolvedImage(
            spec=name,
            family=self,
            model=backbone,
            layer_groups=self.layer_groups(backbone),
            normalization=normalization,
            resizing=dict(STRETCH_RESIZING),
        )


def _load_applications(name: str, pretrained: bool) -> keras.Model:
    constructor_name = APPLICATIONS[name][0]
    constructor = getattr(keras.applications, constructor_name)
    try:
        return constructor(include_top=False, weights="imagenet" if pretrained else None, input_shape=(None, None, 3))
    except Exception as error:  # keras.utils.get_file raises a bare Exception.
        if not pretrained or "URL fetch failure" not in str(error):
            raise
        raise BackboneUnavailableError(
            f"Could not download the ImageNet weights of keras.applications {constructor_name} ({str(error)[:200]}). "
            f"Without network access, save them on a connected machine (`keras.applications.{constructor_name}("
            f"include_top=False).save_weights('{name}.weights.h5')`) and pass weights='{name}.weights.h5'."
        ) from None


FAMILY = ResNetFamily()

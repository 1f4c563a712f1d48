"""Backbone resolution: a backbone spec becomes a model, its preprocessing and its layer groups.

Specs tftune understands:

- a keras-hub preset name of the BERT family (`"bert_base_en_uncased"`,
  `"all_minilm_l6_v2_en"`, ...) or the ResNet family (`"resnet_50_imagenet"`,
  `"resnet_v2_50_imagenet"`, ...); these download from a model hub;
- a local keras-hub preset directory (what `save_to_preset` writes);
- a local Hugging Face BERT checkpoint directory (`config.json`,
  `model.safetensors`, `vocab.txt`), converted by keras-hub;
- a keras.applications ResNet name (`"resnet50"` ... `"resnet152v2"`).

Local directories never touch the network.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import keras
import keras_hub
import safetensors
from keras_hub.src.utils.transformers import convert_bert

from tftune._validation import integer_error, raise_errors

PRETRAINED = "pretrained"

# keras.applications ResNets: name -> (constructor name, preprocessing mode).
# "caffe" = RGB->BGR then ImageNet mean subtraction; "tf" = scale to [-1, 1].
_APPLICATIONS_RESNETS = {
    "resnet50": ("ResNet50", "caffe"),
    "resnet101": ("ResNet101", "caffe"),
    "resnet152": ("ResNet152", "caffe"),
    "resnet50v2": ("ResNet50V2", "tf"),
    "resnet101v2": ("ResNet101V2", "tf"),
    "resnet152v2": ("ResNet152V2", "tf"),
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# ImageNet mean / std on 0..255 inputs, what keras-hub's ResNet converters use.
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# The name of the last layer group, the newly attached layers on top of the backbone.
HEAD = "head"
# BERT's pooler (`pooled_dense` on the [CLS] token): the group only "cls" pooling uses.
POOLER = "pooler"

_HF_BERT_FILES = ("config.json", "model.safetensors", "vocab.txt")
_KERAS_HUB_PRESET_FILES = ("config.json (with 'registered_name')", "model.weights.h5")

# Layer name -> group, per backbone kind. A group name may use the captured
# integer through `{index}` (with an offset so groups count from 1 for stages).
_GROUP_RULES = {
    "bert": (
        (r"^(token_embedding|position_embedding|segment_embedding|embeddings_)", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
        (r"^pooled_dense$", POOLER, 0),
    ),
    "resnet_keras_hub": (
        (r"^(conv1|pool1)", "stem", 0),
        (r"^stack(\d+)_", "stage_{index}", 1),
        (r"^post_", "stage_last", 0),
    ),
    "resnet_applications": (
        (r"^(conv1|pool1)", "stem", 0),
        (r"^conv(\d+)_", "stage_{index}", -1),
        (r"^post_", "stage_last", 0),
    ),
}


class BackboneUnavailableError(RuntimeError):
    """A hub preset or pretrained weight file could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class LayerGroup:
    """A named set of layers that is frozen and unfrozen as one unit.

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", num_classes=3, weights=None)
    for group in model.layer_groups:
        print(group.name, group.count_params())
    ```
    """

    name: str
    layers: tuple

    @property
    def weights(self) -> list:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable(self) -> bool:
        return all(layer.trainable for layer in self.layers)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)


@dataclasses.dataclass(frozen=True)
class ResolvedBackbone:
    """A pretrained backbone with what a builder needs to put a head on it.

    `family` is "bert" or "resnet". For BERT, `preprocessor` turns raw strings
    into int32 `token_ids` / `segment_ids` / `padding_mask`, and `pooling` is
    the token pooling the checkpoint was trained with ("cls", "mean" or
    "max", from a sentence-transformers folder's `1_Pooling/config.json`),
    or None when the checkpoint does not say. For ResNet,
    `image_normalization` holds the `scale`, `offset` and `reverse_channels`
    that map 0..255 RGB images to what the backbone was pretrained on.

    Example:

    ```python
    resolved = tftune.resolve_backbone("resnet50", weights=None)
    print(resolved.family, [group.name for group in resolved.layer_groups])
    ```
    """

    spec: str
    family: str
    model: keras.Model
    layer_groups: tuple
    preprocessor: Any = None
    image_normalization: dict | None = None
    max_sequence_length: int | None = None
    pooling: str | None = None


def known_backbones() -> dict[str, list[str]]:
    """Names `resolve_backbone` accepts, by source (local directories aside).

    Example:

    ```python
    print(tftune.known_backbones()["keras_applications"])
    ```
    """
    return {
        "keras_hub_bert": sorted(keras_hub.models.BertBackbone.presets),
        "keras_hub_resnet": sorted(keras_hub.models.ResNetBackbone.presets),
        "keras_applications": sorted(_APPLICATIONS_RESNETS),
    }


def resolve_backbone(
    spec: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = PRETRAINED,
    sequence_length: int = 128,
) -> ResolvedBackbone:
    """Turn a backbone spec into the backbone model, its preprocessing and layer groups.

    Args:
        spec: a keras-hub preset name, a local keras-hub preset or Hugging
            Face BERT directory, or a keras.applications ResNet name
            (see `known_backbones()`).
        weights: `"pretrained"` (the default; `"imagenet"` is accepted for
            keras.applications), `None` for random initialisation with the
            same architecture, or a path to a `.weights.h5` file.
        sequence_length: what the BERT preprocessor pads / truncates to.

    Example:

    ```python
    resolved = tftune.resolve_backbone(bert_dir, sequence_length=16)
    resolved.preprocessor(["a fine film"])["token_ids"]
    resolved.pooling  # 'mean': MiniLM's 1_Pooling/config.json says so
    ```
    """
    raise_errors(integer_error("sequence_length", sequence_length, minimum=1))
    spec = os.fspath(spec)
    weights_file = _weights_file(weights)
    pretrained = weights in (PRETRAINED, "imagenet")
    if os.path.isdir(spec):
        model = _load_local_directory(spec, load_weights=pretrained)
    elif spec.lower() in _APPLICATIONS_RESNETS:
        spec = spec.lower()
        model = _load_applications(spec, pretrained)
    elif spec in keras_hub.models.BertBackbone.presets or spec in keras_hub.models.ResNetBackbone.presets:
        model = _load_hub_preset(spec, load_weights=pretrained)
    else:
        raise ValueError(_unknown_spec_message(spec))
    if weights_file is not None:
        model.load_weights(weights_file)
    if isinstance(model, keras_hub.models.BertBackbone):
        family = "bert"
        extras = {
            "preprocessor": _bert_preprocessor(spec, sequence_length),
            "max_sequence_length": model.max_sequence_length,
            "pooling": _checkpoint_pooling(spec),
        }
    elif isinstance(model, keras_hub.models.ResNetBackbone):
        family, extras = "resnet", {"image_normalization": _keras_hub_image_normalization(spec)}
    elif spec in _APPLICATIONS_RESNETS:
        family, extras = "resnet", {"image_normalization": _applications_image_normalization(spec)}
    else:
        raise ValueError(
            f"Backbone {spec!r} is a {type(model).__name__}; tftune supports keras-hub "
            f"BertBackbone and ResNetBackbone presets and keras.applications ResNets."
        )
    return ResolvedBackbone(spec=spec, family=family, model=model, layer_groups=backbone_layer_groups(model), **extras)


def backbone_layer_groups(backbone: keras.Model) -> tuple[LayerGroup, ...]:
    """Ordered layer groups of a BERT or ResNet backbone, from the input upwards.

    BERT: `embeddings`, `encoder_0` ... `encoder_{N-1}`, `pooler`.
    ResNet: `stem`, `stage_1` ... `stage_4`. Every layer that holds weights is
    in exactly one group; a weighted layer no rule knows raises `ValueError`.
    A weightless layer joins the group its name belongs to (BERT's
    `embeddings_dropout` is in `embeddings`, so it is off while they are frozen).

    Example:

    ```python
    backbone = keras.applications.ResNet50(weights=None, include_top=False)
    [group.name for group in tftune.backbone_layer_groups(backbone)]
    ```
    """
    rules = _GROUP_RULES[_backbone_kind(backbone)]
    groups: dict[str, list] = {}
    for layer in backbone.layers:
        name = _group_of(layer.name, rules)
        if name is None and not layer.weights:
            continue
        if name is None:
            raise ValueError(
                f"Layer {layer.name!r} of backbone {backbone.name!r} holds weights "
                f"but matches no layer-group rule ({[rule[0] for rule in rules]})."
            )
        groups.setdefault(name, []).append(layer)
    if "stage_last" in groups:
        last_stage = [name for name in groups if name.startswith("stage_") and name != "stage_last"][-1]
        groups[last_stage].extend(groups.pop("stage_last"))
    return tuple(LayerGroup(name, tuple(layers)) for name, layers in groups.items())


def _group_of(layer_name: str, rules) -> str | None:
    for pattern, group_name, offset in rules:
        match = re.match(pattern, layer_name)
        if match:
            if "{index}" in group_name:
                return group_name.format(index=int(match.group(1)) + offset)
            return group_name
    return None


def _backbone_kind(backbone: keras.Model) -> str:
    if isinstance(backbone, keras_hub.models.BertBackbone):
        return "bert"
    if isinstance(backbone, keras_hub.models.ResNetBackbone):
        return "resnet_keras_hub"
    if backbone.name.startswith("resnet"):
        return "resnet_applications"
    raise ValueError(
        f"No layer groups are known for backbone {backbone.name!r} "
        f"({type(backbone).__name__}). tftune groups keras-hub BertBackbone / "
        f"ResNetBackbone and keras.applications ResNets; build the model with "
        f"tftune.build_text_classifier or tftune.build_image_classifier."
    )


def _weights_file(weights) -> str | None:
    if weights in (PRETRAINED, "imagenet", None):
        return None
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(
            f"weights={weights!r} is neither 'pretrained', 'imagenet', None nor an "
            f"existing weights file. Pass a path to a '.weights.h5' file."
        )
    return path


def _load_local_directory(directory: str, load_weights: bool) -> keras.Model:
    config_path = os.path.join(directory, "config.json")
    config = {}
    if os.path.isfile(config_path):
        with open(config_path) as config_file:
            config = json.load(config_file)
    if "registered_name" in config:
        return keras_hub.models.Backbone.from_preset(directory, load_weights=load_weights)
    if config.get("model_type") == "bert":
        missing = [name for name in _HF_BERT_FILES if not os.path.isfile(os.path.join(directory, name))]
        if missing:
            raise ValueError(
                f"{directory!r} looks like a Hugging Face BERT checkpoint but lacks "
                f"{missing}; expected {list(_HF_BERT_FILES)}."
            )
        try:
            return keras_hub.models.BertBackbone.from_preset(directory, load_weights=load_weights)
        except safetensors.SafetensorError as error:
            raise ValueError(
                f"{os.path.join(directory, 'model.safetensors')!r} exists but cannot be read ({error}): the "
                f"download or copy was probably cut short. Re-download the checkpoint, or pass another backbone."
            ) from None
    raise ValueError(
        f"Directory {directory!r} is not a backbone tftune can load. Expected either "
        f"a keras-hub preset ({', '.join(_KERAS_HUB_PRESET_FILES)}, as written by "
        f"`save_to_preset`) or a Hugging Face BERT checkpoint ({', '.join(_HF_BERT_FILES)} "
        f"with model_type 'bert'). Found: {sorted(os.listdir(directory))}."
    )


def _checkpoint_pooling(spec: str) -> str | None:
    """The pooling a sentence-transformers folder declares in `1_Pooling/config.json`, else None.

    Read by keras-hub's own converter (what `keras_hub.models.TextEmbedder.from_preset`
    uses): `pooling_mode_cls_token` -> "cls", `pooling_mode_max_tokens` -> "max",
    anything else -> "mean".
    """
    if not os.path.isdir(spec):
        return None
    return convert_bert.load_task_config(spec, {}).get("pooling_mode")


def _load_hub_preset(preset: str, load_weights: bool) -> keras.Model:
    try:
        return keras_hub.models.Backbone.from_preset(preset, load_weights=load_weights)
    except (OSError, ConnectionError) as error:
        raise BackboneUnavailableError(
            f"Could not download keras-hub preset {preset!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}). Without network access, download "
            f"it on a connected machine (`keras_hub.models.Backbone.from_preset("
            f"{preset!r}).save_to_preset('DIR')`, or the preprocessor / tokenizer "
            f"too) and pass the local directory 'DIR' as the backbone."
        ) from None


def _load_applications(name: str, pretrained: bool) -> keras.Model:
    constructor_name = _APPLICATIONS_RESNETS[name][0]
    constructor = getattr(keras.applications, constructor_name)
    try:
        return constructor(include_top=False, weights="imagenet" if pretrained else None, input_shape=(None, None, 3))
    except Exception as error:  # keras.utils.get_file raises a bare Exception.
        if not pretrained or "URL fetch failure" not in str(error):
            raise
        raise BackboneUnavailableError(
            f"Could not download the ImageNet weights of keras.applications "
            f"{constructor_name} ({str(error)[:200]}). Without network access, save "
            f"them on a connected machine (`keras.applications.{constructor_name}("
            f"include_top=False).save_weights('{name}.weights.h5')`) and pass "
            f"weights='{name}.weights.h5'."
        ) from None


def _applications_image_normalization(name: str) -> dict:
    if _APPLICATIONS_RESNETS[name][1] == "caffe":
        return {"scale": 1.0, "offset": [-mean for mean in _CAFFE_MEAN_BGR], "reverse_channels": True}
    return {"scale": 1.0 / 127.5, "offset": -1.0, "reverse_channels": False}


def _keras_hub_image_normalization(preset: str) -> dict:
    """The scale / offset of the preset's image converter (ImageNet stats if it has none)."""
    try:
        converter = keras_hub.layers.ResNetImageConverter.from_preset(preset)
    except (ValueError, FileNotFoundError, OSError):
        converter = None
    if converter is None or converter.scale is None:
        return {
            "scale": [1.0 / std for std in _IMAGENET_STD],
            "offset": [-mean / std for mean, std in zip(_IMAGENET_MEAN, _IMAGENET_STD)],
            "reverse_channels": False,
        }
    return {"scale": _plain(converter.scale), "offset": _plain(converter.offset or 0.0), "reverse_channels": False}


def _plain(value):
    """A float or a list of floats (converters may hold tuples or arrays)."""
    if isinstance(value, (int, float)):
        return float(value)
    return [float(item) for item in value]


def _bert_preprocessor(preset: str, sequence_length: int):
    try:
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    except (OSError, ConnectionError) as error:
        raise BackboneUnavailableError(
            f"Could not load the BERT tokenizer of {preset!r} ({error}). Pass a local "
            f"directory that holds the tokenizer (vocab.txt, or the keras-hub "
            f"tokenizer.json + assets written by `save_to_preset`)."
        ) from None
    return TextPreprocessor(tokenizer=tokenizer, sequence_length=sequence_length)


@keras.saving.register_keras_serializable(package="tftune")
class TextPreprocessor(keras_hub.models.BertTextClassifierPreprocessor):
    """keras-hub's BERT preprocessor with all outputs int32, ready to cross replicas.

    keras-hub returns `padding_mask` as bool; a bool model input makes `fit`
    under a MirroredStrategy with 2+ replicas fail (AddN dtype error), so
    tftune feeds models int32 masks. Single-segment truncation defaults to
    "waterfall", which gives the same tokens as "round_robin" without the
    `RoundRobinTrim` op that older TF Serving builds lack.

    Example:

    ```python
    preprocessor = tftune.resolve_backbone(bert_dir).preprocessor
    preprocessor(["a fine film"])["padding_mask"].dtype  # int32
    ```
    """

    def __init__(self, tokenizer, sequence_length: int = 128, truncate: str = "waterfall", **kwargs):
        super().__init__(tokenizer=tokenizer, sequence_length=sequence_length, truncate=truncate, **kwargs)

    def call(self, x, y=None, sample_weight=None):
        features, y, sample_weight = keras.utils.unpack_x_y_sample_weight(super().call(x, y, sample_weight))
        features = dict(features)
        features["padding_mask"] = keras.ops.cast(features["padding_mask"], "int32")
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)


def _unknown_spec_message(spec: str) -> str:
    known = known_backbones()
    return (
        f"Unknown backbone {spec!r}: not an existing directory, a keras.applications "
        f"ResNet or a keras-hub preset of the BERT / ResNet families. Known names: "
        f"keras.applications {known['keras_applications']}; keras-hub BERT "
        f"{known['keras_hub_bert']}; keras-hub ResNet {known['keras_hub_resnet']}. "
        f"For local weights pass a keras-hub preset directory or a Hugging Face "
        f"BERT checkpoint directory."
    )

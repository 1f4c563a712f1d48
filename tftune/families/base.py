"""What every backbone family shares: the family interface, layer groups and local / hub loading.

A family (one module in `tftune/families/`) owns everything that differs
between backbone architectures: the spec forms it accepts, how it builds the
backbone and its preprocessing, its ordered layer groups, and what its
inputs need at serving time. This module knows no family.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import keras
import safetensors

PRETRAINED = "pretrained"
# The name of the last layer group, the newly attached layers on top of the backbone.
HEAD = "head"

# What `config.json` of a local directory says about who can load it (keras-hub's own switch,
# utils/preset_utils.py: `registered_name` -> keras-hub preset, `model_type` -> transformers, `architecture` -> timm).
KERAS_HUB = "keras_hub"
TRANSFORMERS = "transformers"
TIMM = "timm"


class BackboneUnavailableError(RuntimeError):
    """A hub preset or pretrained weight file could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class Modality:
    """What a kind of input means for a classifier: its raw serving input and how a person names it.

    Example:

    ```python
    tftune.build_text_classifier(text_backbone, num_classes=2).modality.name  # 'text'
    ```
    """

    name: str
    # The one input of the SavedModel's `serving_default` signature, and its tensor signature.
    raw_input: str
    tensor_signature: str
    # What a user passes, in words ("strings", "JPEG / PNG bytes").
    raw_noun: str
    # The backbone a recipe trains when none is given, loadable offline (a spec `resolve_backbone` takes).
    offline_backbone: Callable[[], str]

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True)
class LayerGroup:
    """A named set of layers that is frozen and unfrozen as one unit.

    Example:

    ```python
    model = tftune.build_image_classifier(image_backbone, num_classes=3, weights=None)
    for group in model.layer_groups:
        print(group.name, group.count_params())
    ```
    """

    name: str
    layers: tuple

    @property
    def weights(self) -> list:
        return [weight for layer in self.layers for weight in layer.weights]

    @property
    def trainable(self) -> bool:
        return all(layer.trainable for layer in self.layers)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)


@dataclasses.dataclass(frozen=True)
class LocalDirectory:
    """A local backbone folder and what its `config.json` says about it.

    `source` is `KERAS_HUB` (a `save_to_preset` folder), `TRANSFORMERS` (a Hugging
    Face checkpoint keras-hub converts), `TIMM`, or None when no loader claims it.
    """

    path: str
    config: dict
    source: str | None

    @property
    def files(self) -> list[str]:
        return sorted(os.listdir(self.path))

    def has(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.path, name))


def read_local_directory(path: str) -> LocalDirectory:
    """Read `<path>/config.json` (if any) and say which loader the folder is for.

    Example:

    ```python
    tftune.families.read_local_directory(text_backbone).source  # 'transformers'
    ```
    """
    config_path = os.path.join(path, "config.json")
    config: dict = {}
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as config_file:
                config = json.load(config_file)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{config_path!r} is not valid JSON ({error}). A backbone folder's config.json must be the file "
                f"keras-hub's save_to_preset or the Hugging Face / timm checkpoint wrote; re-download or re-save it."
            ) from None
        if not isinstance(config, dict):
            raise ValueError(
                f"{config_path!r} holds a {type(config).__name__}, not a JSON object; re-save the backbone."
            )
    if "registered_name" in config:
        source = KERAS_HUB
    elif "model_type" in config:
        source = TRANSFORMERS
    elif "architecture" in config:
        source = TIMM
    else:
        source = None
    return LocalDirectory(path, config, source)


class Family:
    """One backbone architecture: its specs, backbone, layer groups and LoRA targets.

    Subclasses set the class attributes; `TextFamily` and `ImageFamily` add
    what a modality needs. `tftune.families.FAMILIES` lists one instance of each.

    Example:

    ```python
    family = tftune.families.get_family("bert")
    family.name, family.modality.name, len(family.presets())  # ('bert', 'text', 36)
    ```
    """

    # Registry key (the module's name) and the name people use.
    name: str = ""
    title: str = ""
    modality: Modality
    # The keras-hub Backbone class, whose presets and saved folders this family loads.
    backbone_class: type | None = None
    # Hugging Face `model_type`s / timm `architecture` prefixes that keras-hub converts for this family.
    transformers_model_types: tuple[str, ...] = ()
    timm_architectures: tuple[str, ...] = ()
    # Files a Hugging Face folder needs besides config.json and the weights (keras-hub's converter reads them).
    transformers_files: tuple[str, ...] = ()
    # Layer names `enable_lora` targets (keras-hub's defaults are query/value names); () = no attention to target.
    lora_targets: tuple[str, ...] = ()
    # Guarantees the family cannot honour, in words (`tftune info` prints them; a test pins each).
    limits: tuple[str, ...] = ()

    def presets(self) -> list[str]:
        """The keras-hub preset names of this family."""
        return sorted(self.backbone_class.presets) if self.backbone_class is not None else []

    def spec_forms(self) -> list[str]:
        """The forms of backbone spec this family accepts, in words."""
        forms = []
        if self.backbone_class is not None:
            forms.append(f"keras-hub preset name ({len(self.presets())} presets)")
            forms.append(f"local keras-hub preset folder ({self.backbone_class.__name__}, from save_to_preset)")
        if self.transformers_model_types:
            forms.append(f"local Hugging Face folder (model_type {', '.join(self.transformers_model_types)})")
        if self.timm_architectures:
            forms.append(f"local timm folder (architecture {', '.join(a + '*' for a in self.timm_architectures)})")
        return forms

    def accepts(self, spec: str, local: LocalDirectory | None) -> bool:
        """Whether `spec` (a name, or a folder described by `local`) is a backbone of this family."""
        if local is None:
            return spec in self.presets()
        if local.source == KERAS_HUB:
            return self.backbone_class is not None and local.config.get("class_name") == self.backbone_class.__name__
        if local.source == TRANSFORMERS:
            return local.config.get("model_type") in self.transformers_model_types
        if local.source == TIMM:
            return str(local.config.get("architecture", "")).startswith(self.timm_architectures or ("\0",))
        return False

    def owns(self, backbone: keras.Model) -> bool:
        """Whether `backbone` is a model of this family."""
        return self.backbone_class is not None and type(backbone) is self.backbone_class

    def load_backbone(self, spec: str, local: LocalDirectory | None, pretrained: bool) -> keras.Model:
        """The backbone of `spec`, with its pretrained weights when `pretrained`."""
        if local is not None and local.source == TRANSFORMERS:
            self.check_transformers_folder(local, pretrained)
        return load_preset(self.backbone_class, spec, load_weights=pretrained)

    def check_transformers_folder(self, local: LocalDirectory, pretrained: bool) -> None:
        """Refuse a Hugging Face folder keras-hub's converter would fail on, naming what is missing."""
        problems = []
        weights = ("model.safetensors", "model.safetensors.index.json")
        if pretrained and not any(local.has(name) for name in weights):
            problems.append(f"it lacks the weights file {weights[0]!r} (pass weights=None for a random init)")
        if "architectures" not in local.config:
            problems.append(
                f"its config.json has no 'architectures' key, which keras-hub's converter reads (add e.g. "
                f"\"architectures\": [\"{self.title.replace('-', '')}Model\"])"
            )
        missing = [name for name in self.transformers_files if not local.has(name)]
        if missing:
            problems.append(f"it lacks {missing} (keras-hub's {self.title} converter reads them)")
        if problems:
            raise ValueError(
                f"{local.path!r} is a Hugging Face {self.title} folder, but {'; and '.join(problems)}. "
                f"Found: {local.files}."
            )

    def layer_groups(self, backbone: keras.Model) -> tuple[LayerGroup, ...]:
        """The backbone's layer groups from the input upwards; every trainable weight in exactly one."""
        raise NotImplementedError

    def resolve(self, spec: str, local: LocalDirectory | None, pretrained: bool, **options) -> Any:
        """The backbone and what a builder needs to put a head on it (`ResolvedBackbone`)."""
        raise NotImplementedError

    def option_errors(self, **options) -> list[str | None]:
        """Problems with modality options (e.g. `sequence_length`) for this family, for `raise_errors`."""
        return []

    def describe(self) -> dict:
        """What `tftune info` prints about the family."""
        return {
            "family": self.name,
            "title": self.title,
            "modality": self.modality.name,
            "spec_forms": self.spec_forms(),
            "lora_targets": list(self.lora_targets) or None,
            "limits": list(self.limits),
        }


def load_preset(backbone_class: type, spec: str, load_weights: bool) -> keras.Model:
    """`backbone_class.from_preset(spec)`, with a clear error when a hub preset cannot be downloaded."""
    try:
        return backbone_class.from_preset(spec, load_weights=load_weights)
    except safetensors.SafetensorError as error:
        raise ValueError(
            f"model.safetensors in {spec!r} exists but cannot be read ({error}): the download or copy was probably "
            f"cut short. Re-download the checkpoint, or pass another backbone."
        ) from None
    except (OSError, ConnectionError) as error:
        if os.path.isdir(spec):
            raise
        raise BackboneUnavailableError(
            f"Could not download keras-hub preset {spec!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}). Without network access, download it on a connected machine "
            f"(`keras_hub.models.Backbone.from_preset({spec!r}).save_to_preset('DIR')`, and the tokenizer or image "
            f"converter too) and pass the local directory 'DIR' as the backbone."
        ) from None


def load_component(component_class: type, spec: str, what: str):
    """A tokenizer / image converter of `spec`, or None when the preset has none; a clear error when unreachable."""
    try:
        return component_class.from_preset(spec)
    except (OSError, ConnectionError) as error:
        if os.path.isdir(spec):
            return None
        raise BackboneUnavailableError(
            f"Could not load the {what} of {spec!r} ({type(error).__name__}: {str(error).splitlines()[0][:200]}). "
            f"Pass a local directory that holds it (as written by `save_to_preset`)."
        ) from None
    except ValueError:
        return None


# (regular expression on a layer name, group name with an optional `{index}`, offset added to the captured index)
GroupRule = tuple[str, str, int]


def groups_from_rules(
    layers: Iterable[keras.layers.Layer], rules: Sequence[GroupRule], owner: str
) -> tuple[LayerGroup, ...]:
    """Group `layers` by the first rule whose pattern matches each name, in order of first appearance.

    A weightless layer no rule knows is left out; one with weights raises
    `ValueError` naming it. A weightless layer a rule names (a dropout) joins
    that group, so it is switched off while the group is frozen.
    """
    groups: dict[str, list] = {}
    for layer in layers:
        name = _group_of(layer.name, rules)
        if name is None and not layer.weights:
            continue
        if name is None:
            raise ValueError(
                f"Layer {layer.name!r} of backbone {owner!r} holds weights but matches no layer-group rule "
                f"({[rule[0] for rule in rules]})."
            )
        groups.setdefault(name, []).append(layer)
    return tuple(LayerGroup(name, tuple(members)) for name, members in groups.items())


def _group_of(layer_name: str, rules: Sequence[GroupRule]) -> str | None:
    for pattern, group_name, offset in rules:
        match = re.match(pattern, layer_name)
        if match:
            return group_name.format(index=int(match.group(1)) + offset) if "{index}" in group_name else group_name
    return None


def merge_into_previous(groups: tuple[LayerGroup, ...], name: str) -> tuple[LayerGroup, ...]:
    """Fold the group `name` (a thin final norm, say) into the group before it."""
    names = [group.name for group in groups]
    if name not in names or names.index(name) == 0:
        return groups
    index = names.index(name)
    merged = LayerGroup(groups[index - 1].name, groups[index - 1].layers + groups[index].layers)
    return groups[: index - 1] + (merged,) + groups[index + 1 :]


def numbered_groups(prefix: str, layer_lists: Sequence[Sequence], start: int = 1) -> tuple[LayerGroup, ...]:
    """One group per entry of `layer_lists`, named `prefix_<start>`, `prefix_<start + 1>`, ..."""
    return tuple(
        LayerGroup(f"{prefix}_{index}", tuple(layers)) for index, layers in enumerate(layer_lists, start) if layers
    )


def by_identity(layers: Iterable) -> Callable[[Any], bool]:
    """A membership test by object identity (Keras layers compare by value in some versions)."""
    ids = {id(layer) for layer in layers}
    return lambda layer: id(layer) in ids


__all__ = [
    "HEAD",
    "PRETRAINED",
    "BackboneUnavailableError",
    "Family",
    "LayerGroup",
    "LocalDirectory",
    "Modality",
    "groups_from_rules",
    "load_component",
    "load_preset",
    "read_local_directory",
]

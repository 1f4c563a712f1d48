"""The family registry: every backbone family tftune ships, and the one a spec or a backbone belongs to.

Adding a family: write `tftune/families/<name>.py` (a `TextFamily` or
`ImageFamily` subclass and `FAMILY = ...`), its `<name>_test.py` beside it
(the shared harness), and one line in `FAMILIES` below.

Example:

```python
tftune.families.get_family("resnet50").title  # 'ResNet': a keras.applications name
[family.name for family in tftune.families.FAMILIES][:2]  # ['bert', 'distil_bert']
```
"""

from __future__ import annotations

import difflib
import os

import keras

from tftune._validation import raise_errors
from tftune.families import (
    albert,
    bert,
    cspnet,
    deberta_v3,
    deit,
    densenet,
    distil_bert,
    efficientnet,
    electra,
    f_net,
    hgnetv2,
    mit,
    mobilenet,
    mobilenetv5,
    resnet,
    roberta,
    roformer_v2,
    swin,
    vgg,
    vit,
    xception,
    xlm_roberta,
)
from tftune.families.base import PRETRAINED, Family, LocalDirectory, read_local_directory

# Subclasses before their parents (`owns` is an exact type match, `accepts` may overlap on names).
FAMILIES: tuple[Family, ...] = (
    bert.FAMILY,
    distil_bert.FAMILY,
    xlm_roberta.FAMILY,
    roberta.FAMILY,
    deberta_v3.FAMILY,
    albert.FAMILY,
    electra.FAMILY,
    f_net.FAMILY,
    roformer_v2.FAMILY,
    resnet.FAMILY,
    efficientnet.FAMILY,
    mobilenet.FAMILY,
    densenet.FAMILY,
    vgg.FAMILY,
    cspnet.FAMILY,
    xception.FAMILY,
    hgnetv2.FAMILY,
    vit.FAMILY,
    deit.FAMILY,
    swin.FAMILY,
    mit.FAMILY,
    mobilenetv5.FAMILY,
)


def get_family(spec: str | os.PathLike) -> Family:
    """The family of a backbone spec: a family name, a keras-hub preset, a keras.applications name or a local folder.

    Example:

    ```python
    tftune.families.get_family(text_backbone).name  # 'bert'
    ```
    """
    spec = os.fspath(spec)
    by_name = {family.name: family for family in FAMILIES}
    if spec in by_name:
        return by_name[spec]
    local = _local(spec)
    for family in FAMILIES:
        if family.accepts(spec, local):
            return family
    raise ValueError(_unknown_spec_message(spec, local))


def family_of(backbone: keras.Model) -> Family:
    """The family a built backbone model belongs to.

    Example:

    ```python
    tftune.families.family_of(keras.applications.ResNet50(weights=None, include_top=False)).name  # 'resnet'
    ```
    """
    for family in FAMILIES:
        if family.owns(backbone):
            return family
    raise ValueError(
        f"Backbone {backbone.name!r} ({type(backbone).__name__}) belongs to no tftune family; supported: "
        f"{', '.join(family.title for family in FAMILIES)}. Build the model with tftune.build_text_classifier or "
        f"tftune.build_image_classifier."
    )


def resolve_backbone(
    spec: str | os.PathLike, *, weights: str | os.PathLike | None = PRETRAINED, **options
):
    """Turn a backbone spec into the backbone model, its preprocessing and layer groups.

    Args:
        spec: a keras-hub preset name, a local keras-hub preset, Hugging Face
            or timm folder, or a keras.applications name (`tftune info`
            lists each family's forms).
        weights: `"pretrained"` (the default; `"imagenet"` is accepted too),
            `None` for random initialisation with the same architecture, or a
            path to a `.weights.h5` file.
        **options: the modality's options: `sequence_length` for text.

    Example:

    ```python
    resolved = tftune.resolve_backbone(text_backbone, sequence_length=16)
    resolved.preprocessor(["a fine film"])["token_ids"].shape  # (1, 16)
    ```
    """
    spec = os.fspath(spec)
    weights_file = _weights_file(weights)
    family = get_family(spec)
    raise_errors(*family.option_errors(**options))
    resolved = family.resolve(spec, _local(spec), weights in (PRETRAINED, "imagenet"), **options)
    if weights_file is not None:
        resolved.model.load_weights(weights_file)
    return resolved


def known_backbones() -> dict[str, list[str]]:
    """keras-hub preset names `resolve_backbone` accepts, by family (local folders aside).

    Example:

    ```python
    "all_minilm_l6_v2_en" in tftune.known_backbones()["bert"]  # True
    ```
    """
    return {family.name: family.presets() for family in FAMILIES}


def _local(spec: str) -> LocalDirectory | None:
    return read_local_directory(spec) if os.path.isdir(spec) else None


def _weights_file(weights) -> str | None:
    if weights in (PRETRAINED, "imagenet", None):
        return None
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(
            f"weights={weights!r} is neither 'pretrained', 'imagenet', None nor an existing weights file. "
            f"Pass a path to a '.weights.h5' file."
        )
    return path


def _unknown_spec_message(spec: str, local: LocalDirectory | None) -> str:
    families = ", ".join(family.title for family in FAMILIES)
    if local is not None:
        said = {
            None: "its config.json names no loader (no 'registered_name', 'model_type' or 'architecture')",
            "keras_hub": f"it is a keras-hub preset of {local.config.get('class_name')!r}",
            "transformers": f"it is a Hugging Face folder with model_type {local.config.get('model_type')!r}",
            "timm": f"it is a timm folder with architecture {local.config.get('architecture')!r}",
        }[local.source]
        return (
            f"Directory {spec!r} is not a backbone tftune can load: {said}. Supported families: {families}; "
            f"`tftune info` lists the folder forms each accepts. Found: {local.files}."
        )
    names = [name for family in FAMILIES for name in family.presets()] + list(resnet.APPLICATIONS)
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.6)
    return (
        f"Unknown backbone {spec!r}: not an existing directory, a keras.applications name or a keras-hub preset of "
        f"a supported family ({families}).{f' Close names: {close}.' if close else ''} `tftune info` lists every "
        f"family's presets and forms."
    )

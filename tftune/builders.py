"""Classifier builders: a Dense softmax head on a pretrained text or image backbone of any family.

`build_text_classifier` / `build_image_classifier` check their options,
resolve the backbone and return a `tftune.classifiers` model; `ModelSpec`
says what to build so that `tftune.fit` can build it in its strategy's scope.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from tftune._validation import (
    choice_error,
    image_size_error,
    integer_error,
    raise_errors,
)
from tftune.classifiers import ImageClassifier, TextClassifier
from tftune.families import (
    IMAGE,
    POOLINGS,
    PRETRAINED,
    TEXT,
    Modality,
    get_family,
    resolve_backbone,
)

_logger = logging.getLogger(__name__)


def build_text_classifier(
    backbone: str | os.PathLike,
    num_classes: int,
    *,
    sequence_length: int = 128,
    dropout: float = 0.1,
    labels: Sequence[str] | None = None,
    weights: str | os.PathLike | None = PRETRAINED,
    pooling: str | None = None,
) -> TextClassifier:
    """Build a text classifier: a text backbone of any family, a token pooling and a Dense softmax head.

    Args:
        backbone: a text backbone spec: a keras-hub preset name, a local
            keras-hub preset or Hugging Face folder (`tftune info` lists the
            families and their forms).
        num_classes: number of classes, at least 2.
        sequence_length: tokens per example, at most the backbone's maximum
            position embeddings.
        dropout: dropout rate before the head, in [0, 1).
        labels: class names, one per class (default "0", "1", ...).
        weights: "pretrained", None (random init) or a `.weights.h5` path.
        pooling: "cls" (the backbone's pooler, or its first token), "mean"
            or "max" (over the tokens, padding excluded), or None for the
            checkpoint's own: what a sentence-transformers folder's
            `1_Pooling/config.json` says, else "cls". The result is
            `model.pooling`.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=64, labels=["rotten", "fresh"])
    max_pooled = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=64, pooling="max")
    ```
    """
    labels = _label_names(labels)
    raise_errors(
        *_head_errors(num_classes, labels, dropout),
        integer_error("sequence_length", sequence_length, minimum=1),
        choice_error("pooling", pooling, (None, *POOLINGS)),
    )
    _check_modality(backbone, TEXT)
    resolved = resolve_backbone(backbone, weights=weights, sequence_length=sequence_length)
    if pooling is None:
        pooling = resolved.pooling or "cls"
        source = "its 1_Pooling/config.json" if resolved.pooling else "the [CLS] default: the checkpoint names none"
        _logger.info("Text classifier on %s: pooling=%r (%s).", resolved.spec, pooling, source)
    return TextClassifier(
        resolved.model, num_classes, preprocessor=resolved.preprocessor, labels=labels, dropout=dropout, pooling=pooling
    )


def build_image_classifier(
    backbone: str | os.PathLike,
    num_classes: int,
    *,
    image_size: tuple[int, int] | None = None,
    dropout: float = 0.2,
    labels: Sequence[str] | None = None,
    weights: str | os.PathLike | None = PRETRAINED,
) -> ImageClassifier:
    """Build an image classifier: an image backbone of any family, its pooling and a Dense softmax head.

    Args:
        backbone: an image backbone spec: a keras.applications name such as
            "resnet50", a keras-hub preset name, or a local keras-hub preset,
            Hugging Face or timm folder (`tftune info` lists them).
        num_classes: number of classes, at least 2.
        image_size: (height, width) the model resizes to; each at least 32.
            None: the backbone's fixed size (ViT-like), else 224 x 224.
        dropout: dropout rate before the head, in [0, 1).
        labels: class names, one per class (default "0", "1", ...).
        weights: "pretrained" (ImageNet), None (random init) or a
            `.weights.h5` path.

    Example:

    ```python
    model = tftune.build_image_classifier(image_backbone, num_classes=10, image_size=(64, 64), weights=None)
    ```
    """
    labels = _label_names(labels)
    raise_errors(
        *_head_errors(num_classes, labels, dropout),
        image_size is not None and image_size_error("image_size", image_size),
    )
    _check_modality(backbone, IMAGE)
    resolved = resolve_backbone(backbone, weights=weights)
    if resolved.image_size is not None and image_size is not None and tuple(image_size) != resolved.image_size:
        raise ValueError(
            f"image_size={tuple(image_size)} but {resolved.family.title} backbone {backbone!r} takes only "
            f"{resolved.image_size} images. Leave image_size unset (or pass {resolved.image_size})."
        )
    size = image_size or resolved.image_size or (224, 224)
    return ImageClassifier(
        resolved.model, num_classes, image_size=size, labels=labels, dropout=dropout, resizing=resolved.resizing,
        **resolved.normalization,
    )


def build_classifier(backbone: str | os.PathLike, num_classes: int, **options) -> keras.Model:
    """Build a text or image classifier, whichever the backbone's family is for.

    `options` are those of `build_text_classifier` or `build_image_classifier`.

    Example:

    ```python
    tftune.build_classifier(image_backbone, 3, image_size=(32, 32), weights=None).modality.name  # 'image'
    ```
    """
    return _BUILDERS[get_family(backbone).modality](backbone, num_classes, **options)


def _check_modality(backbone, modality: Modality) -> None:
    family = get_family(backbone)
    if family.modality is not modality:
        raise ValueError(
            f"{os.fspath(backbone)!r} is a backbone for {family.modality.name} ({family.title}), not for "
            f"{modality.name}. Use it for a {family.modality.name} task (build_{family.modality.name}_classifier, "
            f"--task {family.modality.name}), or pass a backbone for {modality.name} (`tftune info` lists them)."
        )


def _label_names(labels) -> list[str] | None:
    return None if labels is None else [str(label) for label in labels]


def _head_errors(num_classes, labels: list[str] | None, dropout) -> list[str | None]:
    """The problems with the head's options (`labels` as `_label_names` gives them), for `raise_errors`."""
    errors = [integer_error("num_classes", num_classes, minimum=2)]
    # Dropout's rate 1 would divide by zero: [0, 1), which number_error's closed or open ranges cannot say.
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        errors.append(f"dropout must be a number in [0, 1); got {dropout!r}.")
    if labels is not None:
        if len(labels) != num_classes:
            errors.append(
                f"labels has {len(labels)} names ({labels}) but num_classes={num_classes!r}; "
                f"give exactly one name per class."
            )
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            errors.append(f"labels must be distinct; {duplicates} appear more than once in {labels}.")
    return errors


_BUILDERS = {TEXT: build_text_classifier, IMAGE: build_image_classifier}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What to build: a "text" or "image" classifier, its backbone, classes and builder options.

    `tftune.fit` builds it inside the strategy's scope and precision policy.
    `kind` must match the backbone family's modality.

    Example:

    ```python
    spec = tftune.ModelSpec("image", image_backbone, num_classes=3, options={"image_size": (64, 64), "weights": None})
    model = spec.build()
    ```
    """

    kind: str
    backbone: str
    num_classes: int
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        kinds = {modality.name: modality for modality in _BUILDERS}
        if self.kind not in kinds:
            raise ValueError(f"ModelSpec.kind must be one of {sorted(kinds)}; got {self.kind!r}.")

    @property
    def modality(self) -> Modality:
        """The modality `kind` names (TEXT or IMAGE)."""
        return next(modality for modality in _BUILDERS if modality.name == self.kind)

    def build(self) -> keras.Model:
        return _BUILDERS[self.modality](self.backbone, self.num_classes, **dict(self.options))

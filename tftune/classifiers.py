"""tftune's classifiers: a text or image backbone of any family, its pooling and a Dense softmax head.

The models are Keras functional models (keras-hub's Task pattern): they
record their backbone, layer groups and label names, and round-trip through
`model.save("m.keras")` / `keras.models.load_model`. Build them with the
functions of `tftune.builders`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tftune import data as data_lib
from tftune._validation import choice_error, raise_errors
from tftune.families import HEAD, IMAGE, POOLINGS, TEXT, LayerGroup, Modality, family_of
from tftune.unfreeze import route_group_optimizers

IMAGE_INPUT = "images"
HEAD_LAYER = "probabilities"


class _Classifier(keras.Model):
    """What both classifiers share: the head, label names, layer groups, config."""

    modality: Modality
    # Backbone groups whose layers do not reach the output: frozen, and not in `layer_groups`.
    unused_groups: tuple[str, ...] = ()

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

    def compile_from_config(self, config):
        # Keras' own builds the optimizer at once, before the routes (keyed by the saved model's variable paths) are
        # re-keyed: a rebuilt model's auto-named layers (MiT, MobileNetV5) may have other paths.
        self.compile(**keras.saving.deserialize_keras_object(config))
        route_group_optimizers(self)
        self.optimizer.build(self.trainable_variables)

    @property
    def family(self):
        """The backbone's family (`tftune.families`), which knows its groups, inputs and serving needs."""
        return family_of(self.backbone)

    @property
    def kind(self) -> str:
        """The modality's name, "text" or "image" (what export metadata records)."""
        return self.modality.name

    @property
    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """Backbone groups from the input upwards, then the `head` group."""
        groups = self.family.layer_groups(self.backbone)
        used = tuple(group for group in groups if group.name not in self.unused_groups)
        return used + (LayerGroup(HEAD, (self.get_layer(HEAD_LAYER),)),)

    def classify(self, inputs, *, probabilities: bool = False, batch_size: int = 32):
        """Label names for raw inputs (strings for text, HxWx3 RGB arrays for images); with probabilities too.

        One input gives one label; a list gives a list. `probabilities=True`
        returns `(labels, probabilities)`, the probabilities `[n, classes]`
        in the order of `self.labels`.

        Example:

        ```python
        model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
        model.classify("a fine film") in ("rotten", "fresh")  # True
        ```
        """
        single = self._is_single_input(inputs)
        batch = [inputs] if single else list(inputs)
        scores = np.concatenate(
            [self.predict_on_batch(self._model_inputs(batch[start : start + batch_size]))
             for start in range(0, len(batch), batch_size)]
        ) if batch else np.zeros((0, self.num_classes), "float32")
        labels = [self.labels[index] for index in np.argmax(scores, axis=-1)]
        if single:
            labels, scores = labels[0], scores[0]
        return (labels, scores) if probabilities else labels

    def _freeze_unused_groups(self) -> None:
        # A trainable weight without a gradient makes every step warn; the
        # freeze helpers only ever touch the groups in `layer_groups`.
        for group in self.family.layer_groups(self.backbone):
            if group.name in self.unused_groups:
                for layer in group.layers:
                    layer.trainable = False

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
    """A text backbone of any family, a token pooling and a Dense softmax head.

    Inputs are the backbone's own int32 inputs (BERT: `token_ids`,
    `segment_ids`, `padding_mask`; DistilBERT has no `segment_ids`, FNet no
    `padding_mask`), `[batch, sequence_length]`; `preprocessor` turns raw
    strings into them. `pooling` is "cls" (the backbone's pooler where it has
    one, else the first token), "mean" or "max" (over the tokens, padding
    excluded). With "mean" / "max" a pooler does not reach the output: it
    stays frozen and is not one of the `layer_groups`. Build one with
    `tftune.build_text_classifier`.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16, labels=["rotten", "fresh"])
    model.pooling  # 'mean', what the MiniLM checkpoint was trained with
    model(model.preprocessor(["a fine film"])).shape  # (1, 2)
    ```
    """

    modality = TEXT

    def __init__(
        self,
        backbone,
        num_classes: int,
        preprocessor=None,
        labels=None,
        dropout: float = 0.1,
        pooling: str = "cls",
        **kwargs,
    ):
        raise_errors(choice_error("pooling", pooling, POOLINGS))
        family = family_of(backbone)
        self.backbone = backbone
        self.preprocessor = preprocessor
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in family.input_names(backbone)
        }
        pad_token_id = preprocessor.tokenizer.pad_token_id if preprocessor is not None else 0
        features = family.features(backbone, inputs, pooling, pad_token_id=pad_token_id)
        self._attach_head(inputs, features, num_classes, labels, dropout, **kwargs)
        self.pooling = pooling
        self.unused_groups = family.unused_groups(pooling)
        self._freeze_unused_groups()

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model's int32 inputs, the backbone's own (what the token serving signature takes)."""
        return tuple(self.input)

    @property
    def sequence_length(self) -> int:
        return self.preprocessor.sequence_length

    def prepared_data(
        self, splits: data_lib.DataSplits, batch_size: int, *, seed: int = 0, augmentation: Sequence[str] = ()
    ) -> data_lib.PreparedData:
        """Batched token pipelines of `splits` for this model (`tftune.text_pipelines` with its preprocessor).

        Example:

        ```python
        model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16)
        splits = tftune.load_text_splits((["good", "bad"] * 10, [1, 0] * 10), validation_fraction=0.5)
        model.prepared_data(splits, 5).steps_per_epoch  # 2
        ```
        """
        raise_errors(
            f"augmentation applies to images only; got {list(augmentation)} for a text model." if augmentation else None
        )
        return data_lib.text_pipelines(splits, self.preprocessor, batch_size, seed=seed)

    def _is_single_input(self, inputs) -> bool:
        return isinstance(inputs, str)

    def _model_inputs(self, batch: list):
        return self.preprocessor(batch)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "preprocessor": keras.layers.serialize(self.preprocessor),
            "pooling": self.pooling,
        }


@keras.saving.register_keras_serializable(package="tftune")
class ImageClassifier(_Classifier):
    """An image backbone of any family, its feature pooling, dropout and a Dense softmax head.

    The input is float `images` `[batch, H, W, 3]`, RGB in 0..255, any size:
    the model resizes to `image_size` the way the checkpoint's image converter
    does (`resizing`: interpolation, crop to aspect ratio, antialias) and
    normalizes the way the backbone was pretrained (`scale`, `offset`, and a
    RGB->BGR flip for caffe-style keras.applications ResNets). BatchNorm
    layers of a frozen group run in inference mode. Build one with
    `tftune.build_image_classifier`.

    Example:

    ```python
    model = tftune.build_image_classifier(image_backbone, num_classes=3, image_size=(64, 64), weights=None)
    model(np.zeros((1, 64, 64, 3), "float32")).shape  # (1, 3)
    ```
    """

    modality = IMAGE

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
        resizing: dict | None = None,
        **kwargs,
    ):
        self.backbone = backbone
        self.image_size = tuple(image_size)
        self.scale, self.offset, self.reverse_channels = scale, offset, reverse_channels
        self.resizing = dict(resizing or {})
        images = keras.Input(shape=(None, None, 3), dtype="float32", name=IMAGE_INPUT)
        # Resizing defaults to training=True, and Keras passes that on to the layers after it: when the model is called
        # without `training`, the backbone (dropout, BatchNorm statistics) would train.
        x = keras.layers.Resizing(*self.image_size, name="resize", **self.resizing)(images, training=False)
        if reverse_channels:
            x = ReverseChannels(name="rgb_to_bgr")(x)
        x = keras.layers.Rescaling(scale, offset, name="normalize")(x)
        x = family_of(backbone).features(backbone, x)
        self._attach_head(images, x, num_classes, labels, dropout, **kwargs)

    def prepared_data(
        self, splits: data_lib.DataSplits, batch_size: int, *, seed: int = 0, augmentation: Sequence[str] = ()
    ) -> data_lib.PreparedData:
        """Batched image pipelines of `splits` for this model (`tftune.image_pipelines` at its size and resizing).

        Example:

        ```python
        model = tftune.build_image_classifier(image_backbone, 2, image_size=(32, 32), weights=None)
        splits = tftune.load_image_splits((np.zeros((8, 40, 40, 3)), [0, 1] * 4), validation_fraction=0.5)
        model.prepared_data(splits, 2, augmentation=["flip"]).steps_per_epoch  # 2
        ```
        """
        return data_lib.image_pipelines(
            splits, self.image_size, batch_size, augmentation=augmentation, seed=seed, resizing=self.resizing
        )

    def _is_single_input(self, inputs) -> bool:
        return np.ndim(inputs) == 3 and not isinstance(inputs, list)

    def _model_inputs(self, batch: list):
        shapes = {np.shape(image) for image in batch}
        if len(shapes) > 1:
            raise ValueError(
                f"classify takes images of one size per call; got sizes {sorted(shapes)}. Resize them, or classify "
                f"them one at a time."
            )
        return np.asarray(batch, dtype="float32")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "image_size": list(self.image_size),
            "scale": self.scale,
            "offset": self.offset,
            "reverse_channels": self.reverse_channels,
            "resizing": self.resizing,
        }


@keras.saving.register_keras_serializable(package="tftune")
class ReverseChannels(keras.layers.Layer):
    """Reverses the channel axis (RGB -> BGR), as caffe-style ResNets expect.

    Example:

    ```python
    tftune.ReverseChannels()(np.array([[[[1.0, 2.0, 3.0]]]]))  # [[[[3., 2., 1.]]]]
    ```
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-1)

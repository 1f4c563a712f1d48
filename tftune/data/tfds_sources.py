"""TensorFlow Datasets sources: prepared builders read offline, their feature keys, label names and splits."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tftune.data.examples import LabeledTexts
from tftune.data.files import missing_source_error

_logger = logging.getLogger(__name__)

_VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev")
TEXT_KEY_PREFERENCE = ("text", "sentence", "description", "review", "content", "document")


class DatasetUnavailableError(RuntimeError):
    """A tfds dataset is not prepared in `data_dir` (and `download=True` was not given).

    Example:

    ```python
    try:
        tftune.load_text_splits("imdb_reviews", data_dir="empty_tfds_dir")
    except tftune.DatasetUnavailableError as error:
        print(error)  # ... tftune does not download unless you pass download=True ...
    ```
    """


@dataclasses.dataclass(frozen=True)
class _TfdsImages:
    """The examples at `indices` of a tfds image split; images are decoded after the selection."""

    builder: object
    split: str
    image_key: str
    label_key: str
    labels: np.ndarray
    indices: np.ndarray
    split_size: int

    def subset(self, indices: Sequence[int]) -> _TfdsImages:
        indices = np.asarray(indices, dtype="int64")
        return dataclasses.replace(self, labels=self.labels[indices], indices=self.indices[indices])

    def examples(self) -> tf.data.Dataset:
        """(RGB image, int32 label) of the selected examples, in split order."""
        import tensorflow_datasets as tfds

        feature = self.builder.info.features[self.image_key]
        examples = self.builder.as_dataset(
            split=self.split, shuffle_files=False, decoders={self.image_key: tfds.decode.SkipDecoding()}
        )
        if len(self.indices) != self.split_size:
            keep = np.zeros(self.split_size, dtype=bool)
            keep[self.indices] = True
            keep = tf.constant(keep)
            examples = examples.enumerate().filter(lambda index, example: tf.gather(keep, index))
            examples = examples.map(lambda index, example: example)
        grayscale = feature.shape[-1] == 1

        def decoded(example):
            image = feature.decode_example(example[self.image_key])
            return tf.image.grayscale_to_rgb(image) if grayscale else image, tf.cast(example[self.label_key], "int32")

        return examples.map(decoded, num_parallel_calls=tf.data.AUTOTUNE)


def is_tfds_source(source) -> bool:
    """Whether `source` is a tfds builder, or a string that is no existing path (so a tfds name, or a mistake)."""
    if hasattr(source, "as_dataset") and hasattr(source, "info"):
        return True
    return isinstance(source, str) and not os.path.exists(source)


def tfds_builder(source, kind: str, data_dir: str | None, download: bool):
    """The tfds builder `source` names (or is); a `kind` source error when it names none."""
    import tensorflow_datasets as tfds

    if not isinstance(source, str):
        return source
    try:
        name, _ = tfds.core.naming.parse_builder_name_kwargs(source)
    except ValueError:  # not even shaped like a tfds name
        raise ValueError(missing_source_error(source, kind)) from None
    try:
        builder = tfds.builder(source, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(missing_source_error(source, kind)) from None
    except (ValueError, AssertionError) as error:
        # A known dataset with an unknown config or version; tfds' reason follows its builder arguments.
        reason = str(error).split('": ', 1)[-1].split(" Here are")[0].strip()
        configs = [config.name for config in tfds.builder_cls(str(name)).BUILDER_CONFIGS]
        raise ValueError(
            f"{source!r}: tfds has the dataset {str(name)!r} but cannot build it as named: {reason} "
            f"{f'Its configs are {configs}. ' if configs else ''}Fix the config / version after the dataset name "
            f"(see https://www.tensorflow.org/datasets/catalog/{name})."
        ) from None
    if builder.is_prepared():
        return builder
    if download:
        builder.download_and_prepare()
        return builder
    root = os.fspath(builder.data_dir_root)
    raise DatasetUnavailableError(
        f"The tfds dataset {source!r} is not prepared in data_dir {root!r} (looked for {builder.data_path}). "
        f"tftune does not download unless you pass download=True. To prepare it offline: on a machine with "
        f"network access run `tfds build {source} --data_dir <dir>` (or "
        f"`tfds.builder({source!r}, data_dir=<dir>).download_and_prepare()`), copy <dir> to this machine "
        f"and pass data_dir=<dir>."
    )


def feature_key(builder, kind: str, key: str | None, argument: str, preference: Sequence[str] = ()) -> str:
    features = builder.info.features
    candidates = [name for name, feature in features.items() if type(feature).__name__ == kind]
    if key is not None:
        if key not in candidates:
            raise ValueError(
                f"{argument}={key!r} is not a {kind} feature of tfds {builder.name}; its {kind} features are "
                f"{candidates} (all features: {list(features)})."
            )
        return key
    preferred = [name for name in preference if name in candidates]
    if len(candidates) == 1 or preferred:
        return (preferred or candidates)[0]
    raise ValueError(
        f"Cannot tell which feature of tfds {builder.name} to use for {argument}: its {kind} features are "
        f"{candidates} (all features: {list(features)}). Pass {argument}=<feature name>."
    )


def tfds_label_names(builder, label_key: str, label_names) -> list[str]:
    names = list(builder.info.features[label_key].names)
    if label_names is None:
        return names
    if len(label_names) != len(names):
        raise ValueError(
            f"label_names must rename the {len(names)} classes of tfds {builder.name} ({names}) one for one; "
            f"got {len(label_names)} names."
        )
    return list(label_names)


def tfds_validation_split(builder, validation: str | None) -> str | None:
    available = list(builder.info.splits.keys())
    if validation is None:
        return next((name for name in _VALIDATION_SPLIT_NAMES if name in available), None)
    if not isinstance(validation, str) or (available and validation.split("[")[0] not in available):
        raise ValueError(f"validation must be a split of tfds {builder.name} ({available}); got {validation!r}.")
    return validation


def _read_tfds_labels(builder, split: str, label_key: str, names, decoders, select) -> tuple[list, np.ndarray]:
    """Reads `select(example)` and the labels of a whole split, with a progress bar."""
    examples = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    total = int(examples.cardinality())
    _logger.info("tftune: reading tfds %s split %r", builder.name, split)
    progress = keras.utils.Progbar(total if total > 0 else None, unit_name="example")
    values, labels = [], []
    pairs = examples.map(lambda example: (select(example), example[label_key])).batch(1024)
    for value, label in pairs.as_numpy_iterator():
        values += list(value)
        labels.append(label)
        progress.add(len(label))
    labels = np.concatenate(labels).astype("int64") if labels else np.zeros(0, "int64")
    bad = sorted(set(labels[(labels < 0) | (labels >= len(names))].tolist()))
    if bad:
        raise ValueError(
            f"Split {split!r} of tfds {builder.name} has labels {bad[:5]} outside 0..{len(names) - 1} "
            f"(tfds marks unlabeled examples, e.g. GLUE test splits, with -1). Use a labeled split."
        )
    return values, labels.astype("int32")


def read_tfds_texts(builder, split: str, text_key: str, label_key: str, names) -> LabeledTexts:
    texts, labels = _read_tfds_labels(builder, split, label_key, names, None, lambda example: example[text_key])
    return LabeledTexts([text.decode("utf-8") for text in texts], labels, list(names))


def read_tfds_images(builder, split: str, image_key: str, label_key: str, names) -> _TfdsImages:
    """The whole split, its labels read without decoding a single image."""
    import tensorflow_datasets as tfds

    _, labels = _read_tfds_labels(
        builder, split, label_key, names, {image_key: tfds.decode.SkipDecoding()}, lambda example: example[label_key]
    )
    return _TfdsImages(builder, split, image_key, label_key, labels, np.arange(len(labels)), len(labels))

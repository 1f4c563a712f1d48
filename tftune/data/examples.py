"""Labeled examples in memory (texts, images, image files) and the label rules they share."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

# Label values that mean "no label" (after stripping whitespace, any case), unless
# label_names lists them as a class.
MISSING_LABELS = ("", "nan", "none", "null")
_INTEGER_TYPES = (int, np.integer)


@dataclasses.dataclass(frozen=True)
class LabeledTexts:
    """Texts with integer labels that index `label_names`.

    Example:

    ```python
    data = tftune.LabeledTexts(["good", "bad", "fine"], np.array([1, 0, 1], "int32"), ["neg", "pos"])
    data.class_counts(), data.subset([0, 2]).texts  # {'neg': 1, 'pos': 2}, ['good', 'fine']
    ```
    """

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        """`{label name: number of examples}`, in label order."""
        return label_counts(self.labels, self.label_names)

    def subset(self, indices: Sequence[int]) -> LabeledTexts:
        """The examples at `indices`, same label names."""
        indices = np.asarray(indices, dtype="int64")
        return LabeledTexts([self.texts[i] for i in indices], self.labels[indices], self.label_names)

    def examples(self) -> tf.data.Dataset:
        """An unbatched dataset of (text, label)."""
        return tf.data.Dataset.from_tensor_slices((tf.constant(self.texts, tf.string), self.labels))


@dataclasses.dataclass(frozen=True)
class LabeledImages:
    """RGB images (float32, 0..255, `[N, H, W, 3]`) with integer labels that index `label_names`.

    Example:

    ```python
    digits = tftune.load_mnist_digits()
    digits.images.shape, digits.class_counts()["7"]  # (5000, 28, 28, 3), 500
    ```
    """

    images: np.ndarray
    labels: np.ndarray
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self) -> dict[str, int]:
        """`{label name: number of examples}`, in label order."""
        return label_counts(self.labels, self.label_names)

    def subset(self, indices: Sequence[int]) -> LabeledImages:
        """The images at `indices`, same label names."""
        indices = np.asarray(indices, dtype="int64")
        return LabeledImages(self.images[indices], self.labels[indices], self.label_names)

    def examples(self) -> tf.data.Dataset:
        """An unbatched dataset of (image, label)."""
        return tf.data.Dataset.from_tensor_slices((self.images, self.labels))


@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """Image file paths with integer labels, decoded lazily inside tf.data."""

    paths: list[str]
    labels: np.ndarray
    label_names: list[str]

    def subset(self, indices: Sequence[int]) -> ImageFiles:
        indices = np.asarray(indices, dtype="int64")
        return ImageFiles([self.paths[i] for i in indices], self.labels[indices], self.label_names)

    def examples(self) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((self.paths, self.labels)).map(
            lambda path, label: (decode_image_file(path), label), num_parallel_calls=tf.data.AUTOTUNE
        )


def decode_image_file(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def label_counts(labels: np.ndarray, label_names) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype="int64"), minlength=len(label_names))
    return {name: int(count) for name, count in zip(label_names, counts)}


def label_names_error(label_names) -> str | None:
    """The problem with `label_names` as a user's list of class names (None: from the data), or None."""
    if label_names is not None and (
        isinstance(label_names, str) or len(set(label_names)) != len(label_names) or len(label_names) < 2
    ):
        return f"label_names must be a list of 2 or more distinct names; got {label_names!r}."
    return None


def is_missing_label(label, label_names) -> bool:
    """Whether `label` is empty / whitespace / NaN / None (a value `label_names` lists is never missing)."""
    if label_names is not None and isinstance(label, str) and label in label_names:
        return False
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return True
    return isinstance(label, str) and label.strip().lower() in MISSING_LABELS


def encode_labels(raw_labels: Sequence, label_names, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels index `label_names`; string labels are looked up in it (default: sorted unique)."""
    raw = list(raw_labels)
    if all(isinstance(label, _INTEGER_TYPES) and not isinstance(label, bool) for label in raw):
        numbers = np.asarray(raw, dtype="int64")
        names = [str(index) for index in range(int(numbers.max()) + 1)] if label_names is None else list(label_names)
        bad = sorted({int(n) for n in numbers if not 0 <= n < len(names)})
        if bad:
            raise ValueError(
                f"Integer labels in {where} must index label_names {names} (0..{len(names) - 1}); got {bad[:10]}. "
                f"Fix the labels or pass the full label_names list."
            )
        return numbers.astype("int32"), names
    if all(isinstance(label, str) for label in raw):
        names = sorted(set(raw)) if label_names is None else list(label_names)
        index = {name: position for position, name in enumerate(names)}
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise ValueError(
                f"Labels in {where} that are not in the label list {names}: {unknown[:10]}. "
                f"Add them to label_names or fix the data."
            )
        return np.asarray([index[label] for label in raw], dtype="int32"), names
    kinds = sorted({type(label).__name__ for label in raw})
    raise ValueError(f"Labels in {where} must all be strings or all integers; got {kinds}.")

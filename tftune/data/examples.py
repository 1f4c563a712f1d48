"""Labeled examples in memory (texts, images, image files) and the label rules they share."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

# Label values that mean "no label" (after stripping whitespace, any case), unless
# label_names lists them as a class.
MISSING_LABELS = ("", "nan", "none", "null")
# Numeric labels with a fraction and more distinct values than this look like a regression target.
MAX_FRACTIONAL_CLASSES = 10
# How many rows an error lists before "...".
SHOWN_ROWS = 10


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
    return {name: int(count) for name, count in zip(label_names, counts, strict=False)}


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


def row_places(indices: Sequence[int], lines: Sequence[int] | None) -> str:
    """Where rows `indices` are: their file lines ("lines 3, 7") when known, else their indices ("indices 2, 6")."""
    if lines is None:
        return _numbered("index", "indices", indices)
    return _numbered("line", "lines", [lines[index] for index in indices])


def _numbered(singular: str, plural: str, numbers: Sequence[int]) -> str:
    shown = ", ".join(str(number) for number in numbers[:SHOWN_ROWS])
    return f"{plural if len(numbers) > 1 else singular} {shown}{' ...' if len(numbers) > SHOWN_ROWS else ''}"


def _label_kind(label) -> str:
    """"number" (int or float, not bool), "string", or the type name of anything else (NumPy scalars unwrapped)."""
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return "number"
    return "string" if isinstance(label, str) else type(label).__name__


def _number(label) -> float | None:
    """`label` (a number or a string) as a finite float, or None."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _continuous_error(raw: list, where: str, column: str) -> str | None:
    """The problem with labels that are numbers with many distinct fractional values (a regression target), or None."""
    values = [_number(label) for label in raw]
    if any(value is None for value in values) or all(value.is_integer() for value in values):
        return None
    distinct = list(dict.fromkeys(raw))
    if len(distinct) <= MAX_FRACTIONAL_CLASSES:
        return None
    shown = ", ".join(repr(label) for label in distinct[:5])
    return (
        f"The labels in {column!r} of {where} look like continuous numbers, not classes: {len(distinct)} distinct "
        f"values in {len(raw)} examples, not all whole numbers (e.g. {shown}, ...). A classifier would make each "
        f"distinct value a class. Use a column of class names or whole-number class ids (e.g. bin the values "
        f"into ranges), or, if each value really is a class, pass label_names listing them."
    )


def encode_labels(
    raw_labels: Sequence, label_names, where: str, column: str, places: Callable[[list[int]], str]
) -> tuple[np.ndarray, list[str]]:
    """Integer labels index `label_names`; string labels are looked up in it (default: sorted unique).

    Whole numbers (also floats such as 1.0) are class ids; numbers with a
    fraction are class names ("0.5"); numeric class names sort by value.
    Without `label_names`, numbers with more than `MAX_FRACTIONAL_CLASSES`
    distinct fractional values are refused as continuous, and strings that
    mix numbers and words ("1", "pos") as a mistake. `column` and
    `places` (row positions -> "lines 3, 7" or "indices 2, 6") name the
    bad labels.
    """
    raw = [label.item() if isinstance(label, np.generic) else label for label in raw_labels]
    kinds = [_label_kind(label) for label in raw]
    if set(kinds) != {"string"} and set(kinds) != {"number"}:
        raise ValueError(_mixed_labels_error(raw, kinds, where, column, places))
    if kinds[0] == "number" and all(float(label).is_integer() for label in raw):
        numbers = np.asarray([int(label) for label in raw], dtype="int64")
        names = [str(index) for index in range(int(numbers.max()) + 1)] if label_names is None else list(label_names)
        bad = sorted({int(n) for n in numbers if not 0 <= n < len(names)})
        if bad:
            raise ValueError(
                f"Integer labels in {where} must index label_names {names} (0..{len(names) - 1}); got {bad[:10]}. "
                f"Fix the labels or pass the full label_names list."
            )
        return numbers.astype("int32"), names
    problem = None
    if label_names is None:
        problem = _numbers_and_words_error(raw, where, column, places) or _continuous_error(raw, where, column)
    if problem:
        raise ValueError(problem)
    if kinds[0] == "number":
        raw = [str(float(label)) for label in raw]
    if label_names is None:
        numeric = all(_number(label) is not None for label in raw)
        names = sorted(set(raw), key=(lambda name: (_number(name), name)) if numeric else None)
    else:
        names = list(label_names)
    index = {name: position for position, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise ValueError(
            f"Labels in {where} that are not in the label list {names}: {unknown[:10]}. "
            f"Add them to label_names or fix the data."
        )
    return np.asarray([index[label] for label in raw], dtype="int32"), names


def _mixed_labels_error(raw: list, kinds: list[str], where: str, column: str, places: Callable) -> str:
    return (
        f"The labels in {column!r} of {where} must be all strings (class names) or all numbers (whole numbers are "
        f"class ids); got {_kinds_found(raw, kinds, places)}. Write every label the same way, e.g. all \"pos\" / "
        f"\"neg\" or all 0 / 1."
    )


def _numbers_and_words_error(raw: list, where: str, column: str, places: Callable) -> str | None:
    """The problem with string labels some of which are numbers and some words (e.g. "1" and "pos"), or None."""
    kinds = ["number" if _number(label) is not None else "word" for label in raw]
    if len(set(kinds)) == 1:
        return None
    return (
        f"The labels in {column!r} of {where} mix numbers and words: {_kinds_found(raw, kinds, places)}. Each "
        f"would be a class of its own. Write every label the same way, or, if these are the class names, pass "
        f"label_names listing them."
    )


def _kinds_found(raw: list, kinds: list[str], places: Callable) -> str:
    """Each kind of label in order of appearance: its count, an example and where ("2 strings (e.g. 'a') on line 2")."""
    rows: dict[str, list[int]] = {}
    for row, kind in enumerate(kinds):
        rows.setdefault(kind, []).append(row)
    return "; ".join(
        f"{len(indices)} {kind}{'s' if len(indices) > 1 else ''} (e.g. {raw[indices[0]]!r}) on {places(indices)}"
        for kind, indices in rows.items()
    )

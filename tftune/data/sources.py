"""Local and in-memory sources (files, folders, lists, arrays) -> labeled examples, with missing labels handled."""

from __future__ import annotations

import logging
import os

import numpy as np

from tftune.data.examples import (
    MISSING_LABELS,
    LabeledImages,
    LabeledTexts,
    encode_labels,
    is_missing_label,
    row_places,
)
from tftune.data.files import read_image_folder, read_text_table

_logger = logging.getLogger(__name__)


def describe_source(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return type(source).__name__ if isinstance(source, (LabeledTexts, LabeledImages)) else "in-memory data"


def read_texts(
    source, text_key: str, label_key: str, label_names, *, encoding: str = "utf-8", drop_missing_labels: bool = False
) -> LabeledTexts:
    """A text file, `(texts, labels)` lists or `LabeledTexts` as `LabeledTexts`."""
    where = describe_source(source)
    lines = None
    if isinstance(source, LabeledTexts):
        texts, raw_labels = list(source.texts), [source.label_names[label] for label in source.labels]
        label_names = source.label_names if label_names is None else label_names
    elif isinstance(source, (tuple, list)) and len(source) == 2 and not isinstance(source[0], str):
        texts, raw_labels = list(source[0]), list(source[1])
        if len(texts) != len(raw_labels):
            raise ValueError(
                f"(texts, labels) must have the same length; got {len(texts)} texts and {len(raw_labels)} labels."
            )
    elif isinstance(source, (str, os.PathLike)):
        table = read_text_table(os.fspath(source), encoding)
        texts, raw_labels = table.column(text_key, "text_key"), table.column(label_key, "label_key")
        raw_labels = [label.strip() if isinstance(label, str) else label for label in raw_labels]
        lines = table.lines
    else:
        raise ValueError(
            f"A text source is a tfds name, a .csv/.tsv/.jsonl file, (texts, labels) lists or LabeledTexts; "
            f"got {type(source).__name__}."
        )
    if not texts:
        raise ValueError(f"{where} holds no examples; give a source with labeled texts in it.")
    kept = _labeled_rows(raw_labels, label_names, where, label_key, lines, drop_missing_labels)
    texts, raw_labels = [texts[i] for i in kept], [raw_labels[i] for i in kept]

    def places(rows: list[int]) -> str:
        return row_places([kept[row] for row in rows], lines)

    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"The text column {text_key!r} of {where} must hold strings; {places([row])} holds "
                f"{type(text).__name__} {text!r}. Convert the column to text or pick the right text_key."
            )
    # A LabeledTexts is taken as built (the three-class demo set holds 14 empty plot snippets).
    empty = [] if isinstance(source, LabeledTexts) else [row for row, text in enumerate(texts) if not text.strip()]
    if empty:
        raise ValueError(
            f"{where}: {len(empty)} example(s) have an empty text in {text_key!r} (empty or only whitespace) on "
            f"{places(empty)}; there is nothing in them to learn from. Fill in the texts or remove those rows."
        )
    labels, names = encode_labels(raw_labels, label_names, where, "labels" if lines is None else label_key, places)
    return LabeledTexts(texts, labels, names)


def read_images(source, label_names, strict: bool, *, drop_missing_labels: bool = False):
    """A `LabeledImages` or `ImageFiles`, and the paths of unreadable files that were skipped."""
    where = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        return read_image_folder(os.fspath(source), label_names, strict)
    if isinstance(source, LabeledImages):
        images, raw_labels = source.images, [source.label_names[label] for label in source.labels]
        label_names = source.label_names if label_names is None else label_names
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        images, raw_labels = np.asarray(source[0]), list(np.asarray(source[1]).tolist())
    else:
        raise ValueError(
            f"An image source is a tfds name or DatasetBuilder, a folder of class subfolders, "
            f"(images, labels) arrays or LabeledImages; got {type(source).__name__}."
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or not np.issubdtype(images.dtype, np.number):
        raise ValueError(
            f"Images must be a numeric array [N, H, W, 3] (RGB) or [N, H, W] / [N, H, W, 1] (grayscale), "
            f"0..255; got {images.dtype} {images.shape}."
        )
    if len(images) != len(raw_labels):
        raise ValueError(
            f"(images, labels) must have the same length; got {len(images)} images and {len(raw_labels)} labels."
        )
    if not len(images):
        raise ValueError(f"{where} holds no images.")
    kept = _labeled_rows(raw_labels, label_names, where, "labels", None, drop_missing_labels)
    images, raw_labels = images[kept], [raw_labels[i] for i in kept]
    labels, names = encode_labels(
        raw_labels, label_names, where, "labels", lambda rows: row_places([kept[row] for row in rows], None)
    )
    return LabeledImages(np.broadcast_to(images, images.shape[:3] + (3,)).astype("float32"), labels, names), []


def _labeled_rows(raw_labels, label_names, where: str, column: str, lines, drop: bool) -> list[int]:
    """Indices of the rows with a label; the others are an error naming them, or dropped when `drop`."""
    missing = [index for index, label in enumerate(raw_labels) if is_missing_label(label, label_names)]
    if not missing:
        return list(range(len(raw_labels)))
    places = row_places(missing, lines)
    if not drop:
        raise ValueError(
            f"{where}: {len(missing)} example(s) have no label in {column!r} (empty, whitespace or one of "
            f"{', '.join(repr(value) for value in MISSING_LABELS[1:])}, any case) on {places}. Fill in the labels, "
            f"remove those rows, or pass drop_missing_labels=True to leave them out. A class really named "
            f"like that must be listed in label_names."
        )
    _logger.warning("tftune: %s: dropped %d example(s) without a label, on %s", where, len(missing), places)
    dropped = set(missing)
    kept = [index for index in range(len(raw_labels)) if index not in dropped]
    if not kept:
        raise ValueError(f"{where}: every example has a missing label ({places}); there is nothing to train on.")
    return kept

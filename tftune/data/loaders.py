"""`load_text_splits` / `load_image_splits`: read any source, then split it along one shared path."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tftune._validation import encoding_error, max_examples_error, number_error, raise_errors, seed_error
from tftune.data.examples import label_names_error
from tftune.data.sources import describe_source, read_images, read_texts
from tftune.data.splitting import DataSplits, split_examples
from tftune.data.tfds_sources import (
    TEXT_KEY_PREFERENCE,
    feature_key,
    is_tfds_source,
    read_tfds_images,
    read_tfds_texts,
    tfds_builder,
    tfds_label_names,
    tfds_validation_split,
)

_logger = logging.getLogger(__name__)


def load_text_splits(
    source,
    *,
    validation=None,
    text_key: str | None = None,
    label_key: str | None = None,
    label_names: Sequence[str] | None = None,
    data_dir: str | None = None,
    train_split: str = "train",
    validation_fraction: float = 0.1,
    max_examples: int | None = None,
    seed: int = 0,
    download: bool = False,
    encoding: str = "utf-8",
    drop_missing_labels: bool = False,
    verbose: bool = True,
) -> DataSplits:
    """Labeled texts from tfds, a CSV/TSV/JSONL file or Python lists, split into train / validation.

    `source` is one of:
    - a tfds name (`"glue/sst2"`, `"imdb_reviews"`, `"ag_news_subset"`) or a
      `tfds.core.DatasetBuilder`; read from `data_dir`, never downloaded unless
      `download=True`. `text_key` / `label_key` default to the dataset's Text /
      ClassLabel features, `label_names` to the ClassLabel names.
    - a `.csv`, `.tsv` or `.jsonl` file with a header / keys, read with
      `encoding`; `text_key` (default "text") and `label_key` (default
      "label") name the columns. Errors name the file and line: a column
      named twice, a file separated otherwise than its extension says
      (tabs in a .csv), empty texts.
    - `(texts, labels)` lists (empty texts are an error naming their
      indices), or a `LabeledTexts` (taken as built).

    A string that is neither an existing path nor a tfds name is an error
    saying what a source can be.
    Labels are strings (matched against `label_names`, default: sorted unique
    labels, numbers by value; surrounding whitespace in files is ignored) or
    whole numbers (indices into `label_names`, default "0".."N-1"; 1.0
    counts as 1), never a mix (an error naming the lines of each kind).
    Numbers with more than `MAX_FRACTIONAL_CLASSES` (10) distinct fractional
    values look like a regression target: an error unless `label_names`
    lists them. Empty, whitespace, "NaN",
    "None", "null" (any case) and None labels are missing: an error naming
    the lines, or left out (with a warning saying how many) when
    `drop_missing_labels=True`.
    `validation` is a tfds split name, or a second source of the same kind as
    `source`; by default the dataset's own validation split ("validation",
    "valid", "val", "dev") when it has one, else a stratified
    `validation_fraction` of the training examples chosen with `seed`.
    `max_examples` keeps a seeded random subset of that many training-source
    examples (before any validation hold-out; a separate validation split is
    kept whole), for quick runs. The summary is logged (INFO) when `verbose`.

    Example:

    ```python
    with open("reviews.csv", "w", encoding="utf-8") as file:
        file.write("review,sentiment\\n" + "great,pos\\nawful,neg\\nsuperb,pos\\ndull,neg\\n" * 3)
    splits = tftune.load_text_splits("reviews.csv", text_key="review", label_key="sentiment", validation_fraction=0.25)
    splits.class_counts["validation"]  # {'neg': 2, 'pos': 2}
    ```
    """
    _check_options(label_names, validation_fraction, max_examples, seed, encoding)
    if is_tfds_source(source):
        builder = tfds_builder(source, "text", data_dir, download)
        text_key = feature_key(builder, "Text", text_key, "text_key", TEXT_KEY_PREFERENCE)
        label_key = feature_key(builder, "ClassLabel", label_key, "label_key")
        names = tfds_label_names(builder, label_key, label_names)
        validation_split = tfds_validation_split(builder, validation)
        train = read_tfds_texts(builder, train_split, text_key, label_key, names)
        held_out = None
        if validation_split is not None:
            held_out = read_tfds_texts(builder, validation_split, text_key, label_key, names)
        name, held_out_source, what = f"tfds {builder.name}", f"the dataset's {validation_split!r} split", train_split
    else:

        def read(texts, names):
            options = {"encoding": encoding, "drop_missing_labels": drop_missing_labels}
            return read_texts(texts, text_key or "text", label_key or "label", names, **options)

        train = read(source, label_names)
        names = train.label_names
        held_out = None if validation is None else read(validation, names)
        name, held_out_source, what = describe_source(source), describe_source(validation), "the training data"
    splits = split_examples(
        "text",
        name,
        names,
        train,
        held_out,
        held_out_source=held_out_source,
        what=what,
        validation_fraction=validation_fraction,
        max_examples=max_examples,
        seed=seed,
    )
    if verbose:
        _logger.info("tftune: %s", splits.summary())
    return splits


def load_image_splits(
    source,
    *,
    validation=None,
    image_key: str | None = None,
    label_key: str | None = None,
    label_names: Sequence[str] | None = None,
    data_dir: str | None = None,
    train_split: str = "train",
    validation_fraction: float = 0.1,
    max_examples: int | None = None,
    seed: int = 0,
    download: bool = False,
    strict: bool = False,
    drop_missing_labels: bool = False,
    verbose: bool = True,
) -> DataSplits:
    """Labeled images from tfds, a folder of class subfolders or NumPy arrays, split into train / validation.

    `source` is one of:
    - a tfds name (`"tf_flowers"`, `"cifar10"`, `"oxford_flowers102"`) or a
      `tfds.core.DatasetBuilder` (e.g. `tfds.folder_dataset.ImageFolder`);
      read from `data_dir`, never downloaded unless `download=True`.
      `image_key` / `label_key` default to the dataset's Image / ClassLabel
      features. Images are decoded only for the examples kept.
    - a folder with one subfolder per class holding JPEG/PNG/BMP/GIF files.
      Every file is decoded once up front: unreadable files are skipped and
      counted (`strict=True`: an error listing them instead). Symbolic links
      to folders are not followed and a link to an image read already is
      not read again: both are skipped with a warning naming them
      (`strict=True`: an error); a link to an image file elsewhere is read.
    - `(images, labels)` NumPy arrays (`[N, H, W, 3 or 1]`, 0..255), or a `LabeledImages`.

    Labels, missing labels (`drop_missing_labels`, for label arrays),
    `label_names`, `validation` and `max_examples` work as in
    `load_text_splits`. Grayscale images become RGB.

    Example:

    ```python
    images = np.random.RandomState(0).randint(0, 256, size=(20, 32, 32, 3))
    labels = ["cat", "dog"] * 10
    splits = tftune.load_image_splits((images, labels), validation_fraction=0.2)
    splits.train_size, splits.validation_size  # (16, 4)
    ```
    """
    _check_options(label_names, validation_fraction, max_examples, seed)
    skipped = []
    if is_tfds_source(source):
        builder = tfds_builder(source, "image", data_dir, download)
        image_key = feature_key(builder, "Image", image_key, "image_key")
        label_key = feature_key(builder, "ClassLabel", label_key, "label_key")
        names = tfds_label_names(builder, label_key, label_names)
        validation_split = tfds_validation_split(builder, validation)
        train = read_tfds_images(builder, train_split, image_key, label_key, names)
        held_out = None
        if validation_split is not None:
            held_out = read_tfds_images(builder, validation_split, image_key, label_key, names)
        name, held_out_source, what = f"tfds {builder.name}", f"the dataset's {validation_split!r} split", train_split
    else:
        train, skipped = read_images(source, label_names, strict, drop_missing_labels=drop_missing_labels)
        names = train.label_names
        held_out = None
        if validation is not None:
            held_out, skipped_validation = read_images(
                validation, names, strict, drop_missing_labels=drop_missing_labels
            )
            skipped = skipped + skipped_validation
        name, held_out_source, what = describe_source(source), describe_source(validation), "the training data"
    splits = split_examples(
        "image",
        name,
        names,
        train,
        held_out,
        held_out_source=held_out_source,
        what=what,
        validation_fraction=validation_fraction,
        max_examples=max_examples,
        seed=seed,
        skipped_files=skipped,
    )
    if verbose:
        _logger.info("tftune: %s", splits.summary())
    return splits


def _check_options(label_names, validation_fraction, max_examples, seed, encoding: str = "utf-8") -> None:
    raise_errors(
        label_names_error(label_names),
        number_error("validation_fraction", validation_fraction, minimum=0, maximum=1, exclusive=True),
        max_examples_error("max_examples", max_examples),
        seed_error("seed", seed),
        encoding_error("encoding", encoding),
    )

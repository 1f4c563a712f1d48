"""Batched tf.data pipelines from `DataSplits`: tokenizing or resizing, caching, shuffling, augmentation."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from tftune._validation import image_size_error, integer_error, raise_errors, seed_error
from tftune.data.splitting import DataSplits
from tftune.families.image import resize_image

AUGMENTATIONS = ("flip", "crop", "rotation")
_CACHE_LIMIT_BYTES = 2 * 1024**3
_CROP_MARGIN = 1.125
_MAX_SHUFFLE_BUFFER = 10_000
_SHUFFLE_BUFFER_BYTES = 512 * 1024**2
_TOKENIZE_BATCH = 256


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Batched, preprocessed training and validation pipelines, ready for `fit`.

    `train` is shuffled (seeded, reshuffled every epoch) and augmented if
    asked; `validation` is in a fixed order. Both yield `(features, int32
    labels)` batches of `batch_size` (the global batch size under a
    tf.distribute strategy) and prefetch.

    Example:

    ```python
    images = np.random.RandomState(0).randint(0, 256, size=(20, 32, 32, 3))
    splits = tftune.load_image_splits((images, [0, 1] * 10), validation_fraction=0.2, verbose=False)
    data = tftune.image_pipelines(splits, (32, 32), batch_size=8)
    data.steps_per_epoch, data.validation_steps  # (2, 1)
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
    splits = tftune.load_text_splits(tftune.load_rotten_tomatoes().subset(range(0, 12808, 400)), verbose=False)
    model = tftune.build_text_classifier(text_backbone, len(splits.label_names), labels=splits.label_names)
    data = tftune.text_pipelines(splits, model.preprocessor, batch_size=8)
    ```
    """
    _check_splits(splits, "text")
    raise_errors(*_pipeline_option_errors(batch_size, seed, cache, shuffle_buffer))

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
    resizing: Mapping | None = None,
) -> PreparedData:
    """Decoded, resized, batched train / validation pipelines from image `DataSplits`.

    Images are resized to `image_size` (height, width: integers >= 32, what
    the image classifiers accept) the way the model resizes (`resizing`, the
    model's `resizing` options: crop to aspect ratio, interpolation) inside `Dataset.map` with AUTOTUNE
    parallelism and cached as uint8 (`cache="auto"`: in memory when they fit
    in 2 GiB; `True`, `False`, or a path prefix for cache files), then
    shuffled with `seed`, batched, augmented (training split only) and
    prefetched as float32 RGB 0..255, what `ImageClassifier` takes.
    `augmentation` names keras preprocessing layers to apply, each with its
    own random draw per image: "flip" (horizontal), "crop" (resize 12.5%
    larger, random crop) and "rotation" (up to +-0.05 of a turn).
    `batch_size` is the global batch size (see `tftune.global_batch_size`).

    Example:

    ```python
    splits = tftune.load_image_splits(tftune.load_mnist_digits(), max_examples=100, verbose=False)
    data = tftune.image_pipelines(splits, (32, 32), batch_size=16, augmentation=("crop", "rotation"))
    ```
    """
    _check_splits(splits, "image")
    unknown = isinstance(augmentation, str) or bool(set(augmentation) - set(AUGMENTATIONS))
    raise_errors(
        image_size_error("image_size", image_size),
        f"augmentation must be a sequence of {list(AUGMENTATIONS)}; got {augmentation!r}." if unknown else None,
        *_pipeline_option_errors(batch_size, seed, cache, shuffle_buffer),
    )
    height, width = image_size
    train_size = (height, width)
    if "crop" in augmentation:
        train_size = (round(height * _CROP_MARGIN), round(width * _CROP_MARGIN))

    def resizer(size):
        def resized(examples: tf.data.Dataset) -> tf.data.Dataset:
            return examples.map(
                lambda image, label: (_resize(image, size, resizing or {}), label), num_parallel_calls=tf.data.AUTOTUNE
            )

        return resized

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
        _augmentation_layers(augmentation, height, width, seed),
        model_inputs=lambda images: tf.cast(images, "float32"),  # cached as uint8, fed as float32 RGB 0..255
    )


def _pipeline_option_errors(batch_size, seed, cache, shuffle_buffer) -> list[str | None]:
    return [
        integer_error("batch_size (the global batch size)", batch_size, minimum=1),
        seed_error("seed", seed),
        None
        if isinstance(cache, bool) or (isinstance(cache, str) and cache)
        else f"cache must be 'auto', True, False or a cache file path; got {cache!r}.",
        None if shuffle_buffer is None else integer_error("shuffle_buffer", shuffle_buffer, minimum=1),
    ]


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
    model_inputs=None,
) -> PreparedData:
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
    if model_inputs is not None:
        train, validation = (
            data.map(lambda inputs, labels: (model_inputs(inputs), labels), num_parallel_calls=tf.data.AUTOTUNE)
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


def _resize(image: tf.Tensor, size, resizing: Mapping) -> tf.Tensor:
    return tf.cast(resize_image(tf.cast(image, "float32"), size, resizing), "uint8")


def _check_splits(splits, kind: str) -> None:
    if not isinstance(splits, DataSplits) or splits.kind != kind:
        found = f"{splits.kind} DataSplits" if isinstance(splits, DataSplits) else type(splits).__name__
        loader = f"load_{kind}_splits"
        raise ValueError(f"Expected {kind} DataSplits (from tftune.{loader}); got {found}.")


"""A recipe's data: the splits its dataset names, the pipelines for its model, held-out data to evaluate on."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import keras
import tensorflow as tf

from tftune import builders, families
from tftune import data as data_lib
from tftune.recipe.config import MODALITIES, MODALITY_OPTIONS, RecipeConfig

TEXT_DEMO_DATASETS = {"rotten_tomatoes": "binary", "rotten_tomatoes_3class": "three_class"}
IMAGE_DEMO_DATASETS = ("mnist_digits",)
# The in-memory demo sets, by the modality whose task names them.
_DEMO_SOURCES = {
    families.TEXT: {name: functools.partial(data_lib.load_rotten_tomatoes, variant) for name, variant in
                    TEXT_DEMO_DATASETS.items()},
    families.IMAGE: {name: data_lib.load_mnist_digits for name in IMAGE_DEMO_DATASETS},
}
_LOADERS = {families.TEXT: data_lib.load_text_splits, families.IMAGE: data_lib.load_image_splits}
# The loader's keyword for the feature column (`text_key` of a config names the image feature too).
_FEATURE_KEY = {families.TEXT: "text_key", families.IMAGE: "image_key"}
# The config options each modality's builder takes.
_BUILDER_OPTIONS = {families.TEXT: ("sequence_length", "pooling"), families.IMAGE: ("image_size",)}


def model_spec(config: RecipeConfig, label_names: Sequence[str]) -> builders.ModelSpec:
    """What a recipe builds: its task's classifier on its backbone, with its label names and builder options.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("image", image_size=(32, 32))
    tftune.recipe.model_spec(config, ["0", "1"]).options["image_size"]  # (32, 32)
    ```
    """
    options = {option: getattr(config, option) for option in _BUILDER_OPTIONS[config.modality]}
    options.update(labels=list(label_names), weights=config.weights)
    return builders.ModelSpec(config.task, config.resolved_backbone(), len(label_names), options)


def prepared_data(
    config: RecipeConfig, model: keras.Model, splits: data_lib.DataSplits, batch_size: int | None = None
) -> data_lib.PreparedData:
    """Batched pipelines for `model` (its tokenizer, or its image size) from `splits`.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("image", backbone=image_backbone, max_examples=40)
    splits = tftune.recipe.load_splits(config)
    model = tftune.recipe.model_spec(config, splits.label_names).build()
    splits.train_size, tftune.recipe.prepared_data(config, model, splits).steps_per_epoch  # (30, 1)
    ```
    """
    return model.prepared_data(
        splits, batch_size or config.batch_size, seed=config.seed, augmentation=config.augmentation
    )


def load_splits(config: RecipeConfig, source=None, validation=None) -> data_lib.DataSplits:
    """The train / validation splits `config.dataset` names (demo sets, tfds, files or folders), or of `source`.

    `source` / `validation`: in-memory data the loaders take instead
    (`(texts, labels)` lists, `(images, labels)` arrays); without
    `validation`, `config.validation_fraction` of `source` is held out.

    Example:

    ```python
    splits = tftune.recipe.load_splits(tftune.RecipeConfig.for_task("text", max_examples=100))
    splits.train_size, splits.validation_size  # (90, 10)
    ```
    """
    modality = config.modality
    return _LOADERS[modality](
        _source(modality, config.dataset) if source is None else source,
        validation=validation,
        validation_fraction=config.validation_fraction,
        max_examples=config.max_examples,
        seed=config.seed,
        data_dir=config.data_dir,
        label_key=config.label_key,
        drop_missing_labels=config.drop_missing_labels,
        **{_FEATURE_KEY[modality]: config.text_key},
        **({"encoding": config.encoding} if "encoding" in MODALITY_OPTIONS[modality] else {}),
    )


def evaluation_data(
    model, dataset: str, *, split: str | None = None, data_dir: str | None = None, batch_size: int = 32
) -> tf.data.Dataset:
    """Batched `(inputs, labels)` evaluation examples for a trained model, labelled with the model's label names.

    `model` is a tftune classifier (inputs: its tokens / resized images) or a
    served model from `tftune.load_serving_model` (inputs: raw text strings /
    float images as read, which the SavedModel resizes; images of varying
    sizes come one per batch). Files, folders and the demo sets are
    evaluated whole; a tfds dataset on `split` (default: its validation split).

    Example:

    ```python
    import tempfile
    path = f"{tempfile.mkdtemp()}/test.csv"
    with open(path, "w") as file:
        file.write("text,label\\na fine film,fresh\\na dull film,rotten\\n")
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    tftune.evaluate_classifier(model, tftune.recipe.evaluation_data(model, path))["examples"]  # 2
    ```
    """
    modality = MODALITIES[model.kind]
    source = _source(modality, dataset)
    if split is None and not _is_tfds_name(source):
        split = source
    splits = _LOADERS[modality](source, validation=split, label_names=model.labels, data_dir=data_dir)
    if isinstance(model, keras.Model):
        return prepared_data(RecipeConfig(task=model.kind, batch_size=batch_size), model, splits).validation
    # A served model takes raw inputs: strings as they are, images as float32 (one per batch when sizes vary).
    raw = splits.validation
    if raw.element_spec[0].dtype != tf.string:
        raw = raw.map(lambda image, label: (tf.cast(image, tf.float32), label))
    return raw.batch(batch_size if raw.element_spec[0].shape.is_fully_defined() else 1)


def representative_data(
    model: keras.Model, dataset: str, *, data_dir: str | None = None, batch_size: int = 32
) -> tf.data.Dataset:
    """Batched `(inputs, labels)` training examples that calibrate a full-integer (`int8_full`) export.

    A file or folder is read whole (pass the training file); a tfds dataset
    gives its "train" split; a demo set (`rotten_tomatoes`, `mnist_digits`)
    the part a recipe trains on (not the hold-out `evaluation_data` gives).
    `tftune.export_model(..., quantize="int8_full", representative_data=...)`
    takes the first `REPRESENTATIVE_EXAMPLES`.

    Example:

    ```python
    import tempfile
    path = f"{tempfile.mkdtemp()}/train.csv"
    with open(path, "w") as file:
        file.write("text,label\\na fine film,fresh\\na dull film,rotten\\na fine cast,fresh\\n")
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    len(list(tftune.recipe.representative_data(model, path).unbatch()))  # 3
    ```
    """
    modality = MODALITIES[model.kind]
    source = _source(modality, dataset)
    if isinstance(source, str):  # a file or folder (read whole), or a tfds name (its train split)
        split = "train" if _is_tfds_name(source) else None
        return evaluation_data(model, dataset, split=split, data_dir=data_dir, batch_size=batch_size)
    splits = _LOADERS[modality](source, label_names=model.labels)
    return prepared_data(RecipeConfig(task=model.kind, batch_size=batch_size), model, splits).train


def _is_tfds_name(source) -> bool:
    """Whether a dataset spec names a tfds dataset (not a demo set, file or folder)."""
    return isinstance(source, str) and not os.path.exists(source)


def _source(modality: families.Modality, dataset: str):
    """The in-memory demo data a demo name stands for; any other dataset spec as it is."""
    demo = _DEMO_SOURCES[modality].get(dataset)
    return demo() if demo is not None else dataset

"""A recipe's data: the splits its dataset names, the pipelines for its model, held-out data to evaluate on."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import tensorflow as tf

from tftune import builders
from tftune import data as data_lib
from tftune.recipe.config import RecipeConfig, offline_bert_backbone

TEXT_DEMO_DATASETS = {"rotten_tomatoes": "binary", "rotten_tomatoes_3class": "three_class"}
IMAGE_DEMO_DATASETS = ("mnist_digits",)


def model_spec(config: RecipeConfig, label_names: Sequence[str]) -> builders.ModelSpec:
    options: dict = {"labels": list(label_names), "weights": config.weights}
    if config.task == "text":
        options["sequence_length"] = config.sequence_length
        options["pooling"] = config.pooling
        backbone = config.backbone or offline_bert_backbone()
    else:
        options["image_size"] = tuple(config.image_size)
        backbone = config.backbone
    return builders.ModelSpec(config.task, backbone, len(label_names), options)


def prepared_data(
    config: RecipeConfig, model: keras.Model, splits: data_lib.DataSplits, batch_size: int | None = None
) -> data_lib.PreparedData:
    """Batched pipelines for `model` (its tokenizer, or its image size) from `splits`.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("image", max_examples=40)
    model = tftune.build_image_classifier("resnet50", 10, image_size=(32, 32), weights=None)
    data = tftune.recipe.prepared_data(config, model, tftune.recipe.load_splits(config))
    data.steps_per_epoch  # 2 batches of 32
    ```
    """
    batch_size = batch_size or config.batch_size
    if model.kind == "text":
        return data_lib.text_pipelines(splits, model.preprocessor, batch_size, seed=config.seed)
    return data_lib.image_pipelines(
        splits, model.image_size, batch_size, augmentation=config.augmentation, seed=config.seed, resizing=model.resizing
    )


def load_splits(config: RecipeConfig) -> data_lib.DataSplits:
    """The train / validation splits `config.dataset` names (demo sets, tfds, files or folders).

    Example:

    ```python
    splits = tftune.recipe.load_splits(tftune.RecipeConfig.for_task("text", max_examples=100))
    splits.train_size, splits.validation_size  # (90, 10)
    ```
    """
    return _LOADERS[config.task](
        _source(config.task, config.dataset),
        validation_fraction=config.validation_fraction,
        max_examples=config.max_examples,
        seed=config.seed,
        data_dir=config.data_dir,
        label_key=config.label_key,
        drop_missing_labels=config.drop_missing_labels,
        **{_FEATURE_KEY[config.task]: config.text_key},
        **({"encoding": config.encoding} if config.task == "text" else {}),
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
    model = tftune.build_text_classifier(bert_dir, 2, sequence_length=16, labels=["rotten", "fresh"])
    tftune.evaluate_classifier(model, tftune.recipe.evaluation_data(model, path))["examples"]  # 2
    ```
    """
    source = _source(model.kind, dataset)
    if split is None and not (isinstance(source, str) and not os.path.exists(source)):
        split = source
    splits = _LOADERS[model.kind](source, validation=split, label_names=model.labels, data_dir=data_dir)
    if isinstance(model, keras.Model):
        # Only the batch size matters here: the config is not a run's (no output paths to check).
        return prepared_data(RecipeConfig(task=model.kind, batch_size=batch_size), model, splits).validation
    if model.kind == "text":
        return splits.validation.batch(batch_size)
    images = splits.validation.map(lambda image, label: (tf.cast(image, tf.float32), label))
    return images.batch(batch_size if images.element_spec[0].shape.is_fully_defined() else 1)


_LOADERS = {"text": data_lib.load_text_splits, "image": data_lib.load_image_splits}
_FEATURE_KEY = {"text": "text_key", "image": "image_key"}


def _source(task: str, dataset: str):
    """The in-memory demo data a demo name stands for; any other dataset spec as it is."""
    if task == "text" and dataset in TEXT_DEMO_DATASETS:
        return data_lib.load_rotten_tomatoes(TEXT_DEMO_DATASETS[dataset])
    if task == "image" and dataset in IMAGE_DEMO_DATASETS:
        return data_lib.load_mnist_digits()
    return dataset

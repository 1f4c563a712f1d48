"""One call on raw data: `tftune.fine_tune(backbone, texts_or_images, labels)` with the recipe defaults."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from tftune import distribute, families
from tftune._validation import raise_errors
from tftune.recipe.config import RecipeConfig
from tftune.recipe.data import load_splits
from tftune.recipe.run import train_on_splits

# Recipe options that `fine_tune` takes from its own arguments, or that name files it does not write.
_NOT_OPTIONS = ("task", "backbone", "dataset", "epochs", "output_dir", "export_dir", "model_name")
# What each modality's classifier is trained on, in words.
_INPUT_NOUNS = {
    families.TEXT: "strings",
    families.IMAGE: "images (a numeric [N, H, W, 3] array, 0..255, or a list of H x W x 3 arrays)",
}


def fine_tune(
    backbone: str | os.PathLike,
    x,
    y=None,
    *,
    validation_data: tuple | None = None,
    epochs: int = 3,
    **options,
) -> keras.Model:
    """Fine-tune a classifier on raw data in one call, with the recipe defaults; return it with `labels` set.

    - `backbone`: any spec `tftune info` lists; its family says whether it
      is a text or an image backbone.
    - `x`: strings (text) or images (a `[N, H, W, 3]` array or a list of
      H x W x 3 arrays, RGB 0..255), with `y` the labels (ints or strings);
      or an unbatched `tf.data.Dataset` of `(x, y)`; or what
      `tftune train --dataset` takes (a file, a folder, a tfds name), with `y` None.
    - `validation_data`: an `(x, y)` pair; None holds out
      `validation_fraction` (default 0.1) of `x`.
    - `options`: `RecipeConfig` options (`batch_size`, `learning_rate`,
      `schedule`, `lora_rank`, `sequence_length`, `image_size`, ...), all
      checked before anything is built. The defaults are the recipe's: the
      "auto" schedule, stage-aware rates, the checkpoint's pooling, the
      device's precision; the weights are pretrained.

    Example:

    ```python
    texts, labels = ["a fine film", "a dull film"] * 8, ["fresh", "rotten"] * 8
    model = tftune.fine_tune(text_backbone, texts, labels, epochs=1, sequence_length=16, schedule="all")
    model.labels, model.classify("a fine film") in model.labels  # (['fresh', 'rotten'], True)
    ```
    """
    family = families.get_family(backbone)
    modality = family.modality
    refused = sorted(set(options) & set(_NOT_OPTIONS))
    raise_errors(
        f"fine_tune sets {refused} itself (backbone, x, epochs; it writes no files): remove them." if refused else None
    )
    config = RecipeConfig.for_task(
        modality.name,
        **{"max_examples": None, "weights": families.PRETRAINED, **options},
        backbone=os.fspath(backbone),
        epochs=epochs,
        **({"dataset": os.fspath(x)} if isinstance(x, (str, os.PathLike)) else {}),
    )
    if isinstance(x, (str, os.PathLike)):
        raise_errors(
            None if y is None else "y must be None when x names a dataset (its labels come from the dataset).",
            None if validation_data is None else "validation_data must be None when x names a dataset.",
        )
        source = validation = None
    else:
        source = _in_memory(x, y, "x", modality, backbone, family)
        validation = None if validation_data is None else _validation_pair(validation_data, modality, backbone, family)
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.get_strategy(config.strategy, tpu=config.tpu)
    splits = load_splits(config, source, validation)
    return train_on_splits(config, splits, strategy).fit.model


def _validation_pair(validation_data, modality, backbone, family) -> tuple:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError(
            f"validation_data must be an (x, y) pair like the training data, or None; got "
            f"{type(validation_data).__name__}."
        )
    return _in_memory(*validation_data, "validation_data", modality, backbone, family)


def _in_memory(x, y, name: str, modality: families.Modality, backbone, family: families.Family) -> tuple:
    """`(inputs, labels)` as the loaders take them, refusing inputs of the other modality."""
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(f"y must be None when {name} is a tf.data.Dataset of (x, y) pairs.")
        pairs = list(x.as_numpy_iterator())
        x, y = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        x = [item.decode("utf-8") if isinstance(item, bytes) else item for item in x]
        y = [label.decode("utf-8") if isinstance(label, bytes) else label for label in y]
    if y is None:
        raise ValueError(f"{name} holds examples, so y (their labels, ints or strings) is needed too.")
    holds = _what_it_holds(x)
    if holds is not modality:
        what = "strings" if holds is families.TEXT else "images" if holds is families.IMAGE else "neither"
        raise ValueError(
            f"{name} holds {what}, but backbone {os.fspath(backbone)!r} is a {family.title} backbone for "
            f"{modality.name}: it takes {_INPUT_NOUNS[modality]}. Pass those, or a backbone for "
            f"{holds.name if holds is not None else 'your data'} (`tftune info` lists them)."
        )
    labels = [label.decode("utf-8") if isinstance(label, bytes) else label for label in np.asarray(y).tolist()]
    return (list(x), labels) if holds is families.TEXT else (np.asarray(x, dtype="float32"), np.asarray(labels))


def _what_it_holds(x) -> families.Modality | None:
    """TEXT for a sequence of strings, IMAGE for numeric H x W (x C) images, None for anything else."""
    if isinstance(x, str) or not hasattr(x, "__len__") or not len(x):
        return None
    if all(isinstance(item, str) for item in x):
        return families.TEXT
    try:
        array = np.asarray(x)
    except ValueError:
        return None
    return families.IMAGE if np.issubdtype(array.dtype, np.number) and array.ndim in (3, 4) else None

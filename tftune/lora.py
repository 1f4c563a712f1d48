"""LoRA (low-rank adapters) as a training mode: the family names target layers, adapters train, base kernels never do.

keras-hub's `backbone.enable_lora(rank)` freezes every backbone layer and
then adds adapters to the layers *named* query / value only; on a family
with other names it adds none and raises nothing. And Keras saves a LoRA
layer with its adapters merged into the kernel and zeroes the adapters on
load, so a checkpoint restore turns "frozen pretrained kernel + trained
adapters" into "changed kernel + zero adapters". tftune:

- enables LoRA on the layers its family names (`Family.lora_targets`) and
  refuses a family with none, naming it;
- keeps base kernels frozen whatever group freezing does: in a LoRA model only
  the adapters (and the biases of the adapted layers) of a trainable group
  train, plus the head;
- checkpoints adapters by layer path beside `BackupAndRestore`'s weights
  (`LoraCheckpoint`) and, on restore, puts back the pristine base kernels and
  the adapters that match the restored weights;
- writes and reads an adapters-only file (`save_adapters` / `load_adapters`),
  keyed by layer path, not by index.

Example:

```python
model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
adapted = tftune.enable_lora(model, rank=4)
len(adapted) == 2 * model.backbone.num_layers  # True: query and value of every layer (MiniLM: 12 of 6)
```
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import h5py
import keras
import numpy as np

from tftune._keras_private import base_kernel, nested_layers
from tftune._validation import raise_errors
from tftune.options import LoraOptions

_ADAPTERS = ("lora_kernel_a", "lora_kernel_b")
# Adapters start from zero and are few: they want about 10x full fine-tuning's rate (LoRA paper, GLUE on BERT-base).
LEARNING_RATE = 2e-3
# How far a merged kernel (saved by Keras) may be from base + alpha / rank * A @ B of the same epoch: float32, and
# mixed precision, where Keras merges in the compute dtype (bfloat16 keeps 8 significant bits; measured 1.2e-4).
_MERGE_TOLERANCES = {"float32": 1e-4, "bfloat16": 2e-3, "float16": 2e-3}
_logger = logging.getLogger(__name__)


def enable_lora(model: keras.Model, rank: int, alpha: float | None = None) -> list[str]:
    """Add rank-`rank` adapters to the layers the model's family targets; return their paths.

    `alpha` scales the adapters' update by `alpha / rank` (default `rank`, as
    Keras does). The base kernels of the adapted layers are frozen for good;
    which adapters train follows the model's layer groups (`freeze`,
    `GradualUnfreezing`). Call it before compiling (`tftune.fit(...,
    lora=tftune.LoraOptions(rank=8))` does).

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.enable_lora(model, rank=8)[:2]  # ['transformer_layer_0/self_attention_layer/value', ...]
    ```
    """
    raise_errors(*LoraOptions.errors(rank=rank, alpha=alpha))
    family = model.family
    if not family.lora_targets:
        raise ValueError(
            f"{family.title} backbones have no attention layers LoRA can target (tftune's {family.name} family names "
            f"none). Fine-tune it without lora_rank (gradual unfreezing trains its groups)."
        )
    layers = [
        layer
        for layer in nested_layers(model.backbone)
        if layer.name in family.lora_targets and hasattr(layer, "enable_lora")
    ]
    if not layers:
        raise ValueError(
            f"No layer of backbone {model.backbone.name!r} is named {list(family.lora_targets)}, the {family.title} "
            f"family's LoRA targets; LoRA would train nothing. Report it with the backbone's preset."
        )
    for layer in layers:
        if not getattr(layer, "lora_enabled", False):
            layer.enable_lora(rank, lora_alpha=alpha)
    restrict_to_adapters(model)
    return [layer.path for layer in layers]


def lora_layers(model: keras.Model) -> list:
    """The model's layers with LoRA enabled (empty for a model trained without LoRA)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return []
    return [layer for layer in nested_layers(backbone) if getattr(layer, "lora_enabled", False)]


def restrict_to_adapters(model: keras.Model) -> None:
    """In a LoRA model, make every backbone weight but the adapters (and adapted layers' biases) non-trainable.

    Keras' `layer.trainable = True` sets every variable of the layer
    trainable again, the base kernel included; the freeze helpers call this
    after each change, so a base kernel never trains. A frozen group stays
    frozen: its layers' own `trainable` flag hides its adapters.
    """
    adapted = lora_layers(model)
    if not adapted:
        return
    keep = {id(variable) for layer in adapted for variable in _trainable_of_adapted(layer)}
    for variable in model.backbone.weights:
        if id(variable) not in keep:
            variable.trainable = False


def _trainable_of_adapted(layer) -> list:
    bias = [layer.bias] if getattr(layer, "bias", None) is not None else []
    return [getattr(layer, name) for name in _ADAPTERS] + bias


def save_adapters(model: keras.Model, path: str | os.PathLike) -> str:
    """Write the model's adapters (only) to an `.h5` file keyed by layer path; return the path.

    The file holds each adapted layer's `lora_kernel_a`, `lora_kernel_b` and
    bias, with the rank and alpha; a few MB where the model has hundreds.
    Written to a temporary file and renamed, so a crash never leaves half a file.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.enable_lora(model, rank=4)
    tftune.save_adapters(model, "adapters.weights.h5")
    ```
    """
    adapted = lora_layers(model)
    if not adapted:
        raise ValueError(f"Model {model.name!r} has no LoRA adapters to save; enable them with tftune.enable_lora.")
    path = os.fspath(path)
    partial = f"{path}.partial"
    with h5py.File(partial, "w") as adapters_file:
        adapters_file.attrs["rank"] = adapted[0].lora_rank
        adapters_file.attrs["alpha"] = adapted[0].lora_alpha
        for layer in adapted:
            group = adapters_file.create_group(layer.path)
            for variable in _trainable_of_adapted(layer):
                group.create_dataset(variable.name, data=np.asarray(variable))
    os.replace(partial, path)
    return path


def load_adapters(model: keras.Model, path: str | os.PathLike) -> None:
    """Put adapters from `save_adapters` onto a model built on the same pretrained backbone.

    Enables LoRA with the file's rank and alpha where the model has none yet,
    then assigns every adapter by layer path. A path or shape that does not
    match raises `ValueError` naming it (a different backbone or family).

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.enable_lora(model, rank=4)
    tftune.save_adapters(model, "adapters.weights.h5")
    fresh = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.load_adapters(fresh, "adapters.weights.h5")
    ```
    """
    path = os.fspath(path)
    with h5py.File(path, "r") as adapters_file:
        if not lora_layers(model):
            enable_lora(model, int(adapters_file.attrs["rank"]), float(adapters_file.attrs["alpha"]))
        by_path = {layer.path: layer for layer in lora_layers(model)}
        stored = _layer_paths(adapters_file)
        if set(stored) != set(by_path):
            raise ValueError(
                f"{path!r} holds adapters for {len(stored)} layers that do not match this model's {len(by_path)} "
                f"adapted layers (e.g. {sorted(set(stored) ^ set(by_path))[:3]}). Load it onto a model built on the "
                f"same backbone as the one it was trained on."
            )
        for layer_path, layer in by_path.items():
            for variable in _trainable_of_adapted(layer):
                value = adapters_file[layer_path][variable.name][()]
                if value.shape != tuple(variable.shape):
                    raise ValueError(
                        f"{path!r}: {layer_path}/{variable.name} has shape {value.shape}, the model's "
                        f"{tuple(variable.shape)}; the file is for another backbone size or LoRA rank."
                    )
                variable.assign(value)


def _layer_paths(adapters_file) -> list[str]:
    paths = []
    def visit(name, item):
        if isinstance(item, h5py.Group) and _ADAPTERS[0] in item:
            paths.append(name)

    adapters_file.visititems(visit)
    return paths


def merged_adapters(model: keras.Model) -> keras.Model:
    """A copy of a LoRA model with the adapters merged into its kernels (the model itself when it has no LoRA).

    Keras' own merge: a `.keras` file stores each LoRA layer's kernel with its
    adapters added, and loads as a plain model of the same function.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.enable_lora(model, rank=4)
    tftune.lora.merged_adapters(model).count_params() < model.count_params()  # True
    ```
    """
    if not lora_layers(model):
        return model
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "merged.keras")
        model.save(path)
        return keras.models.load_model(path)


class LoraCheckpoint(keras.callbacks.Callback):
    """Keeps a LoRA model's base kernels pristine and its adapters across a crash and resume.

    Runs beside `keras.callbacks.BackupAndRestore` (just before it in the
    callback list), in `directory`: at the first start it stores the adapted
    layers' pristine kernels (`base_kernels.h5`); at each epoch's end, before
    the backup is written, the adapters (`adapters-<epoch>.h5`, the last two
    kept). Keras saves a LoRA layer with the adapters merged into its kernel
    and zeroes them on load; so after `BackupAndRestore` restored the weights,
    this puts back the pristine kernels and the stored adapters whose merge
    gives the restored kernels (a crash between the two writes leaves one
    epoch of adapters ahead of the backup, never behind). The optimizer state
    of the adapters comes back with `BackupAndRestore`'s. At the end of a
    completed fit the directory is removed, as `BackupAndRestore` removes its own.

    Example:

    ```python
    callbacks = [tftune.LoraCheckpoint("run/lora"), keras.callbacks.BackupAndRestore("run/backup")]
    ```
    """

    def __init__(self, directory: str | os.PathLike):
        super().__init__()
        self.directory = os.fspath(directory)
        self._restore_pending = False

    @property
    def _base_path(self) -> str:
        return os.path.join(self.directory, "base_kernels.h5")

    def _adapters_paths(self) -> list[str]:
        if not os.path.isdir(self.directory):
            return []
        names = [name for name in os.listdir(self.directory) if name.startswith("adapters-") and name.endswith(".h5")]
        return [os.path.join(self.directory, name) for name in sorted(names, key=lambda name: int(name[9:-3]))]

    def on_train_begin(self, logs=None):
        self._restore_pending = os.path.isfile(self._base_path) and bool(self._adapters_paths())
        if self._restore_pending:
            return
        os.makedirs(self.directory, exist_ok=True)
        with h5py.File(self._base_path + ".partial", "w") as base_file:
            for layer in lora_layers(self.model):
                base_file.create_dataset(layer.path, data=np.asarray(base_kernel(layer)))
        os.replace(self._base_path + ".partial", self._base_path)

    def on_epoch_begin(self, epoch, logs=None):
        # After every callback's on_train_begin, BackupAndRestore's restore included.
        if self._restore_pending:
            self._restore_pending = False
            self._restore(lora_layers(self.model))

    def on_epoch_end(self, epoch, logs=None):
        save_adapters(self.model, os.path.join(self.directory, f"adapters-{epoch}.h5"))
        for stale in self._adapters_paths()[:-2]:
            os.remove(stale)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.directory, ignore_errors=True)

    def _restore(self, adapted) -> None:
        with h5py.File(self._base_path, "r") as base_file:
            base = {layer.path: base_file[layer.path][()] for layer in adapted}
        restored = {layer.path: np.asarray(base_kernel(layer)) for layer in adapted}

        def mismatch(candidate: str) -> float:
            load_adapters(self.model, candidate)
            return max(
                float(np.max(np.abs(base[layer.path] + _update(layer) - restored[layer.path]))) for layer in adapted
            )

        mismatches = {candidate: mismatch(candidate) for candidate in self._adapters_paths()}
        best = min(mismatches, key=mismatches.get)
        if mismatches[best] > _MERGE_TOLERANCES[self.model.dtype_policy.compute_dtype]:
            raise RuntimeError(
                f"None of the LoRA adapters in {self.directory!r} ({sorted(mismatches)}) matches the restored backup "
                f"(closest differs by {mismatches[best]:.3g}); the checkpoint directory was changed by hand. Delete "
                f"{os.path.dirname(self.directory)!r} to start the run again."
            )
        load_adapters(self.model, best)
        for layer in adapted:
            base_kernel(layer).assign(base[layer.path])
        _logger.info("LoRA: pristine base kernels and the adapters of %s restored.", os.path.basename(best))

    def get_config(self) -> dict:
        return {"directory": self.directory}


def _update(layer) -> np.ndarray:
    """The adapters' contribution to the kernel: `alpha / rank * A @ B`, in the kernel's shape."""
    a, b = np.asarray(layer.lora_kernel_a), np.asarray(layer.lora_kernel_b)
    return (layer.lora_alpha / layer.lora_rank) * np.tensordot(a, b, axes=1)

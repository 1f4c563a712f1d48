"""The private Keras, keras-hub and TensorFlow APIs tftune relies on, in one place.

tests/keras_private_test.py exercises each one, so an upgrade that changes
one fails there first, with a message naming the function here. Every other
module uses these functions instead of `keras.src`, `keras_hub.src`,
`tensorflow.python` or a private attribute of a Keras object. Why each is
needed: Keras 3.15 has no public way to list every nested sublayer of a layer,
to set a container's own `trainable` flag without recursing into its
sublayers, or to re-route a built `MultiOptimizer`; TensorFlow has no public
registry lookup for ops loaded at run time (TF Text's); keras-hub reads a
checkpoint's pooling mode only in its private converter.
"""

from __future__ import annotations

import json
import os

import keras


def nested_layers(layer: keras.layers.Layer) -> list:
    """`layer` and every layer nested in it, at any depth (Keras' `_flatten_layers`)."""
    return layer._flatten_layers(include_self=True, recursive=True)


def set_own_trainable(layer: keras.layers.Layer, trainable: bool) -> None:
    """Set `layer`'s own `trainable` flag without changing its sublayers' (the public setter recurses)."""
    layer._trainable = trainable


def rebuild_multi_optimizer(optimizer: keras.optimizers.MultiOptimizer, variables: list) -> None:
    """Route a built `MultiOptimizer` over `variables` (its `apply` insists on the list it was built with).

    Resets Keras' `built` flag and builds again: the router is re-made, the
    inner optimizers (built over every variable they route) keep their state.
    """
    optimizer.built = False
    optimizer.build(variables)


def optimizer_routes(optimizer: keras.optimizers.MultiOptimizer) -> keras.optimizers.OptimizerMap:
    """The `OptimizerMap` a `MultiOptimizer` routes by (Keras keeps it in a private attribute, without a getter)."""
    return optimizer._optimizer_map


def is_registered_op(name: str) -> bool:
    """Whether the op `name` is registered in this process (core ops and op libraries loaded at run time)."""
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(name) is not None


def checkpoint_pooling(directory: str | os.PathLike) -> str | None:
    """The pooling mode (e.g. "mean") a sentence-transformers checkpoint folder declares, or None.

    keras-hub's BERT converter reads the checkpoint's `1_Pooling` config.
    """
    from keras_hub.src.utils.transformers import convert_bert

    return convert_bert.load_task_config(os.fspath(directory), {}).get("pooling_mode")


def base_kernel(layer: keras.layers.Layer):
    """The kernel variable of a LoRA-enabled Dense / EinsumDense / Conv layer.

    Its `kernel` property merges the adapters.
    """
    return layer._kernel


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backup is replaced atomically: a kill during a write leaves the previous backup.

    Keras rewrites `latest.weights.h5` in place and then the epoch in
    `training_metadata.json`: a kill during the first write leaves torn
    weights (the resume fails), between the two new weights with the old
    epoch (an epoch trained twice). Here each backup's weights go to a new
    file, and renaming the metadata that names that file into place commits
    the backup.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = f"epoch_{self._current_epoch}_batch_{self._last_batch_seen}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, weights), overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": weights}
        with open(self._training_metadata_path + ".tmp", "w") as staging:
            staging.write(json.dumps(metadata))
        os.replace(self._training_metadata_path + ".tmp", self._training_metadata_path)
        for name in os.listdir(self.backup_dir):
            if name.endswith(".weights.h5") and name != weights:
                os.remove(os.path.join(self.backup_dir, name))

    def _load_model(self):
        if os.path.exists(self._training_metadata_path):
            with open(self._training_metadata_path) as metadata_file:
                self._weights_path = os.path.join(self.backup_dir, json.load(metadata_file)["weights"])
        super()._load_model()

"""The private Keras APIs tftune relies on, in one place (tests/keras_private_test.py fails loudly if Keras changes them).

Keras 3.15 has no public way to list every nested sublayer of a layer, or to
set a container's own `trainable` flag without recursing into its sublayers.
"""

from __future__ import annotations

import keras


def nested_layers(layer: keras.layers.Layer) -> list:
    """`layer` and every layer nested in it, at any depth (Keras' `_flatten_layers`)."""
    return layer._flatten_layers(include_self=True, recursive=True)


def set_own_trainable(layer: keras.layers.Layer, trainable: bool) -> None:
    """Set `layer`'s own `trainable` flag without changing its sublayers' (the public setter recurses)."""
    layer._trainable = trainable


def checkpoint_pooling(directory: str) -> str | None:
    """The pooling a sentence-transformers folder declares, read by keras-hub's BERT converter (`load_task_config`)."""
    from keras_hub.src.utils.transformers import convert_bert

    return convert_bert.load_task_config(directory, {}).get("pooling_mode")


def base_kernel(layer: keras.layers.Layer):
    """The kernel variable of a LoRA-enabled Dense / EinsumDense / Conv layer (its `kernel` property merges the adapters)."""
    return layer._kernel

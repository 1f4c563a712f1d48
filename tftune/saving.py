"""Copies of a trained classifier for what leaves a run: uncompiled (no optimizer state), LoRA merged, float32.

`tftune.save_model`, the report's evaluation and every export go through
these, so a mixed-precision or LoRA run saves, evaluates and serves one plain
float32 model.
"""

from __future__ import annotations

import keras

from tftune._keras_private import nested_layers
from tftune.lora import merged_adapters

# The compute dtypes of Keras' mixed policies.
_MIXED = ("bfloat16", "float16")


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` if it computes in float32, else the same architecture under float32 with its trained weights.

    What leaves a mixed-precision run: the saved `.keras` file, the report's
    evaluation and every export compute in float32, so they agree with each
    other on any machine (the master weights of a mixed policy are float32
    already). LiteRT and ONNX cannot take a `mixed_bfloat16` graph at all
    (Flex-only ops, or a file onnxruntime rejects).

    Example:

    ```python
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = tftune.build_image_classifier(image_backbone, 3, image_size=(32, 32), weights=None)
    keras.mixed_precision.set_global_policy("float32")
    tftune.saving.float32_copy(model).dtype_policy.name  # 'float32'
    ```
    """
    # Every layer with weights: a model built under float32 may hold a backbone built under a mixed policy (a LoRA
    # merge does); a preprocessor's policy is irrelevant (its outputs are integers).
    if not any(layer.dtype_policy.compute_dtype in _MIXED for layer in nested_layers(model) if layer.weights):
        return model
    return uncompiled_copy(model, float32=True)


def uncompiled_copy(model: keras.Model, *, float32: bool = False) -> keras.Model:
    """The same classifier (architecture, labels, weights; LoRA adapters merged) uncompiled; `float32=True`: in float32.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    tftune.saving.uncompiled_copy(model).labels  # ['rotten', 'fresh']
    ```
    """
    model = merged_adapters(model)  # LoRA: a plain model of the same function
    config = model.get_config()
    if float32:
        config = _float32_policies(config)
    if "preprocessor" in config:
        config["preprocessor"] = model.preprocessor  # its vocabulary is an asset, not part of the config
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(config):
    """A serialized Keras config with every mixed-precision DTypePolicy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and str(config["config"]["name"]).startswith("mixed_"):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_policies(value) for value in config]
    return config

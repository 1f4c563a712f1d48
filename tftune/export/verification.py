"""Verifying a LiteRT / ONNX export: the inputs each modality's export takes, and Keras vs the runtime on them.

`parity_check` runs the float32 Keras model and the exported file on the same
inputs (the validation data, or the default warm-up examples) and keeps both
probabilities; `accuracy_evaluation` turns them into accuracy and macro-F1
before and after. What differs between text and image models is in `MODALITIES`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tftune.classifiers import IMAGE_INPUT
from tftune.export._layout import VOCABULARY_ASSET
from tftune.export.assets import resolved_warmup_examples
from tftune.families import IMAGE, TEXT
from tftune.report import classification_metrics

_PARITY_BATCH = 32


@dataclasses.dataclass(frozen=True)
class ParityCheck:
    """Keras' and the runtime's probabilities on the same examples, and the labels when there are any."""

    keras_probabilities: np.ndarray
    runtime_probabilities: np.ndarray
    labels: np.ndarray | None

    @property
    def examples(self) -> int:
        return len(self.keras_probabilities)

    @property
    def difference(self) -> float:
        return float(np.max(np.abs(self.keras_probabilities - self.runtime_probabilities)))


def parity_check(model: keras.Model, modality, run: Callable, validation_data: tf.data.Dataset | None) -> ParityCheck:
    """Run Keras and the runtime on the validation inputs (or the default warm-up examples), batch by batch."""
    if validation_data is None:
        batches = [(modality.default_inputs(model), None)]
    else:
        batches = validation_data.as_numpy_iterator()
    keras_outputs, runtime_outputs, labels = [], [], []
    for inputs, batch_labels in batches:
        inputs = modality.runtime_inputs(model, inputs)
        for start in range(0, len(next(iter(inputs.values()))), _PARITY_BATCH):
            chunk = {key: value[start : start + _PARITY_BATCH] for key, value in inputs.items()}
            keras_outputs.append(np.asarray(model(modality.keras_inputs(chunk), training=False), "float32"))
            runtime_outputs.append(np.asarray(run(chunk), "float32"))
        if batch_labels is not None:
            labels.append(np.asarray(batch_labels))
    labels = np.concatenate(labels) if labels else None
    return ParityCheck(np.concatenate(keras_outputs), np.concatenate(runtime_outputs), labels)


def accuracy_evaluation(check: ParityCheck, label_names, accuracy_tolerance: float) -> dict | None:
    """Accuracy and macro-F1 of Keras and of the export on the check's labels, and the drop; None without labels."""
    if check.labels is None:
        return None
    before = classification_metrics(check.labels, check.keras_probabilities, label_names)
    after = classification_metrics(check.labels, check.runtime_probabilities, label_names)
    return {
        "examples": check.examples,
        "keras": {"accuracy": before["accuracy"], "macro_f1": before["macro_f1"]},
        "exported": {"accuracy": after["accuracy"], "macro_f1": after["macro_f1"]},
        "accuracy_drop": before["accuracy"] - after["accuracy"],
        "accuracy_tolerance": accuracy_tolerance,
    }


class _TextModality:
    """Text classifiers: int32 token inputs `[batch, sequence_length]`; the client tokenizes with `vocab.txt`."""

    # Measured with benchmarks/export.py (MiniLM fine-tuned on Rotten Tomatoes, 500 reviews, seq 128): LiteRT
    # full-integer int8 lost 17.6 accuracy points (0.798 -> 0.622) and ran 4x slower than dynamic-range int8.
    full_integer_refusal = (
        "quantize='int8_full' is for image models: on MiniLM, full-integer int8 cost 17.6 accuracy points and ran "
        "4x slower than dynamic-range int8 (benchmarks/export.py). Pass quantize='int8' for a text model."
    )

    def input_signature(self, model) -> dict:
        return {key: tf.TensorSpec([None, model.sequence_length], tf.int32, name=key) for key in model.input_names}

    def default_inputs(self, model) -> dict:
        return model.preprocessor(resolved_warmup_examples(model, None))

    def runtime_inputs(self, model, inputs) -> dict:
        return {key: np.asarray(inputs[key], "int32") for key in model.input_names}

    def keras_inputs(self, inputs: dict) -> dict:
        return inputs

    def write_client_assets(self, model, export_dir: str) -> dict:
        tokenizer = model.preprocessor.tokenizer
        with open(os.path.join(export_dir, VOCABULARY_ASSET), "w", encoding="utf-8") as vocabulary_file:
            vocabulary_file.write("".join(f"{token}\n" for token in tokenizer.get_vocabulary()))
        special = {
            attribute[: -len("_token_id")]: int(getattr(tokenizer, attribute))
            for attribute in ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id")
            if getattr(tokenizer, attribute, None) is not None
        }
        return {
            "vocabulary_file": VOCABULARY_ASSET,
            "tokenizer": type(tokenizer).__name__,
            "lowercase": bool(getattr(tokenizer, "lowercase", False)),
            "sequence_length": int(model.sequence_length),
            "special_token_ids": special,
            "inputs": (
                "token_ids: [CLS] tokens [SEP] then pad_token_id up to sequence_length (truncated to fit); "
                "segment_ids: 0; padding_mask: 1 on tokens, 0 on padding"
            ),
        }


class _ImageModality:
    """Image classifiers: float32 RGB 0..255 `[batch, height, width, 3]` at `image_size`; normalization in the graph."""

    full_integer_refusal = None

    def input_signature(self, model) -> tf.TensorSpec:
        return tf.TensorSpec([None, *model.image_size, 3], tf.float32, name=IMAGE_INPUT)

    def default_inputs(self, model) -> np.ndarray:
        images = resolved_warmup_examples(model, None)
        return np.stack([tf.io.decode_image(image, channels=3).numpy() for image in images])

    def runtime_inputs(self, model, inputs) -> dict:
        images = np.asarray(inputs, "float32")
        if images.shape[1:3] != tuple(model.image_size):
            images = tf.image.resize(images, model.image_size).numpy()
        return {IMAGE_INPUT: images}

    def keras_inputs(self, inputs: dict) -> np.ndarray:
        return inputs[IMAGE_INPUT]

    def write_client_assets(self, model, export_dir: str) -> dict:
        return {
            "image_size": list(model.image_size),
            "inputs": "images: float32 RGB 0..255, resized (bilinear) to image_size",
            "normalization_in_graph": {
                "scale": model.scale,
                "offset": model.offset,
                "reverse_channels": model.reverse_channels,
            },
        }


# What differs by modality, in one place (keyed by the classifier's `kind`).


MODALITIES = {TEXT: _TextModality(), IMAGE: _ImageModality()}

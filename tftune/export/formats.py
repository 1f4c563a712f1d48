"""LiteRT and ONNX exports: converted by Keras and the converters, run in their own runtime, published versioned.

`export_model(model, format="litert" | "onnx", quantize=None | "float16" | "int8")`
(and `quantize="int8_full"` for LiteRT image models: full-integer, calibrated
on training examples) writes `<base_dir>/<name>-<format>[-<quantize>]/<version>/` with the model
file (`model.tflite` / `model.onnx`), `labels.txt`, what a client needs to
build the inputs (`vocab.txt` for text models) and `metadata.json` (format,
precision, input and output names, parity with Keras, sizes, accuracy before
and after). `format="saved_model"` is `export_saved_model`.

Before publishing, the file runs in its real runtime (`ai-edge-litert`'s
signature runner, `onnxruntime`), and the export is refused, with one line
saying why, when the runtime is not installed, when a LiteRT op has no builtin
kernel (it would need the Flex delegate, which no pip runtime has), when the
outputs differ from Keras beyond the tolerance, or when quantization costs
more than `accuracy_tolerance` accuracy on `validation_data` (unless
`force=True`). A model trained under `mixed_bfloat16` / `mixed_float16` is
converted from a float32 copy of its weights.

Text models take token ids (`token_ids`, `segment_ids`, `padding_mask`, int32
`[batch, sequence_length]`): keras-hub's tokenizers do not convert. Image
models take float32 RGB 0..255 `[batch, height, width, 3]` at the model's
`image_size`; the normalization is in the graph.

A LiteRT client (`pip install ai-edge-litert`), run by the test suite on a tiny model:

```python
import json
import numpy as np
from ai_edge_litert.interpreter import Interpreter

metadata = json.load(open(f"{export_dir}/metadata.json"))
runner = Interpreter(model_path=f"{export_dir}/model.tflite").get_signature_runner()
inputs = {spec["name"]: np.asarray(batch[spec["name"]], spec["dtype"]) for spec in metadata["inputs"]}
probabilities = runner(**inputs)[metadata["outputs"][0]["name"]]
labels = [metadata["labels"][index] for index in probabilities.argmax(axis=-1)]
```

An ONNX Runtime client (`pip install onnxruntime`), run by the test suite on a tiny model:

```python
import json
import numpy as np
import onnxruntime

metadata = json.load(open(f"{export_dir}/metadata.json"))
session = onnxruntime.InferenceSession(f"{export_dir}/model.onnx", providers=["CPUExecutionProvider"])
inputs = {spec["name"]: np.asarray(batch[spec["name"]], spec["dtype"]) for spec in metadata["inputs"]}
(probabilities,) = session.run(None, inputs)
labels = [metadata["labels"][index] for index in probabilities.argmax(axis=-1)]
```

`batch` maps input names to arrays: for a text model, the token ids of
`vocab.txt` as keras-hub's `BertTextClassifierPreprocessor` makes them
(`[CLS] text [SEP]`, padded with 0 to `sequence_length`); for an image model,
`{"images": float32 [n, height, width, 3]}` RGB 0..255 at `image_size`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tftune._validation import choice_error, raise_errors
from tftune.export._layout import FORMAT_METADATA, LABELS_ASSET, MODEL_FILES, format_model_dir
from tftune.export.publishing import (
    ExportResult,
    export_saved_model,
    export_target,
    staged_version,
    writable_dir,
)
from tftune.export.runtimes import CONVERTERS, QUANTIZATION_METHODS, load_runtime, runtime_versions
from tftune.export.verification import MODALITIES, accuracy_evaluation, parity_check
from tftune.saving import float32_copy

_logger = logging.getLogger(__name__)

FORMATS = ("saved_model", "litert", "onnx")
QUANTIZATIONS = ("float16", "int8", "int8_full")
# The formats each quantization converts to (int8_full: the LiteRT converter's full-integer mode).
QUANTIZATION_FORMATS = {"float16": ("litert", "onnx"), "int8": ("litert", "onnx"), "int8_full": ("litert",)}
# Calibration examples int8_full takes from `representative_data` (the converter's guide: about 100-500).
REPRESENTATIVE_EXAMPLES = 200
DEFAULT_ACCURACY_TOLERANCE = 0.01
# Max |probability difference| to the float32 Keras model, per precision. Measured
# here: float32 <= 1.2e-7, float16 <= 4.2e-5. int8 is judged by accuracy instead
# (dynamic-range int8 differs by up to ~1.5e-3 on BERT, more on a trained head).
PARITY_TOLERANCES = {"float32": 1e-4, "float16": 1e-3, "int8": None, "int8_full": None}


@dataclasses.dataclass(frozen=True)
class FormatExportResult:
    """A published LiteRT or ONNX export: where it is, and its `metadata.json` (sizes, parity, accuracy).

    `tftune.export_model` returns one for `format="litert"` / `"onnx"` (see its example).
    """

    path: str
    name: str
    version: int
    format: str
    precision: str
    metadata: dict

    @property
    def model_file(self) -> str:
        return os.path.join(self.path, MODEL_FILES[self.format])

    def summary(self) -> str:
        """The export report: file, size, parity with Keras, and accuracy / macro-F1 before and after."""
        sizes, parity, evaluation = self.metadata["sizes"], self.metadata["parity"], self.metadata["evaluation"]
        lines = [
            f"{self.format} {self.precision}: {self.model_file}",
            f"size {sizes['model_file_bytes'] / 1e6:.2f} MB ({sizes['ratio_to_keras_float32_weights']:.3f}x the "
            f"float32 weights, {sizes['keras_float32_weight_bytes'] / 1e6:.2f} MB)",
            f"max |probability difference| to Keras {parity['max_abs_difference']:.3g} on {parity['examples']} "
            f"examples (tolerance {parity['tolerance'] or 'none: int8 is judged by accuracy'})",
        ]
        if evaluation is None:
            lines.append("accuracy: not measured (no validation data)")
        else:
            before, after = evaluation["keras"], evaluation["exported"]
            lines.append(
                f"accuracy {before['accuracy']:.4f} -> {after['accuracy']:.4f}, macro-F1 {before['macro_f1']:.4f} -> "
                f"{after['macro_f1']:.4f} on {evaluation['examples']} validation examples "
                f"(drop allowed: {evaluation['accuracy_tolerance']:.4f})"
            )
        return "\n".join(lines)


def export_model(
    model: keras.Model,
    base_dir: str | os.PathLike = "saved_models",
    name: str | None = None,
    version: int | None = None,
    *,
    format: str = "saved_model",
    quantize: str | None = None,
    validation_data: tf.data.Dataset | None = None,
    representative_data: tf.data.Dataset | None = None,
    accuracy_tolerance: float = DEFAULT_ACCURACY_TOLERANCE,
    tolerance: float | None = None,
    force: bool = False,
    overwrite: bool = False,
    **saved_model_options,
) -> ExportResult | FormatExportResult:
    """Export a tftune classifier as a SavedModel, a LiteRT `.tflite` or an ONNX file, verified in its runtime.

    `format="saved_model"` is `export_saved_model(model, base_dir, name,
    version, overwrite=..., **saved_model_options)`. `"litert"` and `"onnx"`
    publish `<base_dir>/<name>-<format>[-<quantize>]/<version>/` (see the
    module docstring for the files and the client code).

    Args:
        model: a `TextClassifier` or `ImageClassifier` (any precision policy:
            mixed-precision models are converted from a float32 copy).
        base_dir: the export root.
        name: the model name (default: `model.name`); the folder adds the format.
        version: a positive integer; None takes the next free version.
        format: "saved_model", "litert" or "onnx".
        quantize: None (float32), "float16", "int8" (dynamic-range: int8
            weights, float inputs and outputs; LiteRT and ONNX) or
            "int8_full" (LiteRT full-integer, image models: int8 weights and
            activations, calibrated on `representative_data`; float inputs
            and outputs).
        validation_data: batched `(inputs, labels)` as
            `tftune.recipe.evaluation_data` gives: the accuracy and macro-F1 of
            Keras and of the export are measured on it, and its inputs are the
            parity examples. Required with `quantize` unless `force=True`.
        representative_data: batched `(inputs, labels)` (or inputs) from the
            training data, as `tftune.recipe.representative_data` gives:
            `quantize="int8_full"` calibrates its activation ranges on the
            first `REPRESENTATIVE_EXAMPLES` examples. int8_full only.
        accuracy_tolerance: the largest accuracy drop (a fraction: 0.01 is
            1 point) allowed before the export is refused.
        tolerance: the largest max |probability difference| to Keras allowed
            (default: `PARITY_TOLERANCES[precision]`; int8 is judged by accuracy).
        force: publish even when accuracy drops more than `accuracy_tolerance`,
            or a quantized export has no validation data.
        overwrite: replace an existing `version`.
        **saved_model_options: `export_saved_model`'s other options (SavedModel only).

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    result = tftune.export_model(model, "exports", name="reviews", format="onnx")
    result.path  # 'exports/reviews-onnx/1'
    print(result.summary())  # size, max |probability difference| to Keras, accuracy if validation_data
    ```
    """
    raise_errors(
        choice_error("format", format, FORMATS),
        None if quantize is None else choice_error("quantize", quantize, QUANTIZATIONS),
    )
    if format == "saved_model":
        raise_errors(_saved_model_options_error(quantize, validation_data, force, tolerance))
        return export_saved_model(model, base_dir, name, version, overwrite=overwrite, **saved_model_options)
    started = time.perf_counter()
    name, target_errors = export_target(model, name)
    raise_errors(
        *target_errors,
        _format_options_error(format, saved_model_options),
        _accuracy_tolerance_error(accuracy_tolerance),
        _quantize_data_error(quantize, validation_data, force),
        _quantization_format_error(format, quantize),
        _representative_data_error(quantize, representative_data),
        _full_integer_error(model, quantize),
    )
    runtime = load_runtime(format)
    precision = quantize or "float32"
    tolerance = PARITY_TOLERANCES[precision] if tolerance is None else tolerance
    model_dir = format_model_dir(writable_dir(base_dir), name, format, quantize)
    with staged_version(model_dir, version, overwrite, model) as (staging, version, target):
        converted = float32_copy(model)
        modality = MODALITIES[model.modality]
        model_file = os.path.join(staging, MODEL_FILES[format])
        CONVERTERS[format](
            converted,
            modality.input_signature(converted),
            quantize,
            model_file,
            _calibration_examples(converted, modality, representative_data),
        )
        run, inputs, outputs = runtime(model_file)
        check = parity_check(converted, modality, run, validation_data)
        _logger.info("%s %s: max |probability difference| to Keras %.3g", format, precision, check.difference)
        if tolerance is not None and check.difference > tolerance:
            raise ValueError(
                f"The {format} {precision} export disagrees with Keras: max |probability difference| "
                f"{check.difference:.3g} > tolerance {tolerance} on {check.examples} examples; nothing was published."
            )
        evaluation = accuracy_evaluation(check, model.labels, accuracy_tolerance)
        if evaluation and evaluation["accuracy_drop"] > accuracy_tolerance and not force:
            raise ValueError(
                f"The {format} {precision} export loses {evaluation['accuracy_drop'] * 100:.2f} accuracy points "
                f"({evaluation['keras']['accuracy']:.4f} -> {evaluation['exported']['accuracy']:.4f} on "
                f"{evaluation['examples']} validation examples; allowed {accuracy_tolerance * 100:.2f}); nothing was "
                f"published. Export without quantize, raise accuracy_tolerance, or pass force=True (--force)."
            )
        labels = [str(label) for label in model.labels]
        with open(os.path.join(staging, LABELS_ASSET), "w", encoding="utf-8") as labels_file:
            labels_file.write("".join(f"{label}\n" for label in labels))
        weight_bytes = _float32_weight_bytes(model)
        file_bytes = os.path.getsize(model_file)
        metadata = {
            "format": format,
            "precision": precision,
            "quantization": QUANTIZATION_METHODS.get((format, quantize)),
            "name": name,
            "version": version,
            "kind": model.kind,
            "model_file": MODEL_FILES[format],
            "labels": labels,
            "labels_file": LABELS_ASSET,
            "inputs": inputs,
            "outputs": outputs,
            "preprocessing": modality.write_client_assets(model, staging),
            "parity": {
                "examples": check.examples,
                "max_abs_difference": check.difference,
                "tolerance": tolerance,
                "reference": "the float32 Keras model",
            },
            "evaluation": evaluation,
            "sizes": {
                "model_file_bytes": file_bytes,
                "keras_float32_weight_bytes": weight_bytes,
                "ratio_to_keras_float32_weights": round(file_bytes / weight_bytes, 4),
            },
            "versions": runtime_versions(format),
            "export_seconds": round(time.perf_counter() - started, 2),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with open(os.path.join(staging, FORMAT_METADATA), "w") as metadata_file:
            json.dump(metadata, metadata_file, indent=2)
    result = FormatExportResult(target, name, version, format, precision, metadata)
    _logger.info("Exported %s version %d to %s in %.1f s", name, version, target, metadata["export_seconds"])
    return result


def _saved_model_options_error(quantize, validation_data, force, tolerance) -> str | None:
    given = [
        option
        for option, value in (
            ("quantize", quantize),
            ("validation_data", validation_data),
            ("force", force),
            ("tolerance", tolerance),
        )
        if value not in (None, False)
    ]
    if not given:
        return None
    return (
        f"{', '.join(given)} apply to format='litert' / 'onnx' exports (the converters' quantization, checked in "
        f"their runtime); a SavedModel is exported in float32 and checked by reloading it. Pass format='litert' "
        f"or 'onnx', or leave them out."
    )


def _format_options_error(format: str, options: dict) -> str | None:
    if not options:
        return None
    return (
        f"{sorted(options)} are SavedModel options; format={format!r} takes quantize, validation_data, "
        f"accuracy_tolerance, tolerance, force and overwrite (its export is always verified in its runtime)."
    )


def _accuracy_tolerance_error(accuracy_tolerance) -> str | None:
    if isinstance(accuracy_tolerance, (int, float)) and 0 <= accuracy_tolerance <= 1:
        return None
    return f"accuracy_tolerance={accuracy_tolerance!r} must be a fraction in [0, 1] (0.01 is 1 accuracy point)."


def _quantize_data_error(quantize, validation_data, force) -> str | None:
    if quantize is None or validation_data is not None or force:
        return None
    return (
        f"quantize={quantize!r} needs validation_data (CLI: --dataset) to measure the accuracy it costs; "
        f"pass it, or force=True (--force) to publish unmeasured."
    )


def _quantization_format_error(format: str, quantize: str | None) -> str | None:
    if quantize is None or format in QUANTIZATION_FORMATS[quantize]:
        return None
    return (
        f"quantize={quantize!r} converts to {list(QUANTIZATION_FORMATS[quantize])} only, not format={format!r}; "
        f"for {format} pass quantize='int8' (dynamic-range) or 'float16'."
    )


def _representative_data_error(quantize: str | None, representative_data) -> str | None:
    if (quantize == "int8_full") == (representative_data is not None):
        return None
    if representative_data is None:
        return (
            f"quantize='int8_full' needs representative_data (CLI: --representative-dataset): about "
            f"{REPRESENTATIVE_EXAMPLES} training examples that calibrate the int8 activation ranges."
        )
    return f"representative_data calibrates quantize='int8_full' only; got quantize={quantize!r}. Leave it out."


def _full_integer_error(model, quantize: str | None) -> str | None:
    modality = MODALITIES.get(getattr(model, "modality", None))
    return modality.full_integer_refusal if quantize == "int8_full" and modality is not None else None


def _calibration_examples(model: keras.Model, modality, representative_data: tf.data.Dataset | None):
    """The converter's representative_dataset: one-example input dicts from the first batches, or None."""
    if representative_data is None:
        return None

    def examples():
        given = 0
        for batch in representative_data.as_numpy_iterator():
            inputs = modality.runtime_inputs(model, batch[0] if isinstance(batch, tuple) else batch)
            for index in range(len(next(iter(inputs.values())))):
                if given == REPRESENTATIVE_EXAMPLES:
                    return
                yield {name: value[index : index + 1] for name, value in inputs.items()}
                given += 1

    return examples


def _float32_weight_bytes(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) * 4 for weight in model.weights)

"""LiteRT and ONNX exports: converted by Keras and the converters, run in their own runtime, published versioned.

`export_model(model, format="litert" | "onnx", quantize=None | "float16" | "int8")`
writes `<base_dir>/<name>-<format>[-<quantize>]/<version>/` with the model
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
import importlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tftune._validation import choice_error, raise_errors
from tftune.builders import IMAGE_INPUT
from tftune.export._layout import FORMAT_METADATA, LABELS_ASSET, MODEL_FILES, VOCABULARY_ASSET, format_model_dir
from tftune.export.assets import resolved_warmup_examples
from tftune.export.publishing import (
    ExportResult,
    export_saved_model,
    export_target,
    no_space_message,
    no_space_reason,
    publish,
    resolve_version,
    writable_dir,
)
from tftune.families import IMAGE, TEXT
from tftune.report import classification_metrics

_logger = logging.getLogger(__name__)

FORMATS = ("saved_model", "litert", "onnx")
QUANTIZATIONS = ("float16", "int8")
DEFAULT_ACCURACY_TOLERANCE = 0.01
# Max |probability difference| to the float32 Keras model, per precision. Measured
# here: float32 <= 1.2e-7, float16 <= 4.2e-5. int8 is judged by accuracy instead
# (dynamic-range int8 differs by up to ~1.5e-3 on BERT, more on a trained head).
PARITY_TOLERANCES = {"float32": 1e-4, "float16": 1e-3, "int8": None}
# The modules (and their pip distributions) each format converts and runs with;
# the tftune extra of the same name as the format installs them.
_RUNTIMES = {
    "litert": {"ai_edge_litert": "ai-edge-litert"},
    "onnx": {"onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx"},
}
_QUANTIZATION_METHODS = {
    ("litert", "float16"): "TFLiteConverter float16 weights (Optimize.DEFAULT, supported_types=[float16])",
    ("litert", "int8"): "TFLiteConverter dynamic-range int8 (Optimize.DEFAULT)",
    ("onnx", "float16"): "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)",
    ("onnx", "int8"): "onnxruntime.quantization.quantize_dynamic(weight_type=QInt8)",
}
_PARITY_BATCH = 32
_UNSUPPORTED_OP = re.compile(r"'tf\.([\w>]+)' op is neither a custom op nor a flex op")


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
        quantize: None (float32), "float16" or "int8" (dynamic-range: int8
            weights, float inputs and outputs); LiteRT and ONNX only.
        validation_data: batched `(inputs, labels)` as
            `tftune.recipe.evaluation_data` gives: the accuracy and macro-F1 of
            Keras and of the export are measured on it, and its inputs are the
            parity examples. Required with `quantize` unless `force=True`.
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
    model = tftune.build_text_classifier(bert_dir, 2, sequence_length=16, labels=["rotten", "fresh"])
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
    )
    runtime = _runtime(format)
    precision = quantize or "float32"
    tolerance = PARITY_TOLERANCES[precision] if tolerance is None else tolerance
    model_dir = format_model_dir(writable_dir(base_dir), name, format, quantize)
    os.makedirs(model_dir, exist_ok=True)
    version = resolve_version(model_dir, version, overwrite)
    target = os.path.join(model_dir, str(version))
    staging = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(staging)
        converted = float32_copy(model)
        modality = _MODALITIES[model.modality]
        model_file = os.path.join(staging, MODEL_FILES[format])
        _CONVERTERS[format](converted, modality.input_signature(converted), quantize, model_file)
        run, inputs, outputs = runtime(model_file)
        check = _check(converted, modality, run, validation_data)
        _logger.info("%s %s: max |probability difference| to Keras %.3g", format, precision, check.difference)
        if tolerance is not None and check.difference > tolerance:
            raise ValueError(
                f"The {format} {precision} export disagrees with Keras: max |probability difference| "
                f"{check.difference:.3g} > tolerance {tolerance} on {check.examples} examples; nothing was published."
            )
        evaluation = _evaluation(check, model.labels, accuracy_tolerance)
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
            "quantization": _QUANTIZATION_METHODS.get((format, quantize)),
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
            "versions": _versions(format),
            "export_seconds": round(time.perf_counter() - started, 2),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with open(os.path.join(staging, FORMAT_METADATA), "w") as metadata_file:
            json.dump(metadata, metadata_file, indent=2)
        publish(staging, target, overwrite)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = no_space_reason(error)
        if reason is None:
            raise
        raise OSError(no_space_message(model_dir, model, reason)) from None
    result = FormatExportResult(target, name, version, format, precision, metadata)
    _logger.info("Exported %s version %d to %s in %.1f s", name, version, target, metadata["export_seconds"])
    return result


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` if it computes in float32, else the same architecture under float32 with its trained weights.

    LiteRT and ONNX cannot take a `mixed_bfloat16` graph (Flex-only ops, or a
    file onnxruntime rejects) and need float32 for their own quantization.

    Example:

    ```python
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = tftune.build_image_classifier("resnet50", 3, image_size=(32, 32), weights=None)
    keras.mixed_precision.set_global_policy("float32")
    tftune.export.float32_copy(model).dtype_policy.name  # 'float32'
    ```
    """
    if model.dtype_policy.compute_dtype == "float32":
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
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


def _runtime(format: str) -> Callable:
    """The runtime loader of `format`; a ValueError naming the extra to install when a module is missing."""
    for module in _RUNTIMES[format]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(
                f"format={format!r} needs {module!r} to convert and verify the export, and it is not installed: "
                f"pip install 'tftune[{format}]'. Nothing was published."
            ) from None
    return _RUNTIME_LOADERS[format]


def _convert_litert(model: keras.Model, input_signature, quantize: str | None, path: str) -> None:
    # Builtin ops only: Keras adds SELECT_TF_OPS, which would make an op without a
    # builtin kernel a Flex op silently, and no pip runtime can run Flex ops.
    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize is not None:
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        options["target_spec"]["supported_types"] = [tf.float16]
    try:
        model.export(path, format="litert", input_signature=input_signature, verbose=False, **options)
    except Exception as error:
        ops = sorted(set(_UNSUPPORTED_OP.findall(str(error))))
        if not ops:
            raise
        raise ValueError(_flex_message(ops)) from None


def _flex_message(ops: list[str]) -> str:
    return (
        f"LiteRT has no builtin kernel for op(s) {ops}: they would need the Flex delegate (SELECT_TF_OPS), which "
        f"no pip runtime (ai-edge-litert) provides; nothing was published. Replace the layer that uses them, or "
        f"export format='saved_model' or 'onnx'."
    )


def _convert_onnx(model: keras.Model, input_signature, quantize: str | None, path: str) -> None:
    # tf2onnx on an inference-mode function: `model.export(format="onnx")` traces
    # `model.__call__` without training=False, which runs a keras.applications
    # ResNet's BatchNorm on batch statistics.
    import tf2onnx

    function = tf.function(lambda inputs: model(inputs, training=False), input_signature=[input_signature])
    tf2onnx_logger = logging.getLogger("tf2onnx")
    level = tf2onnx_logger.level
    tf2onnx_logger.setLevel(logging.ERROR)  # one line per folded op otherwise
    try:
        with tempfile.TemporaryDirectory() as scratch:
            float32_path = path if quantize is None else os.path.join(scratch, "float32.onnx")
            tf2onnx.convert.from_function(function, input_signature=[input_signature], output_path=float32_path)
            _quantize_onnx(float32_path, quantize, path)
    finally:
        tf2onnx_logger.setLevel(level)


def _quantize_onnx(float32_path: str, quantize: str | None, path: str) -> None:
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(float32_path, path, weight_type=QuantType.QInt8)
    elif quantize == "float16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(float32_path), keep_io_types=True), path)


def _load_litert(path: str):
    """(run(inputs) -> probabilities, input specs, output specs) of a `.tflite` file, through its signature runner."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    flex = sorted({op["op_name"] for op in interpreter._get_ops_details() if op["op_name"].startswith("Flex")})
    if flex:
        raise ValueError(_flex_message(flex))
    runner = interpreter.get_signature_runner()
    (signature,) = interpreter.get_signature_list().values()
    details = {**runner.get_input_details(), **runner.get_output_details()}
    inputs, outputs = (
        [_spec(name, details[name]["dtype"], details[name]["shape_signature"]) for name in signature[side]]
        for side in ("inputs", "outputs")
    )
    (output_name,) = signature["outputs"]
    return (lambda batch: runner(**batch)[output_name]), inputs, outputs


def _load_onnx(path: str):
    """(run(inputs) -> probabilities, input specs, output specs) of a `.onnx` file, in an onnxruntime session."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    dtypes = {"tensor(float)": "float32", "tensor(int32)": "int32", "tensor(int64)": "int64"}
    inputs = [_spec(node.name, dtypes[node.type], node.shape) for node in session.get_inputs()]
    outputs = [_spec(node.name, dtypes[node.type], node.shape) for node in session.get_outputs()]
    return (lambda batch: session.run(None, batch)[0]), inputs, outputs


def _spec(name: str, dtype, shape) -> dict:
    return {
        "name": name,
        "dtype": np.dtype(dtype).name,
        "shape": [int(dim) if isinstance(dim, (int, np.integer)) and dim >= 0 else None for dim in shape],
    }


@dataclasses.dataclass(frozen=True)
class _Check:
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


def _check(model: keras.Model, modality, run: Callable, validation_data: tf.data.Dataset | None) -> _Check:
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
    return _Check(np.concatenate(keras_outputs), np.concatenate(runtime_outputs), labels)


def _evaluation(check: _Check, label_names, accuracy_tolerance: float) -> dict | None:
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


def _float32_weight_bytes(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) * 4 for weight in model.weights)


def _versions(format: str) -> dict:
    """The versions of the packages that converted and verified the export."""
    distributions = ("tensorflow", "keras", *_RUNTIMES[format].values())
    return {distribution: importlib.metadata.version(distribution) for distribution in distributions}


class _TextModality:
    """Text classifiers: int32 token inputs `[batch, sequence_length]`; the client tokenizes with `vocab.txt`."""

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
_MODALITIES = {TEXT: _TextModality(), IMAGE: _ImageModality()}
_CONVERTERS = {"litert": _convert_litert, "onnx": _convert_onnx}
_RUNTIME_LOADERS = {"litert": _load_litert, "onnx": _load_onnx}

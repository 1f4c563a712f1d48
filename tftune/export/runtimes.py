"""LiteRT and ONNX runtimes: converting a Keras classifier to each format, and loading the file in its runtime.

A format's runtime modules come with the tftune extra of its name
(`pip install 'tftune[litert]'` / `'tftune[onnx]'`); `load_runtime` names the
extra to install when one is missing. LiteRT takes builtin ops only: an op
without a builtin kernel would need the Flex delegate, which no pip runtime has.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

# The modules (and their pip distributions) each format converts and runs with;
# the tftune extra of the same name as the format installs them.
RUNTIMES = {
    "litert": {"ai_edge_litert": "ai-edge-litert"},
    "onnx": {"onnxruntime": "onnxruntime", "tf2onnx": "tf2onnx"},
}
QUANTIZATION_METHODS = {
    ("litert", "float16"): "TFLiteConverter float16 weights (Optimize.DEFAULT, supported_types=[float16])",
    ("litert", "int8"): "TFLiteConverter dynamic-range int8 (Optimize.DEFAULT)",
    ("litert", "int8_full"): (
        "TFLiteConverter full-integer int8 (Optimize.DEFAULT, representative_dataset, TFLITE_BUILTINS_INT8 only; "
        "float32 inputs and outputs)"
    ),
    ("onnx", "float16"): "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)",
    ("onnx", "int8"): "onnxruntime.quantization.quantize_dynamic(weight_type=QInt8)",
}
_UNSUPPORTED_OP = re.compile(r"'tf\.([\w>]+)' op is neither a custom op nor a flex op")


def load_runtime(format: str) -> Callable:
    """The runtime loader of `format`; a ValueError naming the extra to install when a module is missing."""
    for module in RUNTIMES[format]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(
                f"format={format!r} needs {module!r} to convert and verify the export, and it is not installed: "
                f"pip install 'tftune[{format}]'. Nothing was published."
            ) from None
    return _RUNTIME_LOADERS[format]


def _convert_litert(
    model: keras.Model, input_signature, quantize: str | None, path: str, representative_dataset: Callable | None
) -> None:
    # Builtin ops only: Keras adds SELECT_TF_OPS, which would make an op without a
    # builtin kernel a Flex op silently, and no pip runtime can run Flex ops.
    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize is not None:
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        options["target_spec"]["supported_types"] = [tf.float16]
    if quantize == "int8_full":
        # Every op in int8 (the conversion fails if one has no int8 kernel); a
        # quantize / dequantize pair keeps the file's inputs and outputs float32.
        options["target_spec"]["supported_ops"] = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        options["representative_dataset"] = representative_dataset
    try:
        with warnings.catch_warnings():  # calibration runs tf.lite's deprecated Interpreter
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
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


def _convert_onnx(
    model: keras.Model, input_signature, quantize: str | None, path: str, representative_dataset: Callable | None
) -> None:
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


def runtime_versions(format: str) -> dict:
    """The versions of the packages that converted and verified the export."""
    distributions = ("tensorflow", "keras", *RUNTIMES[format].values())
    return {distribution: importlib.metadata.version(distribution) for distribution in distributions}


CONVERTERS = {"litert": _convert_litert, "onnx": _convert_onnx}
_RUNTIME_LOADERS = {"litert": _load_litert, "onnx": _load_onnx}

"""SavedModel export for TF Serving: versioned directories, raw-input signatures, label assets, warm-up, a client.

`export_saved_model` writes `<base_dir>/<name>/<version>/`, the layout TF
Serving watches; the SavedModel loads with `tensorflow` alone (plus
`tensorflow_text` for the tokenizer ops). One module per job:

- `signatures`: the serving module and its signatures (`serving_default` on
  raw texts / image bytes, `serve_tokens` / `serve_images` on tensors).
- `publishing`: `export_saved_model` / `export_from_file`: checks, staging,
  the reload check, atomic publishing of a version.
- `assets`: warm-up requests, export metadata, `models.config`, the custom-op report.
- `model_file`: `load_keras_model`, a `.keras` file with errors that name the problem.
- `client`: `load_serving_model` / `predict_from_saved_model`, an export run with TensorFlow alone.
- `formats`: `export_model(format="saved_model" | "litert" | "onnx", quantize=None | "float16" | "int8" | "int8_full")`,
  LiteRT / ONNX exports verified in their runtimes, in `<base_dir>/<name>-<format>[-<quantize>]/<version>/`.
- `runtimes`: converting to LiteRT / ONNX and loading the file in its runtime.
- `verification`: the inputs of a LiteRT / ONNX export per modality, and Keras vs the runtime on them.
"""

from tftune.export._layout import (
    FORMAT_METADATA,
    LABELS_ASSET,
    METADATA_FILE,
    MODEL_FILES,
    MODELS_CONFIG,
    VOCABULARY_ASSET,
    WARMUP_FILE,
)
from tftune.export.assets import CustomOpReport, custom_op_report, write_models_config
from tftune.export.client import Prediction, ServingModel, load_serving_model, predict_from_saved_model
from tftune.export.formats import (
    DEFAULT_ACCURACY_TOLERANCE,
    FORMATS,
    PARITY_TOLERANCES,
    QUANTIZATIONS,
    FormatExportResult,
    export_model,
)
from tftune.export.model_file import load_keras_model
from tftune.export.publishing import ExportResult, export_from_file, export_saved_model
from tftune.export.signatures import (
    IMAGE_BYTES_INPUT,
    IMAGES_SIGNATURE,
    RAW_INPUTS,
    SERVING_DEFAULT,
    TENSOR_SIGNATURES,
    TEXT_INPUT,
    TOKENS_SIGNATURE,
)

__all__ = [
    "DEFAULT_ACCURACY_TOLERANCE",
    "FORMATS",
    "FORMAT_METADATA",
    "IMAGES_SIGNATURE",
    "IMAGE_BYTES_INPUT",
    "LABELS_ASSET",
    "METADATA_FILE",
    "MODELS_CONFIG",
    "MODEL_FILES",
    "PARITY_TOLERANCES",
    "QUANTIZATIONS",
    "RAW_INPUTS",
    "SERVING_DEFAULT",
    "TENSOR_SIGNATURES",
    "TEXT_INPUT",
    "TOKENS_SIGNATURE",
    "VOCABULARY_ASSET",
    "WARMUP_FILE",
    "CustomOpReport",
    "ExportResult",
    "FormatExportResult",
    "Prediction",
    "ServingModel",
    "custom_op_report",
    "export_from_file",
    "export_model",
    "export_saved_model",
    "load_keras_model",
    "load_serving_model",
    "predict_from_saved_model",
    "write_models_config",
]

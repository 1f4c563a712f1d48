"""Where an export's files are: `<base_dir>/<name>/<version>/`, the layout TF Serving watches.

```python
version_dir("saved_models/reviews")    # 'saved_models/reviews/3', the newest version
version_dir("saved_models/reviews/1")  # 'saved_models/reviews/1'
```
"""

from __future__ import annotations

import os

LABELS_ASSET = "labels.txt"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FILE = os.path.join("assets.extra", "tftune_export.json")
MODELS_CONFIG = "models.config"
SAVED_MODEL_PROTO = "saved_model.pb"
# LiteRT / ONNX exports: the model file per format, the client assets, the metadata.
MODEL_FILES = {"litert": "model.tflite", "onnx": "model.onnx"}
VOCABULARY_ASSET = "vocab.txt"
FORMAT_METADATA = "metadata.json"


def versions(model_dir: str) -> list[int]:
    """The published versions in `model_dir` (integer directories holding a SavedModel), ascending."""
    return sorted(
        int(entry)
        for entry in os.listdir(model_dir)
        if entry.isdigit() and os.path.isfile(os.path.join(model_dir, entry, SAVED_MODEL_PROTO))
    )


def version_dir(path: str) -> str:
    """`path` if it is a SavedModel directory, else the newest version in the model directory `path`."""
    if os.path.isfile(os.path.join(path, SAVED_MODEL_PROTO)):
        return path
    published = versions(path) if os.path.isdir(path) else []
    if not published:
        raise ValueError(
            f"{path!r} is neither a SavedModel directory nor a model directory with integer versions "
            f"(<name>/<version>/{SAVED_MODEL_PROTO}); pass saved_models/<name> or saved_models/<name>/<version> "
            f"as written by tftune export."
        )
    return os.path.join(path, str(published[-1]))


def format_model_dir(base_dir: str, name: str, format: str, quantize: str | None) -> str:
    """The model directory of a LiteRT / ONNX export: `<base_dir>/<name>-<format>[-<quantize>]`.

    Each format and precision gets its own versions, beside the SavedModel's
    `<base_dir>/<name>` (which TF Serving and `models.config` use).
    """
    return os.path.join(base_dir, "-".join(part for part in (name, format, quantize) if part))

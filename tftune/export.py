"""SavedModel export for TF Serving: versioned directories, raw-input signatures, label assets, warm-up.

`export_saved_model` writes `<base_dir>/<name>/<version>/`, the layout TF
Serving watches. The SavedModel is a `tf.Module` that holds the Keras model
(and, for text, its tokenizing preprocessor) with `tf.function` signatures, so
it loads in a process that imports only `tensorflow` (plus `tensorflow_text`
for the tokenizer ops): no tftune, keras or keras-hub Python at serving time.

Signatures (outputs of every one: `probabilities` float32 `[batch, classes]`,
`class_id` int64 `[batch]`, `label` string `[batch]`, and with `top_k=k` also
`top_k_probabilities`, `top_k_class_ids`, `top_k_labels` `[batch, k]`):

| model | signature         | inputs                                                      |
|-------|-------------------|-------------------------------------------------------------|
| text  | `serving_default` | `text` string `[batch]` (tokenized in the graph)            |
| text  | `serve_tokens`    | `token_ids`, `segment_ids`, `padding_mask` int32 `[batch, seq]` |
| image | `serving_default` | `image_bytes` string `[batch]` (JPEG / PNG, decoded in the graph) |
| image | `serve_images`    | `images` float32 `[batch, height, width, 3]`, RGB 0..255    |
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tftune.builders import IMAGE_INPUT, TEXT_INPUTS, ImageClassifier, TextClassifier

SERVING_DEFAULT = "serving_default"
TOKENS_SIGNATURE = "serve_tokens"
IMAGES_SIGNATURE = "serve_images"
TEXT_INPUT = "text"
IMAGE_BYTES_INPUT = "image_bytes"
LABELS_ASSET = "labels.txt"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FILE = os.path.join("assets.extra", "tftune_export.json")
MODELS_CONFIG = "models.config"

# TF Text ops that TF Serving 2.19.x has (it embeds TF Text 2.12.1): the
# long-standing tokenizer ops keras-hub's BERT tokenizer uses. Any other TF
# Text op (RoundRobinTrim, the trimmer keras-hub uses for truncate="round_robin",
# is not in 2.12.1; TF Serving PR #4057) needs a model server that embeds
# TF Text 2.20: tensorflow/serving 2.20.0 or newer.
_TF_TEXT_OPS_IN_SERVING_2_19 = frozenset(
    {
        "CaseFoldUTF8",
        "NormalizeUTF8",
        "RegexSplitWithOffsets",
        "WordpieceTokenizeWithOffsets",
        "FastWordpieceTokenizeWithOffsets",
    }
)
_SERVING_WITH_TF_TEXT_2_12 = "2.19.0"
_SERVING_WITH_TF_TEXT_2_20 = "2.20.0"

_FLOAT32_TOLERANCE = 1e-5
# float16 / bfloat16 compute: the reloaded graph runs the same ops, but fused
# kernels may round differently (measured here: identical on CPU).
_MIXED_PRECISION_TOLERANCE = 1e-3
_DEFAULT_WARMUP_TEXTS = ("A warm-up request for the model server.", "Short text.")
# Model names end up in paths, models.config (a text proto) and shell commands.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclasses.dataclass(frozen=True)
class CustomOpReport:
    """Ops in a SavedModel that core TensorFlow does not register, and what a model server needs for them.

    `custom_ops` maps each such op to the library that registered it in this
    process ("tensorflow_text", or "unknown").

    Example:

    ```python
    report = tftune.custom_op_report("saved_models/reviews/1")
    print(report.custom_ops, report.min_model_server_version)
    ```
    """

    custom_ops: dict[str, str]
    min_model_server_version: str | None
    note: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """A published export: where it is, its signatures and what serving it needs.

    Example:

    ```python
    result = tftune.export_saved_model(model, name="reviews")
    print(result.path, result.version)
    print(result.serving_instructions())
    ```
    """

    path: str
    name: str
    version: int
    kind: str
    signatures: dict[str, dict]
    custom_ops: CustomOpReport
    export_seconds: float

    def serving_instructions(self) -> str:
        """Shell commands that serve this export with TF Serving and query it."""
        model_dir = os.path.abspath(os.path.dirname(self.path))
        tag = self.custom_ops.min_model_server_version or "latest"
        if self.kind == "text":
            predict = f"tftune predict {self.path} 'a fine film'"
            body = '{"instances": [{"text": "a fine film"}]}'
        else:
            predict = f"tftune predict {self.path} image.jpg"
            body = '{"instances": [{"image_bytes": {"b64": "\'"$(base64 -w0 image.jpg)"\'"}}]}'
        return "\n".join(
            (
                predict,
                f'docker run --rm -p 8501:8501 -v "{model_dir}:/models/{self.name}" '
                f"-e MODEL_NAME={self.name} tensorflow/serving:{tag}",
                f"curl -s -X POST http://localhost:8501/v1/models/{self.name}:predict -d '{body}'",
            )
        )


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One served prediction: the input, its label, class id and probability.

    Example:

    ```python
    for prediction in tftune.predict_from_saved_model("saved_models/reviews", ["a fine film"]):
        print(prediction)  # fresh  0.9731  a fine film
    ```
    """

    input: str
    label: str
    class_id: int
    probability: float

    def __str__(self) -> str:
        return f"{self.label}\t{self.probability:.4f}\t{self.input}"


class _ServingModule(tf.Module):
    """What the SavedModel holds: the Keras model, its preprocessor, the label table."""

    def __init__(self, model: keras.Model, labels_path: str, top_k: int | None):
        super().__init__(name="tftune_serving")
        self.model = model
        self.preprocessor = getattr(model, "preprocessor", None)
        self.top_k = top_k
        # A string filename becomes a tracked tf.saved_model.Asset: the file is
        # copied into the SavedModel's assets/ and read when the model loads.
        self.label_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                labels_path,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )

    def outputs(self, model_inputs) -> dict[str, tf.Tensor]:
        probabilities = tf.cast(self.model(model_inputs, training=False), tf.float32)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        outputs = {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": self.label_table.lookup(class_id),
        }
        if self.top_k:
            top_probabilities, top_ids = tf.math.top_k(probabilities, k=self.top_k)
            top_ids = tf.cast(top_ids, tf.int64)
            outputs.update(
                top_k_probabilities=top_probabilities,
                top_k_class_ids=top_ids,
                top_k_labels=self.label_table.lookup(top_ids),
            )
        return outputs


def export_saved_model(
    model: keras.Model,
    base_dir: str | os.PathLike = "saved_models",
    name: str | None = None,
    version: int | None = None,
    *,
    overwrite: bool = False,
    top_k: int | None = None,
    warmup: bool = True,
    warmup_examples: Sequence[str] | Sequence[bytes] | None = None,
    verify: bool = True,
) -> ExportResult:
    """Export a tftune classifier as a TF Serving SavedModel in `<base_dir>/<name>/<version>/`.

    The export is written to a hidden temporary directory beside the target
    and renamed into place only when complete (TF Serving ignores names that
    are not integers), so a failure never leaves a half-written version.

    Args:
        model: a `TextClassifier` or `ImageClassifier` (trained under any
            strategy and precision policy).
        base_dir: the TF Serving model base directory.
        name: the served model name (default: `model.name`); no path separators.
        version: a positive integer; None takes the next after the highest
            existing version.
        overwrite: replace an existing `version` instead of raising.
        top_k: also output the `k` most probable classes.
        warmup: write `assets.extra/tf_serving_warmup_requests`.
        warmup_examples: real inputs for the warm-up requests and the reload
            check: strings for text models, JPEG / PNG bytes for image models
            (default: two short sentences, or a generated JPEG and PNG).
        verify: reload the export in a fresh process that imports only
            tensorflow (+ tensorflow_text) and check its predictions on
            `warmup_examples` against the Keras model before publishing.

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", 3, image_size=(64, 64), weights=None)
    result = tftune.export_saved_model(model, "saved_models", name="flowers")
    result.path  # 'saved_models/flowers/1'
    ```
    """
    started = time.perf_counter()
    kind = _model_kind(model)
    labels = _check_labels(model)
    name = _check_name(model.name if name is None else name)
    top_k = _check_top_k(top_k, len(labels))
    examples = _check_warmup_examples(kind, model, warmup_examples)
    _check_version(version)
    model_dir = os.path.join(_writable_dir(base_dir), name)
    os.makedirs(model_dir, exist_ok=True)
    version = _resolve_version(model_dir, version, overwrite)
    target = os.path.join(model_dir, str(version))
    # Not mkdtemp: its 0700 mode would survive the rename and lock out a model
    # server running as another user.
    staging = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)
    try:
        signatures = _save(model, labels, top_k, staging)
        report = custom_op_report(staging)
        print(_describe_ops(report))
        if warmup:
            _write_warmup_requests(staging, name, kind, model, examples)
        if verify:
            _verify_reload(staging, kind, model, examples)
        result = ExportResult(
            path=target,
            name=name,
            version=version,
            kind=kind,
            signatures=signatures,
            custom_ops=report,
            export_seconds=round(time.perf_counter() - started, 2),
        )
        _write_metadata(staging, result, labels)
        _publish(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def export_from_file(
    model_path: str | os.PathLike,
    base_dir: str | os.PathLike = "saved_models",
    name: str | None = None,
    version: int | None = None,
    **options,
) -> ExportResult:
    """Export a saved `.keras` model, or the newest `.keras` checkpoint in a directory, for TF Serving.

    What `tftune export MODEL_PATH` runs; the other arguments and `**options`
    (`overwrite`, `top_k`, `warmup`, `warmup_examples`, `verify`) are those of
    `export_saved_model`.

    Example:

    ```python
    model.save("reviews.keras")
    tftune.export_from_file("reviews.keras", "saved_models", name="reviews")
    ```
    """
    model_path = os.fspath(model_path)
    if os.path.isdir(model_path):
        checkpoints = [
            os.path.join(model_path, entry) for entry in os.listdir(model_path) if entry.endswith(".keras")
        ]
        if not checkpoints:
            raise ValueError(
                f"Checkpoint directory {model_path!r} holds no '.keras' file. Pass a '.keras' model "
                f"file, or a directory where keras.callbacks.ModelCheckpoint saved full models "
                f"(save_weights_only=False)."
            )
        model_path = max(checkpoints, key=os.path.getmtime)
    elif not (model_path.endswith(".keras") and os.path.isfile(model_path)):
        raise ValueError(
            f"model_path={model_path!r} is not an existing '.keras' file or checkpoint directory. "
            f"Save the trained model with model.save('model.keras') (a '.weights.h5' file lacks the "
            f"architecture and label names) and export that."
        )
    return export_saved_model(keras.models.load_model(model_path), base_dir, name, version, **options)


def predict_from_saved_model(
    saved_model_dir: str | os.PathLike, inputs: Sequence[str], signature: str = SERVING_DEFAULT
) -> list[Prediction]:
    """Run an exported SavedModel on raw inputs, the way a TF Serving client sees it.

    What `tftune predict SAVED_MODEL_DIR INPUT...` runs. Inputs are texts for
    text models and JPEG / PNG file paths for image models. `saved_model_dir`
    is a version directory or a model directory (its highest version is used).

    Example:

    ```python
    for prediction in tftune.predict_from_saved_model("saved_models/reviews", ["a fine film"]):
        print(prediction.label, prediction.probability)
    ```
    """
    saved_model_dir = _version_dir(os.fspath(saved_model_dir))
    if not inputs:
        raise ValueError("predict needs at least one input: texts for a text model, image files for an image model.")
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops text SavedModels use)

    loaded = tf.saved_model.load(saved_model_dir)
    if signature not in loaded.signatures:
        raise ValueError(
            f"signature={signature!r} is not in {saved_model_dir!r}; it has {sorted(loaded.signatures)}."
        )
    function = loaded.signatures[signature]
    input_names = list(function.structured_input_signature[1])
    if input_names == [TEXT_INPUT]:
        feed = tf.constant(list(inputs))
    elif input_names == [IMAGE_BYTES_INPUT]:
        missing = [path for path in inputs if not os.path.isfile(path)]
        if missing:
            raise ValueError(f"Image files not found: {missing}. An image model takes JPEG / PNG file paths.")
        feed = tf.constant([tf.io.read_file(path).numpy() for path in inputs])
    else:
        raise ValueError(
            f"Signature {signature!r} takes {input_names}; predict supports the raw-input signatures "
            f"('{TEXT_INPUT}' or '{IMAGE_BYTES_INPUT}'). Use signature='{SERVING_DEFAULT}'."
        )
    outputs = function(**{input_names[0]: feed})
    probabilities = outputs["probabilities"].numpy()
    class_ids = outputs["class_id"].numpy()
    return [
        Prediction(str(item), label.decode(), int(class_id), float(row[class_id]))
        for item, label, class_id, row in zip(inputs, outputs["label"].numpy(), class_ids, probabilities)
    ]


def write_models_config(base_dir: str | os.PathLike = "saved_models", serving_root: str = "/models") -> str:
    """Write `<base_dir>/models.config`, a TF Serving model_config_list of the exported models.

    Every subdirectory holding an integer version with a `saved_model.pb` is
    listed with `base_path` `<serving_root>/<name>`: mount `base_dir` at
    `serving_root` and start the server with `--model_config_file`.

    Example:

    ```python
    tftune.write_models_config("saved_models")
    # docker run -p 8501:8501 -v "$PWD/saved_models:/models" tensorflow/serving \\
    #   --model_config_file=/models/models.config
    ```
    """
    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        raise ValueError(f"base_dir={base_dir!r} is not a directory; export a model into it first.")
    names = sorted(
        entry for entry in os.listdir(base_dir) if os.path.isdir(os.path.join(base_dir, entry)) and _versions(
            os.path.join(base_dir, entry)
        )
    )
    if not names:
        raise ValueError(f"No exported models under {base_dir!r} (expected <name>/<version>/saved_model.pb).")
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{serving_root.rstrip("/")}/{name}"\n'
        f'    model_platform: "tensorflow"\n  }}\n'
        for name in names
    )
    path = os.path.join(base_dir, MODELS_CONFIG)
    with open(path, "w") as config_file:
        config_file.write(f"model_config_list {{\n{entries}}}\n")
    return path


def custom_op_report(saved_model_dir: str | os.PathLike) -> CustomOpReport:
    """The ops of a SavedModel (graph and function library) that core TensorFlow does not register.

    Core ops are those in `tf.raw_ops`; op libraries loaded at run time (TF
    Text's) are not added there. The report says which TF Serving release
    provides them.

    Example:

    ```python
    tftune.custom_op_report("saved_models/reviews/1").custom_ops
    # {'CaseFoldUTF8': 'tensorflow_text', 'FastWordpieceTokenizeWithOffsets': ..., ...}
    ```
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(saved_model_dir), "saved_model.pb"), "rb") as proto_file:
        saved_model.ParseFromString(proto_file.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    custom = sorted(op for op in ops if not op.startswith("_") and not hasattr(tf.raw_ops, op))
    text_loaded = "tensorflow_text" in sys.modules
    custom_ops = {
        op: "tensorflow_text" if text_loaded and op_def_registry.get(op) is not None else "unknown"
        for op in custom
    }
    unknown = [op for op, library in custom_ops.items() if library == "unknown"]
    newer_text_ops = [op for op in custom if op not in unknown and op not in _TF_TEXT_OPS_IN_SERVING_2_19]
    if unknown:
        return CustomOpReport(
            custom_ops,
            None,
            f"ops {unknown} come from no library TF Serving links; serving this model needs a "
            f"model server built with them.",
        )
    if newer_text_ops:
        return CustomOpReport(
            custom_ops,
            _SERVING_WITH_TF_TEXT_2_20,
            f"TF Text ops {newer_text_ops} are newer than the TF Text 2.12.1 in TF Serving 2.19; "
            f"use tensorflow/serving {_SERVING_WITH_TF_TEXT_2_20} or newer (embeds TF Text 2.20).",
        )
    if custom:
        return CustomOpReport(
            custom_ops,
            _SERVING_WITH_TF_TEXT_2_12,
            f"TF Text ops {custom} are linked into tensorflow/serving; {_SERVING_WITH_TF_TEXT_2_12} "
            f"(TF Text 2.12.1) and newer provide them.",
        )
    return CustomOpReport({}, None, "core TensorFlow ops only: no TF Text ops needed.")


def _describe_ops(report: CustomOpReport) -> str:
    ops = ", ".join(f"{op} ({library})" for op, library in report.custom_ops.items()) or "none"
    minimum = report.min_model_server_version or "any"
    return f"Ops outside core TensorFlow: {ops}. Minimum TF Serving: {minimum}. {report.note}"


def _model_kind(model) -> str:
    if isinstance(model, TextClassifier):
        return "text"
    if isinstance(model, ImageClassifier):
        return "image"
    raise ValueError(
        f"Cannot export a {type(model).__name__}: tftune exports TextClassifier and ImageClassifier "
        f"models (built with tftune.build_text_classifier / build_image_classifier, or loaded from "
        f"their '.keras' files after importing tftune)."
    )


def _check_labels(model) -> list[str]:
    labels = [str(label) for label in (model.labels or [])]
    if not labels:
        raise ValueError(
            "The model's label list is empty; the `label` output needs one name per class. "
            "Set labels when building (labels=[...])."
        )
    if len(labels) != model.num_classes:
        raise ValueError(
            f"The model has {model.num_classes} classes but {len(labels)} labels ({labels}); "
            f"give exactly one name per class."
        )
    bad = [label for label in labels if "\n" in label or "\r" in label]
    if bad:
        raise ValueError(f"Labels {bad} contain line breaks; the label asset holds one label per line.")
    return labels


def _check_name(name) -> str:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"name={name!r} is not a valid model name: use letters, digits, '_', '-' and '.', starting "
            f"with a letter or digit, without '..' (for example 'reviews'); pass name=... to choose one."
        )
    return name


def _check_top_k(top_k, num_classes: int) -> int | None:
    if top_k is None:
        return None
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= num_classes:
        raise ValueError(f"top_k must be None or an integer in [1, {num_classes}] (the classes); got {top_k!r}.")
    return top_k


def _check_warmup_examples(kind: str, model, examples) -> list:
    if examples is None:
        if kind == "text":
            return list(_DEFAULT_WARMUP_TEXTS)
        gradient = np.linspace(0, 255, model.image_size[0] * model.image_size[1] * 3)
        image = tf.constant(gradient.reshape(*model.image_size, 3).astype("uint8"))
        return [tf.io.encode_jpeg(image).numpy(), tf.io.encode_png(image).numpy()]
    examples = list(examples)
    expected = str if kind == "text" else bytes
    if not examples or not all(isinstance(example, expected) for example in examples):
        raise ValueError(
            f"warmup_examples for a {kind} model must be a non-empty list of "
            f"{'strings' if kind == 'text' else 'JPEG / PNG bytes'}; got {examples!r:.200}."
        )
    return examples


def _writable_dir(base_dir) -> str:
    base_dir = os.fspath(base_dir)
    try:
        os.makedirs(base_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"base_dir={base_dir!r} cannot be created ({error}); pass a writable directory.") from None
    if not os.access(base_dir, os.W_OK | os.X_OK):
        raise ValueError(f"base_dir={base_dir!r} is not writable; pass a writable directory.")
    return base_dir


def _versions(model_dir: str) -> list[int]:
    return sorted(
        int(entry)
        for entry in os.listdir(model_dir)
        if entry.isdigit() and os.path.isfile(os.path.join(model_dir, entry, "saved_model.pb"))
    )


def _check_version(version) -> None:
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise ValueError(f"version must be None (the next free version) or a positive integer; got {version!r}.")


def _resolve_version(model_dir: str, version, overwrite: bool) -> int:
    if version is None:
        existing = [int(entry) for entry in os.listdir(model_dir) if entry.isdigit()]
        return max(existing, default=0) + 1
    if os.path.exists(os.path.join(model_dir, str(version))) and not overwrite:
        raise ValueError(
            f"Version {version} of {model_dir!r} already exists; pass version=None for the next "
            f"version ({max(_versions(model_dir) or [version]) + 1}) or overwrite=True to replace it."
        )
    return version


def _version_dir(path: str) -> str:
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = _versions(path) if os.path.isdir(path) else []
    if not versions:
        raise ValueError(
            f"{path!r} is neither a SavedModel directory nor a model directory with integer "
            f"versions (<name>/<version>/saved_model.pb)."
        )
    return os.path.join(path, str(versions[-1]))


def _save(model, labels: list[str], top_k: int | None, export_dir: str) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as labels_dir:
        labels_path = os.path.join(labels_dir, LABELS_ASSET)
        with open(labels_path, "w", encoding="utf-8") as labels_file:
            labels_file.write("".join(f"{label}\n" for label in labels))
        module = _ServingModule(model, labels_path, top_k)
        signatures = _signature_functions(module, model)
        tf.saved_model.save(module, export_dir, signatures=signatures)
    return {
        name: {
            "inputs": {spec.name: _spec_json(spec) for spec in tf.nest.flatten(function.structured_input_signature)},
            "outputs": {key: _spec_json(spec) for key, spec in function.structured_outputs.items()},
        }
        for name, function in signatures.items()
    }


def _spec_json(spec) -> dict:
    return {"dtype": spec.dtype.name, "shape": [None if dim is None else int(dim) for dim in spec.shape]}


def _signature_functions(module: _ServingModule, model) -> dict:
    if isinstance(model, TextClassifier):

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
        def serve_text(text):
            return module.outputs(module.preprocessor(text))

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=key) for key in TEXT_INPUTS])
        def serve_tokens(token_ids, segment_ids, padding_mask):
            return module.outputs(
                dict(zip(TEXT_INPUTS, (token_ids, segment_ids, padding_mask)))
            )

        return {
            SERVING_DEFAULT: serve_text.get_concrete_function(),
            TOKENS_SIGNATURE: serve_tokens.get_concrete_function(),
        }
    height, width = model.image_size

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)])
    def serve_image_bytes(image_bytes):
        images = tf.map_fn(
            lambda encoded: _decode(encoded, (height, width)),
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )
        return module.outputs(images)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGE_INPUT)])
    def serve_images(images):
        return module.outputs(images)

    return {
        SERVING_DEFAULT: serve_image_bytes.get_concrete_function(),
        IMAGES_SIGNATURE: serve_images.get_concrete_function(),
    }


def _write_warmup_requests(export_dir: str, name: str, kind: str, model, examples: list) -> None:
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        raise ValueError(
            "Warm-up requests need the TF Serving protos: pip install 'tftune[serving]' "
            "(tensorflow-serving-api), or export with warmup=False."
        ) from None

    if kind == "text":
        raw = {TEXT_INPUT: np.array(examples, dtype=object)}
        tensors = {key: np.asarray(value) for key, value in model.preprocessor(examples).items()}
        requests = [(SERVING_DEFAULT, raw), (TOKENS_SIGNATURE, tensors)]
    else:
        raw = {IMAGE_BYTES_INPUT: np.array(examples, dtype=object)}
        images = np.stack([_decode(example, model.image_size).numpy() for example in examples])
        requests = [(SERVING_DEFAULT, raw), (IMAGES_SIGNATURE, {IMAGE_INPUT: images})]
    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            # One single-example and one full-batch request per signature.
            for batch in ({key: value[:1] for key, value in inputs.items()}, inputs):
                request = predict_pb2.PredictRequest(
                    model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
                )
                for key, value in batch.items():
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())


def _decode(image_bytes, image_size=None) -> tf.Tensor:
    """JPEG / PNG / BMP / GIF bytes -> float32 RGB; resized when `image_size` is given.

    The resize is the same bilinear one as the model's Resizing layer, so the
    model's own resize is the identity and bytes give what Keras gives on the image.
    """
    image = tf.cast(tf.io.decode_image(image_bytes, channels=3, expand_animations=False), tf.float32)
    return image if image_size is None else tf.image.resize(image, image_size)


# Runs in a fresh interpreter: only tensorflow (+ tensorflow_text for text
# models) is importable from the tftune stack, as in a model server.
_RELOAD_CHECK = """
import base64, json, sys
request = json.loads(sys.stdin.read())
for blocked in ("tftune", "keras_hub"):
    sys.modules[blocked] = None
import tensorflow as tf
if request["kind"] == "text":
    import tensorflow_text
    inputs = {"text": tf.constant(request["examples"])}
else:
    inputs = {"image_bytes": tf.constant([base64.b64decode(item) for item in request["examples"]])}
outputs = tf.saved_model.load(request["path"]).signatures["serving_default"](**inputs)
print(json.dumps({
    "probabilities": outputs["probabilities"].numpy().tolist(),
    "label": [label.decode() for label in outputs["label"].numpy().tolist()],
}))
"""


def _verify_reload(export_dir: str, kind: str, model, examples: list) -> None:
    payload = examples if kind == "text" else [base64.b64encode(example).decode() for example in examples]
    process = subprocess.run(
        [sys.executable, "-c", _RELOAD_CHECK],
        input=json.dumps({"kind": kind, "path": os.path.abspath(export_dir), "examples": payload}),
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if process.returncode != 0:
        raise RuntimeError(
            f"The exported SavedModel does not load and run in a process with only tensorflow "
            f"(+ tensorflow_text); nothing was published.\n{process.stderr[-3000:]}"
        )
    served = json.loads(process.stdout.strip().splitlines()[-1])
    # Direct calls, not predict_on_batch: under a MirroredStrategy predict_on_batch
    # runs the batch on every replica (rows repeated); a call, like the SavedModel,
    # uses the primary replica's variables.
    if kind == "text":
        expected = model(model.preprocessor(examples), training=False)
    else:
        expected = np.concatenate([model(_decode(example)[None], training=False) for example in examples])
    expected = np.asarray(expected, dtype="float32")
    difference = float(np.max(np.abs(np.asarray(served["probabilities"], dtype="float32") - expected)))
    tolerance = _FLOAT32_TOLERANCE if model.dtype_policy.compute_dtype == "float32" else _MIXED_PRECISION_TOLERANCE
    expected_labels = [model.labels[index] for index in np.argmax(served["probabilities"], axis=-1)]
    if difference > tolerance or served["label"] != expected_labels:
        raise RuntimeError(
            f"The reloaded SavedModel disagrees with the Keras model: max |probability difference| "
            f"{difference:.3g} (tolerance {tolerance}), labels {served['label']} vs {expected_labels}; "
            f"nothing was published."
        )


def _write_metadata(export_dir: str, result: ExportResult, labels: list[str]) -> None:
    path = os.path.join(export_dir, METADATA_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    metadata = {
        "name": result.name,
        "version": result.version,
        "kind": result.kind,
        "labels": labels,
        "signatures": result.signatures,
        "custom_ops": result.custom_ops.to_json(),
        "tensorflow_version": tf.__version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(path, "w") as metadata_file:
        json.dump(metadata, metadata_file, indent=2)


def _publish(staging: str, target: str, overwrite: bool) -> None:
    if not os.path.exists(target):
        os.rename(staging, target)
        return
    if not overwrite:
        raise ValueError(f"{target!r} appeared during the export; not overwriting it (pass overwrite=True).")
    retired = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(target))
    os.rename(target, os.path.join(retired, "version"))
    os.rename(staging, target)
    shutil.rmtree(retired)

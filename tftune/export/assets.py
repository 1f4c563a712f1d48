"""Serving assets: what a model server needs beside the graph (warm-up, metadata, models.config, custom-op report)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tftune._keras_private import is_registered_op
from tftune.classifiers import IMAGE_INPUT
from tftune.export._layout import METADATA_FILE, MODELS_CONFIG, SAVED_MODEL_PROTO, WARMUP_FILE, versions
from tftune.export.signatures import SERVING_DEFAULT, decode_image
from tftune.families import IMAGE, TEXT, Modality

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
_DEFAULT_WARMUP_TEXTS = ("A warm-up request for the model server.", "Short text.")


@dataclasses.dataclass(frozen=True)
class CustomOpReport:
    """Ops in a SavedModel that core TensorFlow does not register, and what a model server needs for them.

    `custom_ops` maps each such op to the library that registered it in this
    process ("tensorflow_text", or "unknown").

    `tftune.custom_op_report` returns one; every `ExportResult` holds its
    export's as `custom_ops` (see their examples).
    """

    custom_ops: dict[str, str]
    min_model_server_version: str | None
    note: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        ops = ", ".join(f"{op} ({library})" for op, library in self.custom_ops.items()) or "none"
        minimum = self.min_model_server_version or "any"
        return f"Ops outside core TensorFlow: {ops}. Minimum TF Serving: {minimum}. {self.note}"


def custom_op_report(saved_model_dir: str | os.PathLike) -> CustomOpReport:
    """The ops of a SavedModel (graph and function library) that core TensorFlow does not register.

    Core ops are those in `tf.raw_ops`; op libraries loaded at run time (TF
    Text's) are not added there. The report says which TF Serving release
    provides them.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16)
    result = tftune.export_saved_model(model, "saved_models", name="reviews", warmup=False, verify=False)
    report = tftune.custom_op_report(result.path)
    sorted(report.custom_ops)  # ['CaseFoldUTF8', 'FastWordpieceTokenizeWithOffsets', 'RegexSplitWithOffsets']
    report.min_model_server_version  # '2.19.0'
    print(report)
    ```
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(saved_model_dir), SAVED_MODEL_PROTO), "rb") as proto_file:
        saved_model.ParseFromString(proto_file.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    custom = sorted(op for op in ops if not op.startswith("_") and not hasattr(tf.raw_ops, op))
    text_loaded = "tensorflow_text" in sys.modules
    custom_ops = {
        op: "tensorflow_text" if text_loaded and is_registered_op(op) else "unknown"
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


def write_models_config(base_dir: str | os.PathLike = "saved_models", serving_root: str = "/models") -> str:
    """Write `<base_dir>/models.config`, a TF Serving model_config_list of the exported models.

    Every subdirectory holding an integer version with a `saved_model.pb` is
    listed with `base_path` `<serving_root>/<name>`: mount `base_dir` at
    `serving_root` and start the server with `--model_config_file`.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16)
    tftune.export_saved_model(model, "saved_models", name="reviews", warmup=False, verify=False)
    tftune.write_models_config("saved_models")  # 'saved_models/models.config'
    # docker run -p 8501:8501 -v "$PWD/saved_models:/models" tensorflow/serving \\
    #   --model_config_file=/models/models.config
    ```
    """
    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        raise ValueError(f"base_dir={base_dir!r} is not a directory; export a model into it first.")
    names = sorted(
        entry
        for entry in os.listdir(base_dir)
        if os.path.isdir(os.path.join(base_dir, entry)) and versions(os.path.join(base_dir, entry))
    )
    if not names:
        raise ValueError(f"No exported models under {base_dir!r} (expected <name>/<version>/{SAVED_MODEL_PROTO}).")
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{serving_root.rstrip("/")}/{name}"\n'
        f'    model_platform: "tensorflow"\n  }}\n'
        for name in names
    )
    path = os.path.join(base_dir, MODELS_CONFIG)
    with open(path, "w") as config_file:
        config_file.write(f"model_config_list {{\n{entries}}}\n")
    return path


def warmup_examples_error(modality: Modality, examples: Sequence | None) -> str | None:
    """The problem with `warmup_examples` for a model of `modality`, or None."""
    if examples is None:
        return None
    examples = list(examples)
    if examples and all(isinstance(example, _EXAMPLE_TYPES[modality]) for example in examples):
        return None
    return (
        f"warmup_examples for a {modality} model must be None or a non-empty list of "
        f"{modality.raw_noun}; got {examples!r:.200}."
    )


def resolved_warmup_examples(model, examples: Sequence | None) -> list:
    """`examples` as a list, or the defaults: two short sentences, or a generated JPEG and PNG."""
    if examples is not None:
        return list(examples)
    return _DEFAULT_WARMUP_EXAMPLES[model.modality](model)


def _default_warmup_texts(model) -> list[str]:
    """Two short sentences."""
    return list(_DEFAULT_WARMUP_TEXTS)


def _default_warmup_images(model) -> list[bytes]:
    """A gradient image of the model's size, as JPEG and as PNG."""
    gradient = np.linspace(0, 255, model.image_size[0] * model.image_size[1] * 3)
    image = tf.constant(gradient.reshape(*model.image_size, 3).astype("uint8"))
    return [tf.io.encode_jpeg(image).numpy(), tf.io.encode_png(image).numpy()]


def write_warmup_requests(export_dir: str, name: str, model, examples: list) -> None:
    """Write `assets.extra/tf_serving_warmup_requests`: a 1-example and a full batch request per signature."""
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        raise ValueError(
            "Warm-up requests need the TF Serving protos: pip install 'tftune[serving]' "
            "(tensorflow-serving-api), or export with warmup=False."
        ) from None

    raw = {model.modality.raw_input: np.array(examples, dtype=object)}
    tensors = _WARMUP_TENSORS[model.modality](model, examples)
    requests = [(SERVING_DEFAULT, raw), (model.modality.tensor_signature, tensors)]
    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            for batch in ({key: value[:1] for key, value in inputs.items()}, inputs):
                request = predict_pb2.PredictRequest(
                    model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
                )
                for key, value in batch.items():
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())


def _text_tensors(model, examples: list[str]) -> dict[str, np.ndarray]:
    """The tokens `serve_tokens` takes for `examples`."""
    return {key: np.asarray(value) for key, value in model.preprocessor(examples).items()}


def _image_tensors(model, examples: list[bytes]) -> dict[str, np.ndarray]:
    """The decoded, resized images `serve_images` takes for `examples`."""
    images = [decode_image(example, model.image_size, model.resizing).numpy() for example in examples]
    return {IMAGE_INPUT: np.stack(images)}


# Per modality: the Python type of a raw example, the default warm-up examples, the tensor signature's inputs.
_EXAMPLE_TYPES = {TEXT: str, IMAGE: bytes}
_DEFAULT_WARMUP_EXAMPLES = {TEXT: _default_warmup_texts, IMAGE: _default_warmup_images}
_WARMUP_TENSORS = {TEXT: _text_tensors, IMAGE: _image_tensors}


def write_metadata(export_dir: str, metadata: dict) -> None:
    """Write `assets.extra/tftune_export.json`: what the export is (kind, labels, signatures, ops), for clients."""
    path = os.path.join(export_dir, METADATA_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    metadata = {**metadata, "tensorflow_version": tf.__version__, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with open(path, "w") as metadata_file:
        json.dump(metadata, metadata_file, indent=2)


def read_metadata(saved_model_dir: str) -> dict:
    """The export metadata of a tftune SavedModel directory."""
    path = os.path.join(saved_model_dir, METADATA_FILE)
    try:
        with open(path) as metadata_file:
            return json.load(metadata_file)
    except FileNotFoundError:
        raise ValueError(
            f"{saved_model_dir!r} is a SavedModel but not a tftune export: it has no {METADATA_FILE} "
            f"(kind and labels). Export the model with tftune.export_saved_model or `tftune export`."
        ) from None

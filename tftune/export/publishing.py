"""Versioned, atomic publishing of an export: `<base_dir>/<name>/<version>/` appears complete or not at all.

An export is written to a hidden staging directory beside the target,
checked, and renamed into place only when complete (TF Serving ignores names
that are not integers), so a failure, a full disk included, never leaves a
half-written version.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from tftune._validation import integer_error, model_name_error, raise_errors
from tftune.export._layout import versions
from tftune.export.assets import (
    CustomOpReport,
    custom_op_report,
    resolved_warmup_examples,
    warmup_examples_error,
    write_metadata,
    write_warmup_requests,
)
from tftune.export.model_file import classifier_error, load_keras_model
from tftune.export.signatures import MODALITIES, SERVING_DEFAULT, decode_image, save_serving_model
from tftune.families import IMAGE, TEXT
from tftune.lora import merged_adapters
from tftune.saving import float32_copy

_logger = logging.getLogger(__name__)

# Every export computes in float32 (a mixed-precision model goes through `float32_copy`).
_RELOAD_TOLERANCE = 1e-5
# Model names end up in paths, models.config (a text proto) and shell commands.
# Write failures that mean "no room": a full disk, a quota, a file size limit.
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """A published export: where it is, its signatures and what serving it needs.

    `tftune.export_saved_model` and `tftune.export_from_file` return one
    (see their examples).
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
        modality = MODALITIES[self.kind]
        argument, value = _SERVING_EXAMPLES[modality]
        predict = f"tftune predict {self.path} {argument}"
        body = f'{{"instances": [{{"{modality.raw_input}": {value}}}]}}'
        return "\n".join(
            (
                predict,
                f'docker run --rm -p 8501:8501 -v "{model_dir}:/models/{self.name}" '
                f"-e MODEL_NAME={self.name} tensorflow/serving:{tag}",
                f"curl -s -X POST http://localhost:8501/v1/models/{self.name}:predict -d '{body}'",
            )
        )


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
    are not integers), so a failure never leaves a half-written version. A
    full disk raises `OSError` naming the directory and the bytes needed.

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
        verify: reload the export in a fresh process where only tensorflow
            (+ tensorflow_text's ops) is loaded, Keras, keras-hub and tftune
            cannot be imported, and check its probabilities and labels on
            `warmup_examples` against the Keras model's before publishing.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    result = tftune.export_saved_model(model, "saved_models", name="reviews", verify=False)
    result.path, result.version  # ('saved_models/reviews/1', 1)
    print(result.serving_instructions())
    ```
    """
    started = time.perf_counter()
    name, target_errors = export_target(model, name)
    raise_errors(
        *target_errors,
        None if version is None else integer_error("version", version, minimum=1),
        None if top_k is None else integer_error("top_k", top_k, minimum=1, maximum=model.num_classes),
        warmup_examples_error(model.modality, warmup_examples),
    )
    labels = [str(label) for label in model.labels]
    model = float32_copy(merged_adapters(model))  # LoRA merged; a mixed-precision model computes in float32
    examples = resolved_warmup_examples(model, warmup_examples)
    model_dir = os.path.join(writable_dir(base_dir), name)
    with staged_version(model_dir, version, overwrite, model) as (staging, version, target):
        signatures = save_serving_model(model, labels, top_k, staging)
        report = custom_op_report(staging)
        _logger.info("%s", report)
        if warmup:
            write_warmup_requests(staging, name, model, examples)
        if verify:
            _verify_reload(staging, model, examples)
        result = ExportResult(
            path=target,
            name=name,
            version=version,
            kind=model.kind,
            signatures=signatures,
            custom_ops=report,
            export_seconds=round(time.perf_counter() - started, 2),
        )
        write_metadata(
            staging,
            {
                "name": name,
                "version": version,
                "kind": model.kind,
                "labels": labels,
                "image_size": list(model.image_size) if hasattr(model, "image_size") else None,
                "signatures": signatures,
                "custom_ops": report.to_json(),
            },
        )
    _logger.info("Exported %s version %d to %s in %.1f s", name, version, target, result.export_seconds)
    return result


def export_from_file(
    model_path: str | os.PathLike,
    base_dir: str | os.PathLike = "saved_models",
    name: str | None = None,
    version: int | None = None,
    **options,
) -> ExportResult:
    """Export a saved `.keras` model, or the newest `.keras` checkpoint in a directory, for TF Serving, LiteRT or ONNX.

    What `tftune export MODEL_PATH` runs: `load_keras_model(model_path)`, then
    `export_model` with the other arguments and `**options` (`format`,
    `quantize`, `validation_data`, `force`, ..., and for SavedModels
    `overwrite`, `top_k`, `warmup`, `warmup_examples`, `verify`).

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    model.save("reviews.keras")
    tftune.export_from_file("reviews.keras", "saved_models", name="reviews", verify=False).version  # 1
    ```
    """
    from tftune.export.formats import export_model  # formats builds on this module

    return export_model(load_keras_model(model_path), base_dir, name, version, **options)


def labels_error(model) -> str | None:
    labels = [str(label) for label in (model.labels or [])]
    if not labels:
        return (
            "The model's label list is empty; the `label` output needs one name per class. "
            "Set labels when building (labels=[...])."
        )
    if len(labels) != model.num_classes:
        return (
            f"The model has {model.num_classes} classes but {len(labels)} labels ({labels}); "
            f"give one name per class."
        )
    bad = [label for label in labels if "\n" in label or "\r" in label]
    if bad:
        return f"Labels {bad} contain line breaks; the label asset holds one label per line: rename those classes."
    return None


def export_target(model, name: str | None) -> tuple[str, list[str | None]]:
    """The served name (default: the model's) and the problems with the model and the name, for `raise_errors`.

    Every export format checks these; a model that is no tftune classifier is refused at once.
    """
    problem = classifier_error(model)
    if problem:
        raise ValueError(f"Cannot export: {problem}")
    name = model.name if name is None else name
    return name, [labels_error(model), model_name_error("name", name)]


def writable_dir(base_dir) -> str:
    base_dir = os.fspath(base_dir)
    try:
        os.makedirs(base_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"base_dir={base_dir!r} cannot be created ({error}); pass a writable directory.") from None
    if not os.access(base_dir, os.W_OK | os.X_OK):
        raise ValueError(f"base_dir={base_dir!r} is not writable; pass a writable directory.")
    return base_dir


def _resolve_version(model_dir: str, version, overwrite: bool) -> int:
    if version is None:
        existing = [int(entry) for entry in os.listdir(model_dir) if entry.isdigit()]
        return max(existing, default=0) + 1
    if os.path.exists(os.path.join(model_dir, str(version))) and not overwrite:
        raise ValueError(
            f"Version {version} of {model_dir!r} already exists; pass version=None for the next "
            f"version ({max(versions(model_dir) or [version]) + 1}) or overwrite=True to replace it."
        )
    return version


def _no_space_reason(error: BaseException) -> str | None:
    """The "no room" reason (e.g. 'No space left on device') of a failed write, or None for other failures."""
    if isinstance(error, OSError):
        return os.strerror(error.errno) if error.errno in _NO_SPACE_ERRNOS else None
    if isinstance(error, tf.errors.OpError):
        # TensorFlow's file writers raise OpErrors whose message ends with strerror.
        return next((os.strerror(code) for code in _NO_SPACE_ERRNOS if os.strerror(code) in error.message), None)
    return None


def _no_space_message(model_dir: str, model, reason: str) -> str:
    needed = sum(int(np.prod(weight.shape)) * tf.as_dtype(weight.dtype).size for weight in model.weights)
    room = shutil.disk_usage(model_dir).free
    file_limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    limit = "" if file_limit == resource.RLIM_INFINITY else f", file size limit (ulimit -f) {file_limit} bytes"
    return (
        f"Export to {model_dir!r} failed: {reason}. It needs at least {needed} bytes (the model's weights); "
        f"{room} bytes are free there{limit}. Nothing was published: free some space or pass another base_dir."
    )


# Python packages a model server has no use for: the reload check runs where they cannot be imported.
_NOT_AT_SERVING_TIME = ("tftune", "keras_hub", "keras", "tf_keras")
# Runs in a fresh interpreter where the packages above cannot be imported: only
# tensorflow, and for text models tensorflow_text's op libraries (its Python
# package imports Keras for its Keras layers; a model server links only the ops).
_RELOAD_CHECK = """
import base64, glob, importlib.util, json, os, sys
request = json.loads(sys.stdin.read())
for blocked in request["blocked"]:
    sys.modules[blocked] = None
import tensorflow as tf
if request["tf_text_ops"]:
    ops = os.path.join(importlib.util.find_spec("tensorflow_text").submodule_search_locations[0], "python", "ops")
    for library in sorted(glob.glob(os.path.join(ops, "_*.so"))):
        tf.load_op_library(library)
examples = [base64.b64decode(item) for item in request["examples"]]
signature = tf.saved_model.load(request["path"]).signatures[request["signature"]]
outputs = signature(**{request["input"]: tf.constant(examples)})
print(json.dumps({
    "probabilities": outputs["probabilities"].numpy().tolist(),
    "label": [label.decode() for label in outputs["label"].numpy().tolist()],
}))
"""


def _verify_reload(export_dir: str, model, examples: list) -> None:
    check = _RELOAD_CHECKS[model.modality]
    request = {
        "tf_text_ops": check.tf_text_ops,
        "path": os.path.abspath(export_dir),
        "signature": SERVING_DEFAULT,
        "input": model.modality.raw_input,
        "examples": [base64.b64encode(check.to_bytes(example)).decode() for example in examples],
        "blocked": _NOT_AT_SERVING_TIME,
    }
    process = subprocess.run(
        [sys.executable, "-c", _RELOAD_CHECK],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if process.returncode != 0:
        raise RuntimeError(
            f"The exported SavedModel does not load and run in a process with only tensorflow "
            f"(+ tensorflow_text's ops), where {', '.join(_NOT_AT_SERVING_TIME)} cannot be imported; "
            f"nothing was published.\n{process.stderr[-3000:]}"
        )
    served = json.loads(process.stdout.strip().splitlines()[-1])
    # Direct calls, not predict_on_batch: under a MirroredStrategy predict_on_batch
    # runs the batch on every replica (rows repeated); a call, like the SavedModel,
    # uses the primary replica's variables.
    expected = np.asarray(check.keras_probabilities(model, examples), dtype="float32")
    difference = float(np.max(np.abs(np.asarray(served["probabilities"], dtype="float32") - expected)))
    expected_labels = [str(model.labels[index]) for index in np.argmax(expected, axis=-1)]
    if difference > _RELOAD_TOLERANCE or served["label"] != expected_labels:
        raise RuntimeError(
            f"The reloaded SavedModel disagrees with the Keras model: max |probability difference| "
            f"{difference:.3g} (tolerance {_RELOAD_TOLERANCE}), served labels {served['label']}, Keras labels "
            f"{expected_labels}; nothing was published."
        )


@dataclasses.dataclass(frozen=True)
class _ReloadCheck:
    """What the reload check does for one modality."""

    # Whether the fresh interpreter loads TF Text's op libraries (the tokenizer ops).
    tf_text_ops: bool
    # A raw example as the bytes sent to the fresh interpreter.
    to_bytes: Callable
    # The Keras model's probabilities on raw examples.
    keras_probabilities: Callable


def _text_probabilities(model, examples: list[str]):
    """The Keras model's probabilities on texts, tokenized by its preprocessor."""
    return model(model.preprocessor(examples), training=False)


def _image_probabilities(model, examples: list[bytes]):
    """The Keras model's probabilities on encoded images, each decoded and resized as training resizes."""
    decoded = [decode_image(example, model.image_size, model.resizing) for example in examples]
    return np.concatenate([model(image[None], training=False) for image in decoded])


# Per modality: what the reload check does.
_RELOAD_CHECKS = {
    TEXT: _ReloadCheck(tf_text_ops=True, to_bytes=str.encode, keras_probabilities=_text_probabilities),
    IMAGE: _ReloadCheck(tf_text_ops=False, to_bytes=bytes, keras_probabilities=_image_probabilities),
}
# Per modality: the `tftune predict` argument and the JSON value of its raw input in the serving instructions.
_SERVING_EXAMPLES = {
    TEXT: ("'a fine film'", '"a fine film"'),
    IMAGE: ("image.jpg", '{"b64": "\'"$(base64 -w0 image.jpg)"\'"}'),
}


@contextlib.contextmanager
def staged_version(model_dir: str, version: int | None, overwrite: bool, model) -> Iterator[tuple[str, int, str]]:
    """A staging folder for the next (or given) version in `model_dir`: published atomically when the block ends.

    Yields (staging folder, version, published path). If the block raises,
    the staging folder is removed and nothing is published; a full disk
    becomes one `OSError` naming the directory and the bytes needed.
    """
    os.makedirs(model_dir, exist_ok=True)
    version = _resolve_version(model_dir, version, overwrite)
    target = os.path.join(model_dir, str(version))
    # Not mkdtemp: its 0700 mode would survive the rename and lock out a model
    # server running as another user.
    staging = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(staging)
        yield staging, version, target
        _publish(staging, target, overwrite)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = _no_space_reason(error)
        if reason is None:
            raise
        raise OSError(_no_space_message(model_dir, model, reason)) from None


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

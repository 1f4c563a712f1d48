"""Fixtures and helpers shared by the tests/export_*_test.py files (loaded with `pytest_plugins`).

The exports are session-scoped: the four models are exported once for all
the export test files, and served once in a fresh TensorFlow-only process.
The test files import the helpers before pytest sees `pytest_plugins`, so
this module checks with explicit raises: PYTEST_DONT_REWRITE.
"""

import base64
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import export

TEXT_LABELS = ["rotten", "fresh"]
IMAGE_LABELS = ["cat", "dog", "fox"]

# Python packages a model server does without: blocked in the serving process.
NOT_AT_SERVING_TIME = ("keras", "keras_hub", "tf_keras", "tftune")
# A fresh interpreter that can import tensorflow but not Keras, tf_keras, keras-hub
# or tftune (blocked), as in a model server. It first records which ops of each
# SavedModel core TensorFlow alone leaves unregistered, then loads
# tensorflow_text's op libraries (its Python package imports Keras; a model
# server links only the ops), loads the exports and runs the requested
# signatures, and finally reports which of the blocked packages it could import.
_SERVE_SCRIPT = r"""
import base64, glob, importlib, importlib.util, json, os, sys
blocked = json.loads(sys.argv[1])
for name in blocked:
    sys.modules[name] = None
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

jobs = json.loads(sys.stdin.read())

def graph_ops(path):
    saved_model = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as proto_file:
        saved_model.ParseFromString(proto_file.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops

paths = sorted({job["path"] for job in jobs})
unregistered = {path: sorted(op for op in graph_ops(path) if op_def_registry.get(op) is None) for path in paths}
text_ops = os.path.join(importlib.util.find_spec("tensorflow_text").submodule_search_locations[0], "python", "ops")
for library in sorted(glob.glob(os.path.join(text_ops, "_*.so"))):
    tf.load_op_library(library)
loaded = {path: tf.saved_model.load(path) for path in paths}
results = []
for job in jobs:
    inputs = {}
    for key, (encoding, value) in job["inputs"].items():
        if encoding == "b64":
            inputs[key] = tf.constant([base64.b64decode(item) for item in value])
        elif encoding == "string":
            inputs[key] = tf.constant(value)
        else:
            inputs[key] = tf.constant(np.asarray(value, dtype=encoding))
    outputs = loaded[job["path"]].signatures[job["signature"]](**inputs)
    results.append({
        key: {
            "dtype": tensor.dtype.name,
            "value": (np.char.decode(tensor.numpy().astype(bytes), "utf-8") if tensor.dtype == tf.string
                      else tensor.numpy()).tolist(),
        }
        for key, tensor in outputs.items()
    })

def importable(name):
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True

print(json.dumps({
    "unregistered": unregistered,
    "results": results,
    "importable": {name: importable(name) for name in ("keras", "keras_hub", "tf_keras", "tftune", "tensorflow")},
}))
"""


def image_bytes():
    """A JPEG and a PNG of a 80x100 image (not the model's 64x64: the graph must resize)."""
    rows, columns = np.meshgrid(np.linspace(0, 255, 100), np.linspace(0, 255, 80))
    noise = np.random.RandomState(1).uniform(0, 60, size=(80, 100, 3))
    image = tf.constant(np.clip(np.stack([rows, columns, 255 - rows], -1) * 0.7 + noise, 0, 255).astype("uint8"))
    return [tf.io.encode_jpeg(image, quality=90).numpy(), tf.io.encode_png(image).numpy()]


def decoded(encoded):
    return tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy().astype("float32")


def keras_image_probabilities(model, encoded):
    # The pixels training sees: resized like the model's Resizing layer, rounded to whole 0..255 values (the training
    # pipelines cache uint8). A direct call, not predict_on_batch: on a model built under a 2-replica
    # MirroredStrategy, predict_on_batch runs the batch on both replicas (2x
    # the rows), and after fit the replicas' BatchNorm moving statistics differ
    # (measured with Keras 3.15). A direct call and the SavedModel both use the
    # primary replica's variables.
    images = [tftune.families.resize_image(decoded(item), model.image_size, model.resizing) for item in encoded]
    return model(np.stack(images), training=False).numpy()


def keras_text_probabilities(model, texts):
    return np.asarray(model(model.preprocessor(texts), training=False))


def image_model_from(preset, **kwargs):
    return tftune.build_image_classifier(preset, 3, image_size=(64, 64), labels=IMAGE_LABELS, **kwargs)


def _fit_briefly(model, inputs, targets):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(inputs, targets, batch_size=4, epochs=1, verbose=0)


@pytest.fixture(scope="session")
def texts(rotten_tomatoes):
    return rotten_tomatoes.texts[:4] + ["", "an utterly, completely, thoroughly forgettable film " * 6]


@pytest.fixture(scope="session")
def text_model(tiny_bert_preset):
    """A 1-layer BERT with MiniLM's vocabulary and tokenizer: an export exercises the same ops as MiniLM's."""
    return tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=16, labels=TEXT_LABELS)


@pytest.fixture(scope="session")
def image_model(small_resnet_preset):
    return image_model_from(small_resnet_preset)


@pytest.fixture(scope="session")
def mirrored_model(small_resnet_preset):
    """A small ResNet trained for two steps under a 2-replica MirroredStrategy."""
    strategy = tftune.get_strategy("mirrored", devices=("/cpu:0", "/cpu:1"))
    if strategy.num_replicas_in_sync != 2:
        raise RuntimeError(f"expected 2 CPU replicas (tests/conftest.py); got {strategy.num_replicas_in_sync}")
    with strategy.scope():
        model = image_model_from(small_resnet_preset)
        images = np.random.RandomState(2).uniform(0, 255, size=(8, 64, 64, 3)).astype("float32")
        _fit_briefly(model, images, np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    return model


@pytest.fixture(scope="session")
def mixed_precision_model(small_resnet_preset):
    """A small ResNet built and trained two steps under mixed_float16."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = image_model_from(small_resnet_preset)
        if model.dtype_policy.compute_dtype != "float16":
            raise RuntimeError(f"mixed_float16 did not apply: {model.dtype_policy}")
        images = np.random.RandomState(3).uniform(0, 255, size=(8, 64, 64, 3)).astype("float32")
        _fit_briefly(model, images, np.array([2, 1, 0, 2, 1, 0, 2, 1]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


@pytest.fixture(scope="session")
def exports(tmp_path_factory, text_model, image_model, mirrored_model, mixed_precision_model, texts):
    base_dir = str(tmp_path_factory.mktemp("saved_models"))
    return {
        "base_dir": base_dir,
        # The text and mirrored exports also run export's own reload check (verify=True).
        "text": export.export_saved_model(
            text_model, base_dir, name="reviews", top_k=2, warmup_examples=texts[:3], verify=True
        ),
        "image": export.export_saved_model(
            image_model, base_dir, name="pets", warmup_examples=image_bytes(), verify=False
        ),
        "mirrored": export.export_saved_model(mirrored_model, base_dir, name="pets_mirrored", verify=True),
        "mixed": export.export_saved_model(mixed_precision_model, base_dir, name="pets_mixed", verify=False),
    }


@pytest.fixture(scope="session")
def served(exports, text_model, texts):
    """Outputs of the exports, computed in one fresh TensorFlow-only process."""
    tokens = {key: value.numpy().tolist() for key, value in text_model.preprocessor(texts).items()}
    encoded = [base64.b64encode(item).decode() for item in image_bytes()]
    images = np.stack([decoded(item) for item in image_bytes()]).tolist()
    jobs = {
        "text": (exports["text"], "serving_default", {"text": ("string", texts)}),
        "tokens": (exports["text"], "serve_tokens", {key: ("int32", value) for key, value in tokens.items()}),
        "image_bytes": (exports["image"], "serving_default", {"image_bytes": ("b64", encoded)}),
        "images": (exports["image"], "serve_images", {"images": ("float32", images)}),
        "mirrored": (exports["mirrored"], "serving_default", {"image_bytes": ("b64", encoded)}),
        "mixed": (exports["mixed"], "serving_default", {"image_bytes": ("b64", encoded)}),
    }
    answer = serve_in_tensorflow_only(jobs.values())
    served = dict(zip(jobs, answer["results"], strict=True))
    return {key: answer[key] for key in ("unregistered", "importable")} | served


def serve_in_tensorflow_only(jobs) -> dict:
    """Run (export, signature, inputs) jobs in one fresh TensorFlow-only process: unregistered ops and outputs."""
    request = [{"path": result.path, "signature": signature, "inputs": inputs} for result, signature, inputs in jobs]
    process = subprocess.run(
        [sys.executable, "-c", _SERVE_SCRIPT, json.dumps(NOT_AT_SERVING_TIME)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
    )
    if process.returncode != 0:
        raise RuntimeError(f"serving the exports failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])

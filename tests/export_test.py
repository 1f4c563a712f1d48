"""SavedModel export: reload in a TensorFlow-only process, signatures, versioning, warm-up, errors."""

import base64
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

import tftune
from tftune import export

TEXT_LABELS = ["rotten", "fresh"]
IMAGE_LABELS = ["cat", "dog", "fox"]
MIXED_PRECISION_TOLERANCE = 1e-3
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")

# A fresh interpreter that can import tensorflow and tensorflow_text but not
# tftune or keras-hub (blocked), as in a model server. It first records which
# ops of each SavedModel core TensorFlow alone leaves unregistered, then
# loads the exports and runs the requested signatures.
_SERVE_SCRIPT = r"""
import base64, json, sys
for blocked in ("tftune", "keras_hub"):
    sys.modules[blocked] = None
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
import tensorflow_text
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
print(json.dumps({"unregistered": unregistered, "results": results}))
"""


def _image_bytes():
    """A JPEG and a PNG of a 80x100 image (not the model's 64x64: the graph must resize)."""
    rows, columns = np.meshgrid(np.linspace(0, 255, 100), np.linspace(0, 255, 80))
    noise = np.random.RandomState(1).uniform(0, 60, size=(80, 100, 3))
    image = tf.constant(np.clip(np.stack([rows, columns, 255 - rows], -1) * 0.7 + noise, 0, 255).astype("uint8"))
    return [tf.io.encode_jpeg(image, quality=90).numpy(), tf.io.encode_png(image).numpy()]


def _decoded(image_bytes):
    return tf.io.decode_image(image_bytes, channels=3, expand_animations=False).numpy().astype("float32")


def _keras_image_probabilities(model, encoded):
    # A direct call, not predict_on_batch: on a model built under a 2-replica
    # MirroredStrategy, predict_on_batch runs the batch on both replicas (2x
    # the rows), and after fit the replicas' BatchNorm moving statistics differ
    # (measured with Keras 3.15). A direct call and the SavedModel both use the
    # primary replica's variables.
    return model(np.stack([_decoded(item) for item in encoded]), training=False).numpy()


def _image_model(preset, **kwargs):
    return tftune.build_image_classifier(preset, 3, image_size=(64, 64), labels=IMAGE_LABELS, **kwargs)


def _fit_briefly(model, inputs, targets):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(inputs, targets, batch_size=4, epochs=1, verbose=0)


@pytest.fixture(scope="module")
def texts(rotten_tomatoes):
    return rotten_tomatoes.texts[:4] + ["", "an utterly, completely, thoroughly forgettable film " * 6]


@pytest.fixture(scope="module")
def text_model(bert_dir):
    return tftune.build_text_classifier(bert_dir, 2, sequence_length=16, labels=TEXT_LABELS)


@pytest.fixture(scope="module")
def image_model(small_resnet_preset):
    return _image_model(small_resnet_preset)


@pytest.fixture(scope="module")
def mirrored_model(small_resnet_preset):
    """A small ResNet trained for two steps under a 2-replica MirroredStrategy."""
    strategy = tftune.get_strategy("mirrored", devices=("/cpu:0", "/cpu:1"))
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = _image_model(small_resnet_preset)
        images = np.random.RandomState(2).uniform(0, 255, size=(8, 64, 64, 3)).astype("float32")
        _fit_briefly(model, images, np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    return model


@pytest.fixture(scope="module")
def mixed_precision_model(small_resnet_preset):
    """A small ResNet built and trained two steps under mixed_float16."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _image_model(small_resnet_preset)
        assert model.dtype_policy.compute_dtype == "float16"
        images = np.random.RandomState(3).uniform(0, 255, size=(8, 64, 64, 3)).astype("float32")
        _fit_briefly(model, images, np.array([2, 1, 0, 2, 1, 0, 2, 1]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory, text_model, image_model, mirrored_model, mixed_precision_model, texts):
    base_dir = str(tmp_path_factory.mktemp("saved_models"))
    return {
        "base_dir": base_dir,
        # The text and mirrored exports also run export's own reload check (verify=True).
        "text": export.export_saved_model(
            text_model, base_dir, name="reviews", top_k=2, warmup_examples=texts[:3], verify=True
        ),
        "image": export.export_saved_model(
            image_model, base_dir, name="pets", warmup_examples=_image_bytes(), verify=False
        ),
        "mirrored": export.export_saved_model(mirrored_model, base_dir, name="pets_mirrored", verify=True),
        "mixed": export.export_saved_model(mixed_precision_model, base_dir, name="pets_mixed", verify=False),
    }


@pytest.fixture(scope="module")
def served(exports, text_model, texts):
    """Outputs of the exports, computed in one fresh TensorFlow-only process."""
    tokens = {key: value.numpy().tolist() for key, value in text_model.preprocessor(texts).items()}
    encoded = [base64.b64encode(item).decode() for item in _image_bytes()]
    decoded = np.stack([_decoded(item) for item in _image_bytes()]).tolist()
    jobs = {
        "text": (exports["text"], "serving_default", {"text": ("string", texts)}),
        "tokens": (exports["text"], "serve_tokens", {key: ("int32", value) for key, value in tokens.items()}),
        "image_bytes": (exports["image"], "serving_default", {"image_bytes": ("b64", encoded)}),
        "images": (exports["image"], "serve_images", {"images": ("float32", decoded)}),
        "mirrored": (exports["mirrored"], "serving_default", {"image_bytes": ("b64", encoded)}),
        "mixed": (exports["mixed"], "serving_default", {"image_bytes": ("b64", encoded)}),
    }
    request = [
        {"path": result.path, "signature": signature, "inputs": inputs} for result, signature, inputs in jobs.values()
    ]
    process = subprocess.run(
        [sys.executable, "-c", _SERVE_SCRIPT], input=json.dumps(request), capture_output=True, text=True
    )
    assert process.returncode == 0, process.stderr[-3000:]
    answer = json.loads(process.stdout.strip().splitlines()[-1])
    return {"unregistered": answer["unregistered"], **dict(zip(jobs, answer["results"]))}


def _assert_matches(outputs, expected, labels, tolerance=1e-5):
    assert outputs["probabilities"]["dtype"] == "float32"
    assert outputs["class_id"]["dtype"] == "int64"
    assert outputs["label"]["dtype"] == "string"
    probabilities = np.array(outputs["probabilities"]["value"])
    assert probabilities.shape == expected.shape
    assert np.max(np.abs(probabilities - expected)) <= tolerance
    np.testing.assert_array_equal(outputs["class_id"]["value"], np.argmax(probabilities, axis=-1))
    assert outputs["label"]["value"] == [labels[index] for index in outputs["class_id"]["value"]]


def test_text_signatures_match_keras_in_a_tensorflow_only_process(served, text_model, texts):
    expected = np.asarray(text_model.predict_on_batch(text_model.preprocessor(texts)))
    _assert_matches(served["text"], expected, TEXT_LABELS)
    _assert_matches(served["tokens"], expected, TEXT_LABELS)
    # top_k=2 of 2 classes: the classes sorted by probability.
    np.testing.assert_allclose(served["text"]["top_k_probabilities"]["value"], -np.sort(-expected, axis=-1), atol=1e-5)
    assert served["text"]["top_k_class_ids"]["dtype"] == "int64"
    assert [row[0] for row in served["text"]["top_k_labels"]["value"]] == served["text"]["label"]["value"]


def test_image_signatures_decode_jpeg_and_png_like_keras(served, image_model):
    encoded = _image_bytes()
    _assert_matches(served["image_bytes"], _keras_image_probabilities(image_model, encoded), IMAGE_LABELS)
    _assert_matches(served["images"], _keras_image_probabilities(image_model, encoded), IMAGE_LABELS)
    assert "top_k_labels" not in served["image_bytes"]


def test_model_trained_under_mirrored_strategy_serves_like_keras(served, mirrored_model, image_model):
    expected = _keras_image_probabilities(mirrored_model, _image_bytes())
    _assert_matches(served["mirrored"], expected, IMAGE_LABELS)
    # Training changed the weights, so the parity is not the untrained model's.
    assert np.max(np.abs(expected - _keras_image_probabilities(image_model, _image_bytes()))) > 1e-4


def test_mixed_precision_model_exports_float32_outputs(served, mixed_precision_model, exports):
    expected = _keras_image_probabilities(mixed_precision_model, _image_bytes())
    _assert_matches(served["mixed"], expected, IMAGE_LABELS, tolerance=MIXED_PRECISION_TOLERANCE)
    outputs = exports["mixed"].signatures["serving_default"]["outputs"]
    assert outputs["probabilities"] == {"dtype": "float32", "shape": [None, 3]}


def test_custom_op_report_names_the_tf_text_ops_core_tensorflow_lacks(served, exports):
    text, image = exports["text"], exports["image"]
    # Measured in the fresh process, before tensorflow_text was imported.
    assert served["unregistered"][text.path] == sorted(text.custom_ops.custom_ops)
    assert "RegexSplitWithOffsets" in text.custom_ops.custom_ops
    assert set(text.custom_ops.custom_ops.values()) == {"tensorflow_text"}
    assert "RoundRobinTrim" not in text.custom_ops.custom_ops
    assert text.custom_ops.min_model_server_version == "2.19.0"
    assert served["unregistered"][image.path] == []
    assert image.custom_ops.custom_ops == {} and image.custom_ops.min_model_server_version is None
    with open(os.path.join(text.path, export.METADATA_FILE)) as metadata_file:
        metadata = json.load(metadata_file)
    assert metadata["custom_ops"] == text.custom_ops.to_json()
    assert metadata["labels"] == TEXT_LABELS and metadata["version"] == 1
    with open(os.path.join(text.path, "assets", export.LABELS_ASSET)) as labels_file:
        assert labels_file.read().splitlines() == TEXT_LABELS


def _saved_model_cli_signatures(path):
    shown = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True
    ).stdout
    signatures = {}
    for block in re.split(r"\n(?=signature_def\[)", shown):
        name = re.match(r"signature_def\['(\w+)'\]", block)
        if name is None or name.group(1) == "__saved_model_init_op":
            continue
        inputs, outputs = block.split("The given SavedModel SignatureDef contains the following output(s):")
        pattern = r"(?:inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([-\d, ]*\))"
        signatures[name.group(1)] = (dict(
            (key, (dtype, shape)) for key, dtype, shape in re.findall(pattern, inputs)
        ), dict((key, (dtype, shape)) for key, dtype, shape in re.findall(pattern, outputs)))
    return signatures


def test_saved_model_cli_lists_the_documented_signatures(exports):
    text = _saved_model_cli_signatures(exports["text"].path)
    outputs = {
        "probabilities": ("DT_FLOAT", "(-1, 2)"),
        "class_id": ("DT_INT64", "(-1)"),
        "label": ("DT_STRING", "(-1)"),
        "top_k_probabilities": ("DT_FLOAT", "(-1, 2)"),
        "top_k_class_ids": ("DT_INT64", "(-1, 2)"),
        "top_k_labels": ("DT_STRING", "(-1, 2)"),
    }
    assert text == {
        "serving_default": ({"text": ("DT_STRING", "(-1)")}, outputs),
        "serve_tokens": ({key: ("DT_INT32", "(-1, -1)") for key in tftune.builders.TEXT_INPUTS}, outputs),
    }
    image = _saved_model_cli_signatures(exports["image"].path)
    outputs = {key: outputs[key] for key in ("class_id", "label")} | {"probabilities": ("DT_FLOAT", "(-1, 3)")}
    assert image == {
        "serving_default": ({"image_bytes": ("DT_STRING", "(-1)")}, outputs),
        "serve_images": ({"images": ("DT_FLOAT", "(-1, -1, -1, 3)")}, outputs),
    }


@pytest.mark.parametrize("kind", ["text", "image"])
def test_warmup_requests_are_prediction_logs_the_signatures_accept(exports, kind):
    result = exports[kind]
    loaded = tf.saved_model.load(result.path)
    records = list(tf.data.TFRecordDataset(os.path.join(result.path, export.WARMUP_FILE)).as_numpy_iterator())
    assert len(records) == 4
    batch_sizes = []
    for record in records:
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        assert request.model_spec.name == result.name
        signature = result.signatures[request.model_spec.signature_name]
        assert set(request.inputs) == set(signature["inputs"])
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        for key, value in inputs.items():
            assert tf.as_dtype(request.inputs[key].dtype).name == signature["inputs"][key]["dtype"]
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        batch_sizes.append(outputs["probabilities"].shape[0])
    assert batch_sizes == [1, 3, 1, 3] if kind == "text" else [1, 2, 1, 2]


def test_versions_count_up_and_a_crash_leaves_nothing_behind(image_model, tmp_path, monkeypatch):
    base_dir = str(tmp_path / "saved_models")

    def export_pets(**kwargs):
        return export.export_saved_model(image_model, base_dir, name="pets", verify=False, **kwargs)

    assert [export_pets(warmup=False).version for _ in range(2)] == [1, 2]

    def crash(export_dir, *args):
        assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))  # part of the export is written
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(export, "_write_warmup_requests", crash)
        with pytest.raises(OSError, match="disk full"):
            export_pets()
    assert sorted(os.listdir(os.path.join(base_dir, "pets"))) == ["1", "2"]
    assert export_pets().version == 3
    with pytest.raises(ValueError, match="Version 2 .* already exists"):
        export_pets(version=2)
    replaced = export_pets(version=2, overwrite=True, top_k=3)
    assert "top_k_labels" in replaced.signatures["serving_default"]["outputs"]
    with open(os.path.join(base_dir, "pets", "2", export.METADATA_FILE)) as metadata_file:
        assert "top_k_labels" in json.load(metadata_file)["signatures"]["serving_default"]["outputs"]
    assert sorted(os.listdir(os.path.join(base_dir, "pets"))) == ["1", "2", "3"]


def test_bad_arguments_raise_before_anything_is_written(image_model, tmp_path):
    base_dir = tmp_path / "saved_models"
    cases = [
        (dict(model=keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])), "Cannot export a Sequential"),
        (dict(name="a/b"), "not a valid model name"),
        (dict(name=".."), "not a valid model name"),
        (dict(name="../escape"), "not a valid model name"),
        (dict(name='say "hi"'), "not a valid model name"),
        (dict(version="2"), "positive integer; got '2'"),
        (dict(version=1.5), "positive integer; got 1.5"),
        (dict(version=0), "positive integer; got 0"),
        (dict(top_k=4), r"top_k must be None or an integer in \[1, 3\]"),
        (dict(warmup_examples=["not bytes"]), "JPEG / PNG bytes"),
    ]
    for overrides, message in cases:
        arguments = dict(model=image_model, base_dir=str(base_dir), name="pets") | overrides
        with pytest.raises(ValueError, match=message):
            export.export_saved_model(**arguments)
    assert not base_dir.exists()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot be created"):
        export.export_saved_model(image_model, str(blocker / "saved_models"), name="pets")
    labels = image_model.labels
    image_model.labels = []
    try:
        with pytest.raises(ValueError, match="label list is empty"):
            export.export_saved_model(image_model, str(base_dir), name="pets")
    finally:
        image_model.labels = labels
    assert not base_dir.exists()


def test_write_models_config_lists_every_exported_model(exports):
    path = export.write_models_config(exports["base_dir"])
    with open(path) as config_file:
        config = text_format.Parse(config_file.read(), model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == ["pets", "pets_mirrored", "pets_mixed", "reviews"]
    assert entries["reviews"].base_path == "/models/reviews"
    assert entries["reviews"].model_platform == "tensorflow"


def test_predict_from_saved_model_prints_label_and_probability(exports, text_model, image_model, tmp_path):
    texts = ["a moving, beautifully acted film", "dull"]
    predictions = export.predict_from_saved_model(os.path.dirname(exports["text"].path), texts)
    expected = np.asarray(text_model.predict_on_batch(text_model.preprocessor(texts)))
    assert [p.label for p in predictions] == [TEXT_LABELS[i] for i in np.argmax(expected, axis=-1)]
    np.testing.assert_allclose([p.probability for p in predictions], np.max(expected, axis=-1), atol=1e-5)
    assert str(predictions[1]).split("\t") == [predictions[1].label, f"{predictions[1].probability:.4f}", "dull"]
    image_path = tmp_path / "pet.jpg"
    image_path.write_bytes(_image_bytes()[0])
    (prediction,) = export.predict_from_saved_model(exports["image"].path, [str(image_path)])
    expected = _keras_image_probabilities(image_model, _image_bytes()[:1])[0]
    assert prediction.label == IMAGE_LABELS[int(np.argmax(expected))]
    assert abs(prediction.probability - float(np.max(expected))) <= 1e-5
    with pytest.raises(ValueError, match="Image files not found"):
        export.predict_from_saved_model(exports["image"].path, [str(tmp_path / "missing.jpg")])


def test_export_from_keras_file_and_checkpoint_directory(image_model, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    image_model.save(str(checkpoints / "epoch_1.keras"))
    base_dir = str(tmp_path / "saved_models")
    result = export.export_from_file(str(checkpoints), base_dir, name="pets", warmup=False, verify=False)
    assert (result.path, result.kind) == (os.path.join(base_dir, "pets", "1"), "image")
    images = tf.constant(np.stack([_decoded(item) for item in _image_bytes()]))
    served = tf.saved_model.load(result.path).signatures["serve_images"](images=images)
    expected = _keras_image_probabilities(image_model, _image_bytes())
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    with pytest.raises(ValueError, match="not an existing '.keras' file"):
        export.export_from_file(str(tmp_path / "model.weights.h5"), base_dir)

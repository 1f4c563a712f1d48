"""Serving assets: the custom-op report, export metadata and labels, warm-up requests, models.config."""

import json
import os

import pytest
import tensorflow as tf
from export_fixtures import TEXT_LABELS
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tftune import export

pytest_plugins = ["export_fixtures"]
# With pytest-xdist (`make test`), every test of the session-scoped exports runs on one worker: exported once.
pytestmark = pytest.mark.xdist_group("exports")


@pytest.mark.slow
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
    assert str(image.custom_ops) == (
        "Ops outside core TensorFlow: none. Minimum TF Serving: any. core TensorFlow ops only: no TF Text ops needed."
    )


@pytest.mark.slow
def test_metadata_and_label_asset_describe_the_export(exports):
    text = exports["text"]
    with open(os.path.join(text.path, export.METADATA_FILE)) as metadata_file:
        metadata = json.load(metadata_file)
    assert metadata["custom_ops"] == text.custom_ops.to_json()
    assert (metadata["name"], metadata["version"], metadata["kind"]) == ("reviews", 1, "text")
    assert metadata["labels"] == TEXT_LABELS and metadata["signatures"] == text.signatures
    assert metadata["image_size"] is None
    with open(os.path.join(exports["image"].path, export.METADATA_FILE)) as metadata_file:
        assert json.load(metadata_file)["image_size"] == [64, 64]
    with open(os.path.join(text.path, "assets", export.LABELS_ASSET)) as labels_file:
        assert labels_file.read().splitlines() == TEXT_LABELS


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["text", "image"])
def test_warmup_requests_are_prediction_logs_the_signatures_accept(exports, kind):
    result = exports[kind]
    loaded = tf.saved_model.load(result.path)
    records = list(tf.data.TFRecordDataset(os.path.join(result.path, export.WARMUP_FILE)).as_numpy_iterator())
    assert len(records) == 4
    requests = []
    for record in records:
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        assert request.model_spec.name == result.name
        signature = result.signatures[request.model_spec.signature_name]
        assert set(request.inputs) == set(signature["inputs"])
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        for key in inputs:
            assert tf.as_dtype(request.inputs[key].dtype).name == signature["inputs"][key]["dtype"]
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        requests.append((request.model_spec.signature_name, outputs["probabilities"].shape[0]))
    batch = 3 if kind == "text" else 2
    tensor_signature = export.TENSOR_SIGNATURES[kind]
    assert requests == [
        ("serving_default", 1), ("serving_default", batch), (tensor_signature, 1), (tensor_signature, batch)
    ]


@pytest.mark.slow
def test_write_models_config_lists_every_exported_model(exports):
    path = export.write_models_config(exports["base_dir"])
    with open(path) as config_file:
        config = text_format.Parse(config_file.read(), model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == ["pets", "pets_mirrored", "pets_mixed", "reviews"]
    assert entries["reviews"].base_path == "/models/reviews"
    assert entries["reviews"].model_platform == "tensorflow"


def test_write_models_config_needs_exported_models(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        export.write_models_config(str(tmp_path / "missing"))
    (tmp_path / "half_written" / ".tmp-1-abc").mkdir(parents=True)
    with pytest.raises(ValueError, match="No exported models under"):
        export.write_models_config(str(tmp_path))

"""Export signatures: raw-input and tensor signatures served in a TensorFlow-only process match Keras."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from export_fixtures import IMAGE_LABELS, TEXT_LABELS, image_bytes, keras_image_probabilities, keras_text_probabilities

import tftune

pytest_plugins = ["export_fixtures"]
# With pytest-xdist (`make test`), every test of the session-scoped exports runs on one worker: exported once.
pytestmark = pytest.mark.xdist_group("exports")

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def _assert_matches(outputs, expected, labels, tolerance=1e-5):
    assert outputs["probabilities"]["dtype"] == "float32"
    assert outputs["class_id"]["dtype"] == "int64"
    assert outputs["label"]["dtype"] == "string"
    probabilities = np.array(outputs["probabilities"]["value"])
    assert probabilities.shape == expected.shape
    assert np.max(np.abs(probabilities - expected)) <= tolerance
    np.testing.assert_array_equal(outputs["class_id"]["value"], np.argmax(probabilities, axis=-1))
    assert outputs["label"]["value"] == [labels[index] for index in outputs["class_id"]["value"]]


@pytest.mark.slow
def test_text_signatures_match_keras_in_a_tensorflow_only_process(served, text_model, texts):
    # No Keras code at serving time: the process that served every export could import tensorflow but not
    # keras, tf_keras, keras_hub or tftune.
    assert served["importable"] == {"keras": False, "keras_hub": False, "tf_keras": False, "tftune": False,
                                    "tensorflow": True}
    expected = keras_text_probabilities(text_model, texts)
    _assert_matches(served["text"], expected, TEXT_LABELS)
    _assert_matches(served["tokens"], expected, TEXT_LABELS)
    # top_k=2 of 2 classes: the classes sorted by probability.
    np.testing.assert_allclose(served["text"]["top_k_probabilities"]["value"], -np.sort(-expected, axis=-1), atol=1e-5)
    assert served["text"]["top_k_class_ids"]["dtype"] == "int64"
    assert [row[0] for row in served["text"]["top_k_labels"]["value"]] == served["text"]["label"]["value"]


@pytest.mark.slow
def test_image_signatures_decode_jpeg_and_png_like_keras(served, image_model):
    encoded = image_bytes()
    _assert_matches(served["image_bytes"], keras_image_probabilities(image_model, encoded), IMAGE_LABELS)
    _assert_matches(served["images"], keras_image_probabilities(image_model, encoded), IMAGE_LABELS)
    assert "top_k_labels" not in served["image_bytes"]


@pytest.mark.slow
def test_model_trained_under_mirrored_strategy_serves_like_keras(served, mirrored_model, image_model):
    expected = keras_image_probabilities(mirrored_model, image_bytes())
    _assert_matches(served["mirrored"], expected, IMAGE_LABELS)
    # Training changed the weights, so the parity is not the untrained model's.
    assert np.max(np.abs(expected - keras_image_probabilities(image_model, image_bytes()))) > 1e-4


@pytest.mark.slow
def test_mixed_precision_model_exports_float32_outputs(served, mixed_precision_model, exports):
    # The export computes in float32: the trained weights in a float32 copy of the model.
    expected = keras_image_probabilities(tftune.saving.float32_copy(mixed_precision_model), image_bytes())
    _assert_matches(served["mixed"], expected, IMAGE_LABELS)
    outputs = exports["mixed"].signatures["serving_default"]["outputs"]
    assert outputs["probabilities"] == {"dtype": "float32", "shape": [None, 3]}


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


@pytest.mark.slow
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
        "serve_tokens": (
            {key: ("DT_INT32", "(-1, -1)") for key in ("token_ids", "segment_ids", "padding_mask")},
            outputs,
        ),
    }
    image = _saved_model_cli_signatures(exports["image"].path)
    outputs = {key: outputs[key] for key in ("class_id", "label")} | {"probabilities": ("DT_FLOAT", "(-1, 3)")}
    assert image == {
        "serving_default": ({"image_bytes": ("DT_STRING", "(-1)")}, outputs),
        "serve_images": ({"images": ("DT_FLOAT", "(-1, -1, -1, 3)")}, outputs),
    }

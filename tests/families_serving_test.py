"""Every family's tiny classifier, exported as a SavedModel and served by TensorFlow alone, gives Keras' answers.

Raw inputs only: strings for text (tokenized in the graph), non-square JPEG and
PNG bytes for images (decoded at their own size and resized in the graph the
way the checkpoint's image converter resizes). One TensorFlow-only process
serves every export (tftune, keras and keras-hub imports blocked there).
"""

import base64
import importlib
import pkgutil

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import decoded, image_bytes, serve_in_tensorflow_only

import tftune
from tftune.families import testing

pytest_plugins = ["export_fixtures"]


def _cases():
    package = importlib.import_module("tftune.families")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_test"):
            yield importlib.import_module(f"tftune.families.{module.name}").CASE


CASES = sorted(_cases(), key=lambda case: case.family.name)


def test_every_family_has_a_case():
    assert {case.family.name for case in CASES} == {family.name for family in tftune.families.FAMILIES}


def _expected(case, model, preset):
    if case.is_text:
        return model(model.preprocessor(tf.constant(testing.TEXTS)), training=False).numpy()
    # The checkpoint's own converter resizes (not tftune's code), and training caches whole 0..255 values (uint8).
    converter = keras_hub.layers.ImageConverter.from_preset(preset)
    resize = converter.resizing if converter is not None else keras.layers.Resizing(*model.image_size, **model.resizing)
    images = [np.clip(np.round(resize(decoded(item)).numpy()), 0, 255) for item in image_bytes()]
    return np.concatenate([model(image[None], training=False).numpy() for image in images])


@pytest.mark.slow
def test_every_family_serves_raw_inputs_in_tensorflow_only(tmp_path):
    jobs, expected = [], {}
    for case in CASES:
        preset = case.preset(str(tmp_path / case.family.name / "preset"))
        model = case.build(preset)
        result = tftune.export_saved_model(
            model, str(tmp_path / "exports"), name=case.family.name, warmup=False, verify=False
        )
        raw = (
            {"text": ("string", list(testing.TEXTS))}
            if case.is_text
            else {"image_bytes": ("b64", [base64.b64encode(item).decode() for item in image_bytes()])}
        )
        jobs.append((result, "serving_default", raw))
        expected[case.family.name] = _expected(case, model, preset)
    answer = serve_in_tensorflow_only(jobs)
    for case, served in zip(CASES, answer["results"], strict=True):
        np.testing.assert_allclose(
            served["probabilities"]["value"], expected[case.family.name], atol=1e-5, err_msg=case.family.name
        )

"""The SavedModel client: load_serving_model / predict_from_saved_model on real exports, inputs of the wrong kind."""

import os

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import (
    IMAGE_LABELS,
    TEXT_LABELS,
    decoded,
    image_bytes,
    keras_image_probabilities,
    keras_text_probabilities,
)

import tftune
from tftune import cli, export

pytest_plugins = ["export_fixtures"]
# With pytest-xdist (`make test`), every test of the session-scoped exports runs on one worker: exported once.
pytestmark = pytest.mark.xdist_group("exports")


@pytest.fixture
def pet_photo(tmp_path):
    path = tmp_path / "pet.jpg"
    path.write_bytes(image_bytes()[0])
    return str(path)


@pytest.mark.slow
def test_serving_model_probabilities_equal_the_keras_models(exports, text_model, image_model, texts):
    served = tftune.load_serving_model(os.path.dirname(exports["text"].path))
    assert (served.path, served.kind, served.version, served.labels) == (exports["text"].path, "text", 1, TEXT_LABELS)
    assert served.image_size is None
    expected = keras_text_probabilities(text_model, texts)
    # 6 texts in batches of 4: two calls of serving_default (the second partial), tokenized in the graph.
    probabilities = served.predict_probabilities(texts, batch_size=4)
    assert probabilities.shape == (6, 2) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(served.predict_probabilities(np.array(texts)), expected, atol=1e-5)

    served = tftune.load_serving_model(exports["image"].path)
    assert (served.kind, served.version, served.labels, served.image_size) == ("image", 1, IMAGE_LABELS, (64, 64))
    # 80x100 photos and 64x64 images; the graph resizes like the model's Resizing layer and rounds like training.
    photos = np.stack([decoded(item) for item in image_bytes()])
    square = np.random.RandomState(4).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    for images in (photos, square):
        probabilities = served.predict_probabilities(images, batch_size=2)
        assert probabilities.shape == (len(images), 3)
        as_trained = tftune.families.resize_image(images, (64, 64), image_model.resizing)
        np.testing.assert_allclose(probabilities, image_model(as_trained, training=False), atol=1e-5)
    assert served.predict_probabilities(np.zeros((0, 64, 64, 3), "float32")).shape == (0, 3)


def test_load_serving_model_takes_the_newest_version_or_the_one_given(image_model, tmp_path):
    base_dir = str(tmp_path / "saved_models")
    for _ in range(2):
        tftune.export_saved_model(image_model, base_dir, name="pets", warmup=False, verify=False)
    newest = tftune.load_serving_model(os.path.join(base_dir, "pets"))
    assert (newest.path, newest.version) == (os.path.join(base_dir, "pets", "2"), 2)
    # The loaded SavedModel, for the signatures predict_probabilities does not run.
    assert {"serving_default", "serve_images"} <= set(newest.saved_model.signatures)
    assert tftune.load_serving_model(os.path.join(base_dir, "pets", "1")).version == 1
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        newest.predict_probabilities(np.zeros((1, 64, 64, 3)), batch_size=0)
    with pytest.raises(ValueError, match="neither a SavedModel directory nor a model directory"):
        tftune.load_serving_model(base_dir)
    plain = str(tmp_path / "plain")
    tf.saved_model.save(tf.Module(), plain)
    with pytest.raises(ValueError, match="is a SavedModel but not a tftune export"):
        tftune.load_serving_model(plain)


@pytest.mark.slow
def test_predict_from_saved_model_gives_label_and_probability(exports, text_model, image_model, pet_photo):
    texts = ["a moving, beautifully acted film", "dull"]
    predictions = export.predict_from_saved_model(os.path.dirname(exports["text"].path), texts)
    expected = keras_text_probabilities(text_model, texts)
    assert [p.label for p in predictions] == [TEXT_LABELS[i] for i in np.argmax(expected, axis=-1)]
    assert [p.class_id for p in predictions] == np.argmax(expected, axis=-1).tolist()
    np.testing.assert_allclose([p.probability for p in predictions], np.max(expected, axis=-1), atol=1e-5)
    assert str(predictions[1]).split("\t") == [predictions[1].label, f"{predictions[1].probability:.4f}", "dull"]
    (prediction,) = export.predict_from_saved_model(exports["image"].path, [pet_photo])
    expected = keras_image_probabilities(image_model, image_bytes()[:1])[0]
    assert prediction.label == IMAGE_LABELS[int(np.argmax(expected))]
    assert abs(prediction.probability - float(np.max(expected))) <= 1e-5


@pytest.mark.slow
def test_inputs_of_the_other_kind_are_rejected_saying_what_fits(exports, pet_photo, tmp_path, capsys):
    text_dir, image_dir = exports["text"].path, exports["image"].path
    with pytest.raises(ValueError) as raised:
        export.predict_from_saved_model(text_dir, ["a fine film", pet_photo])
    assert str(raised.value) == (
        f"'{text_dir}' is a text model: it takes texts, fed to its 'serving_default' signature (input 'text'); "
        f"got image files {[pet_photo]!r}. Pass texts, or use an image model's export for image files."
    )
    notes = tmp_path / "review.txt"
    notes.write_text("a fine film")
    with pytest.raises(ValueError, match=r"is a text model: .* got only file paths"):
        export.predict_from_saved_model(text_dir, [str(notes)])
    with pytest.raises(ValueError, match=r"is an image model: it takes JPEG / PNG / GIF / BMP file paths.*"
                                         r"got \['a fine film'\], which are not existing files"):
        export.predict_from_saved_model(image_dir, ["a fine film"])
    with pytest.raises(ValueError, match=r"got files \[.*review.txt'\], which are not JPEG / PNG / GIF / BMP images"):
        export.predict_from_saved_model(image_dir, [pet_photo, str(notes)])
    with pytest.raises(ValueError, match=r"predict runs 'serving_default'.* has \['serve_tokens', 'serving_default'\]"):
        export.predict_from_saved_model(text_dir, ["a fine film"], signature="serve_tokens")

    text_model, image_model = tftune.load_serving_model(text_dir), tftune.load_serving_model(image_dir)
    with pytest.raises(ValueError, match=r"is a text model: it takes raw texts .* got an array of float32 with shape"):
        text_model.predict_probabilities(np.zeros((2, 64, 64, 3), "float32"))
    with pytest.raises(ValueError, match=r"is an image model: it takes float images .* got list \['a fine film'\]"):
        image_model.predict_probabilities(["a fine film"])

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", text_dir, pet_photo])
    assert exit_info.value.code == 2
    assert "is a text model: it takes texts" in capsys.readouterr().err

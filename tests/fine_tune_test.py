"""`tftune.fine_tune`: one call on raw strings / images with the recipe defaults; `classify` gives label names."""

import numpy as np
import pytest

import tftune
from tftune import builders, classifiers

_TEXTS = ["a fine warm film", "a dull cold film"] * 6


@pytest.mark.slow
def test_fine_tune_on_strings_with_string_labels_classifies_by_name(tiny_bert_preset):
    labels = ["fresh", "rotten"] * 6
    model = tftune.fine_tune(tiny_bert_preset, _TEXTS, labels, epochs=1, batch_size=4, sequence_length=8)
    assert isinstance(model, tftune.TextClassifier) and model.labels == ["fresh", "rotten"]
    names, probabilities = model.classify(["a fine warm film", "a dull cold film", "x"], probabilities=True)
    assert len(names) == 3 and set(names) <= {"fresh", "rotten"}
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=-1), 1, atol=1e-5)
    assert names == [model.labels[index] for index in probabilities.argmax(axis=-1)]
    assert model.classify("a fine warm film") == names[0]
    # With the head forced to one class, classify names that class (whatever its index).
    head = model.get_layer(classifiers.HEAD_LAYER)
    kernel, _ = head.get_weights()
    for bias, label in (([0.0, 50.0], "rotten"), ([50.0, 0.0], "fresh")):
        head.set_weights([np.zeros_like(kernel), np.array(bias, "float32")])
        assert model.classify(["a fine warm film", "x"]) == [label, label]


@pytest.mark.slow
def test_fine_tune_with_int_labels_and_validation_data(tiny_bert_preset):
    model = tftune.fine_tune(
        tiny_bert_preset, _TEXTS, [0, 1] * 6, validation_data=(["fine", "dull"], [0, 1]), epochs=1, batch_size=4,
        sequence_length=8, lora_rank=2,
    )
    assert model.labels == ["0", "1"]
    assert model.classify("fine") in ("0", "1")
    assert tftune.lora.lora_layers(model)  # the options reach the shared training code


@pytest.mark.slow
def test_fine_tune_on_images_classifies_raw_arrays(small_resnet_preset):
    images = np.random.default_rng(0).uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    model = tftune.fine_tune(small_resnet_preset, images, ["cat", "dog"] * 6, epochs=1, batch_size=4, weights=None)
    assert model.labels == ["cat", "dog"]
    assert model.classify(images[0]) in ("cat", "dog")
    labels, probabilities = model.classify(list(images[:3]), probabilities=True)
    assert len(labels) == 3 and probabilities.shape == (3, 2)


def test_strings_for_an_image_backbone_name_both(small_resnet_preset):
    with pytest.raises(ValueError, match=r"x holds strings, but backbone .* backbone for image: it takes images"):
        tftune.fine_tune(small_resnet_preset, _TEXTS, [0, 1] * 6, epochs=1)


def test_images_for_a_text_backbone_name_both(tiny_bert_preset):
    with pytest.raises(ValueError, match=r"x holds images, but backbone .* backbone for text: it takes strings"):
        tftune.fine_tune(tiny_bert_preset, np.zeros((4, 32, 32, 3)), [0, 1] * 2, epochs=1)


def test_bad_arguments_are_refused_together_before_any_model_is_built(tiny_bert_preset, monkeypatch):
    def build(self):
        raise AssertionError("a model was built")

    monkeypatch.setattr(builders.ModelSpec, "build", build)
    with pytest.raises(ValueError) as error:
        tftune.fine_tune(tiny_bert_preset, _TEXTS, [0, 1] * 6, epochs=0, lora_rank=0, image_size=(32, 32))
    message = str(error.value)
    assert "epochs must be" in message and "lora_rank must be" in message and "image_size applies to image" in message
    with pytest.raises(ValueError, match=r"fine_tune sets \['output_dir'\] itself"):
        tftune.fine_tune(tiny_bert_preset, _TEXTS, [0, 1] * 6, output_dir="runs/x")

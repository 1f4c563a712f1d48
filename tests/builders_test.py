import json
import os
import warnings

import keras
import numpy as np
import pytest

import tftune


@pytest.fixture(scope="module")
def text_classifier(bert_dir):
    return tftune.build_text_classifier(bert_dir, 3, sequence_length=16, labels=["rotten", "fresh", "plot"])


@pytest.fixture(scope="module")
def image_classifier(small_resnet_preset):
    return tftune.build_image_classifier(small_resnet_preset, 4, image_size=(64, 64), dropout=0.0)


def test_text_classifier_inputs_outputs_and_groups(text_classifier):
    model = text_classifier
    assert {tensor.name: tensor.dtype for tensor in model.inputs} == {
        "token_ids": "int32",
        "segment_ids": "int32",
        "padding_mask": "int32",
    }
    assert model.output.name.startswith("probabilities") or model.layers[-1].name == "probabilities"
    assert model.get_layer("probabilities").dtype_policy.compute_dtype == "float32"
    # MiniLM's folder says mean pooling: the BERT pooler does not reach the output, so it is no group.
    assert model.pooling == "mean"
    assert [group.name for group in model.layer_groups] == (
        ["embeddings"] + [f"encoder_{index}" for index in range(6)] + ["head"]
    )
    assert model.backbone.get_layer("pooled_dense").trainable is False
    assert model.labels == ["rotten", "fresh", "plot"]
    probabilities = model.predict(model.preprocessor(["a fine film", "a dull plot"]), verbose=0)
    assert probabilities.shape == (2, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def _features_and_sequence_output(model):
    """Features of texts of different lengths, their padding mask and the backbone's sequence_output."""
    features = model.preprocessor(["a fine film", "an utterly tedious, joyless and overlong mess of a film"])
    mask = np.asarray(features["padding_mask"]).astype(bool)
    assert 3 < mask[0].sum() < mask[1].sum() <= 16
    return features, mask, np.asarray(model.backbone(features)["sequence_output"])


def _pooled(model, features):
    return np.asarray(keras.Model(model.inputs, model.get_layer("head_dropout").input)(features))


def test_mean_pooling_is_the_mean_over_real_tokens(text_classifier):
    features, mask, sequence = _features_and_sequence_output(text_classifier)
    expected = (sequence * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(_pooled(text_classifier, features), expected, rtol=1e-5, atol=1e-5)
    assert np.abs(sequence.mean(axis=1) - expected).max() > 1e-2  # padding would have changed it


def test_max_pooling_is_the_max_over_real_tokens(text_classifier):
    model = tftune.TextClassifier(text_classifier.backbone, 3, preprocessor=text_classifier.preprocessor, pooling="max")
    features, mask, sequence = _features_and_sequence_output(model)
    expected = np.where(mask[..., None], sequence, -np.inf).max(axis=1)
    np.testing.assert_allclose(_pooled(model, features), expected, rtol=1e-6)
    assert np.abs(sequence.max(axis=1) - expected).max() > 1e-2  # padding would have changed it
    assert model.pooling == "max" and "pooler" not in [group.name for group in model.layer_groups]


def _minilm_copy(bert_dir, directory, pooling_config=None) -> str:
    """The MiniLM folder's files symlinked into `directory`; `pooling_config` as its 1_Pooling/config.json, if any."""
    directory.mkdir()
    for name in os.listdir(bert_dir):
        if name != "1_Pooling":
            os.symlink(os.path.join(bert_dir, name), directory / name)
    if pooling_config is not None:
        (directory / "1_Pooling").mkdir()
        (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    return str(directory)


def test_pooling_defaults_to_the_checkpoints_else_cls(bert_dir, tmp_path):
    without_pooling = _minilm_copy(bert_dir, tmp_path / "none")
    max_tokens = _minilm_copy(
        bert_dir, tmp_path / "max", {"pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}
    )
    for directory, pooling, expected in [
        (without_pooling, None, "cls"),
        (max_tokens, None, "max"),
        (bert_dir, "cls", "cls"),  # an explicit choice wins over the checkpoint's "mean"
    ]:
        model = tftune.build_text_classifier(directory, 2, sequence_length=16, weights=None, pooling=pooling)
        assert model.pooling == expected, directory
        assert ("pooler" in [group.name for group in model.layer_groups]) is (expected == "cls")
        assert model.backbone.get_layer("pooled_dense").trainable is (expected == "cls")


@pytest.mark.slow
def test_mean_pooled_model_fine_tunes_without_missing_gradients(tiny_bert_preset):
    """Every grouped weight trains; the frozen pooler, which mean pooling bypasses, neither trains nor warns."""
    keras.utils.set_random_seed(0)
    model = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=16, pooling="mean")
    features = model.preprocessor(["a fine film", "dull", "an utterly tedious and overlong mess", "great fun"])
    layers = [model.get_layer("probabilities")] + [
        model.backbone.get_layer(name) for name in ("transformer_layer_0", "pooled_dense")
    ]
    before = [layer.get_weights()[0].copy() for layer in layers]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tftune.compile_for_unfreezing(model, "adamw", 1e-3)
        model.fit({name: np.asarray(value) for name, value in features.items()}, np.array([1, 0, 0, 1]), verbose=0)
    assert not [str(warning.message) for warning in caught if "Gradients do not exist" in str(warning.message)]
    unchanged = {
        layer.name: np.array_equal(layer.get_weights()[0], old) for layer, old in zip(layers, before, strict=True)
    }
    assert unchanged == {"probabilities": False, "transformer_layer_0": False, "pooled_dense": True}


def test_image_classifier_normalizes_like_keras_applications(random_images):
    for name, preprocess_input in [
        ("resnet50", keras.applications.resnet.preprocess_input),
        ("resnet50v2", keras.applications.resnet_v2.preprocess_input),
    ]:
        model = tftune.build_image_classifier(name, 2, image_size=(64, 64), weights=None)
        normalized = keras.Model(model.input, model.get_layer("normalize").output)
        np.testing.assert_allclose(
            normalized.predict(random_images, verbose=0), preprocess_input(random_images.copy()), atol=1e-4
        )


def test_image_classifier_resizes_any_input_size(image_classifier):
    big = np.random.RandomState(0).uniform(0, 255, (2, 97, 131, 3)).astype("float32")
    assert image_classifier.predict(big, verbose=0).shape == (2, 4)
    assert [group.name for group in image_classifier.layer_groups] == [
        "stem", "stage_1", "stage_2", "stage_3", "stage_4", "head",
    ]


def test_frozen_batchnorm_runs_in_inference_mode(image_classifier, random_images):
    backbone = image_classifier.backbone
    moving_means = [weight.numpy().copy() for weight in backbone.non_trainable_weights]
    try:
        backbone.trainable = False
        frozen_training = image_classifier(random_images, training=True)
        np.testing.assert_allclose(frozen_training, image_classifier(random_images, training=False), atol=1e-6)
        backbone.trainable = True
        trainable_training = image_classifier(random_images, training=True)
        assert np.abs(trainable_training - image_classifier(random_images, training=False)).max() > 1e-3
    finally:
        backbone.trainable = True
        for weight, value in zip(backbone.non_trainable_weights, moving_means, strict=True):
            weight.assign(value)


def test_calling_an_image_classifier_without_training_is_inference(image_classifier, random_images):
    # Keras' Resizing defaults to training=True, and a layer's resolved `training` passes on to the layers after it.
    moving_means = [weight.numpy().copy() for weight in image_classifier.backbone.non_trainable_weights]
    try:
        called = image_classifier(random_images)
        for weight, value in zip(image_classifier.backbone.non_trainable_weights, moving_means, strict=True):
            np.testing.assert_array_equal(weight.numpy(), value, err_msg=weight.path)
        np.testing.assert_allclose(called, image_classifier(random_images, training=False), atol=1e-6)
    finally:
        for weight, value in zip(image_classifier.backbone.non_trainable_weights, moving_means, strict=True):
            weight.assign(value)


@pytest.mark.slow
def test_keras_file_round_trip(text_classifier, image_classifier, random_images, tmp_path):
    texts = ["an absolute triumph", "two hours I will never get back"]
    for model, inputs in [(text_classifier, text_classifier.preprocessor(texts)), (image_classifier, random_images)]:
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model)
        assert loaded.labels == model.labels
        assert loaded.get_config().get("pooling") == model.get_config().get("pooling")
        assert [group.name for group in loaded.layer_groups] == [group.name for group in model.layer_groups]
        np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
    loaded_text = keras.models.load_model(str(tmp_path / f"{text_classifier.name}.keras"))
    # TextClassifier's own default is "cls": the loaded model pools by mean only because the config says so.
    assert loaded_text.pooling == "mean" and loaded_text.backbone.get_layer("pooled_dense").trainable is False
    np.testing.assert_array_equal(
        loaded_text.preprocessor(texts)["token_ids"], text_classifier.preprocessor(texts)["token_ids"]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 1}, "num_classes must be an integer >= 2; got 1"),
        ({"num_classes": 2.0}, "num_classes must be an integer >= 2; got 2.0"),
        ({"labels": ["a", "b", "c"]}, r"labels has 3 names .* num_classes=2"),
        ({"labels": ["a", "a"]}, r"labels must be distinct; \['a'\]"),
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\); got 1.0"),
        ({"dropout": -0.1}, r"dropout must be a number in \[0, 1\); got -0.1"),
        ({"sequence_length": 0}, "sequence_length must be an integer >= 1; got 0"),
        ({"sequence_length": 513}, "sequence_length must be an integer <= 512; got 513. Backbone .* has 512 position"),
        ({"pooling": "sum"}, "pooling must be one of None, 'cls', 'mean', 'max'; got 'sum'"),
        (
            {"pooling": "CLS", "num_classes": 1},
            r"2 invalid options:\n  - num_classes must be .*; got 1.\n  - pooling must be one of .*; got 'CLS'",
        ),
    ],
)
def test_text_classifier_bad_input(bert_dir, kwargs, message):
    arguments = {"num_classes": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        tftune.build_text_classifier(bert_dir, **arguments)


def test_bad_pooling_is_rejected_before_any_backbone_loads(bert_dir):
    # The backbone does not exist: the pooling error proves nothing was loaded first.
    with pytest.raises(ValueError, match="pooling must be one of None, 'cls', 'mean', 'max'; got 'avg'"):
        tftune.build_text_classifier("no/such/backbone", 2, pooling="avg")
    backbone = tftune.resolve_backbone(bert_dir, weights=None).model
    with pytest.raises(ValueError, match="pooling must be one of 'cls', 'mean', 'max'; got None"):
        tftune.TextClassifier(backbone, 2, pooling=None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"image_size": (16, 64)},
            r"image_size must be \(height, width\), two integers in \[32, 2048\] .*; got \(16, 64\)",
        ),
        ({"image_size": (64,)}, "image_size must be"),
        ({"num_classes": 0}, "num_classes must be an integer >= 2; got 0"),
    ],
)
def test_image_classifier_bad_input(kwargs, message):
    arguments = {"num_classes": 2, "weights": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        tftune.build_image_classifier("resnet50", **arguments)


def test_family_mismatch_is_rejected(bert_dir):
    with pytest.raises(ValueError, match=r"is a backbone for text \(BERT\), not for image.*--task text"):
        tftune.build_image_classifier(bert_dir, 2)
    with pytest.raises(ValueError, match=r"'resnet50' is a backbone for image \(ResNet\), not for text"):
        tftune.build_text_classifier("resnet50", 2, weights=None)

"""text_pipelines / image_pipelines: tokenizing, resizing, seeded shuffles, augmentation, option checks."""

import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import data


@pytest.fixture(scope="module")
def preprocessor(bert_dir):
    return tftune.resolve_backbone(bert_dir, sequence_length=16).preprocessor


def _all(dataset):
    return list(dataset.as_numpy_iterator())


@pytest.mark.slow
def test_text_pipelines_tokenize_with_the_model_preprocessor(preprocessor):
    splits = data.load_text_splits(tftune.load_rotten_tomatoes("three_class").subset(range(0, 13905, 200)))
    prepared = data.text_pipelines(splits, preprocessor, batch_size=8, seed=1)
    assert prepared.label_names == ["rotten", "fresh", "plot"] and prepared.batch_size == 8
    features, labels = next(iter(prepared.train))
    assert {name: (tensor.dtype, tuple(tensor.shape)) for name, tensor in features.items()} == {
        "token_ids": (tf.int32, (8, 16)),
        "segment_ids": (tf.int32, (8, 16)),
        "padding_mask": (tf.int32, (8, 16)),
    }
    assert labels.dtype == tf.int32
    expected = preprocessor(["x"])["token_ids"][0]
    assert int(features["token_ids"][0, 0]) == int(expected[0])  # [CLS]
    assert prepared.steps_per_epoch == -(-prepared.train_size // 8)
    assert prepared.validation_steps == -(-prepared.validation_size // 8)

    # Seeded shuffle: same order for the same seed, reshuffled every epoch; validation in a fixed order.
    def epoch(pipeline):
        return np.concatenate([batch_labels for _, batch_labels in pipeline.as_numpy_iterator()])

    replay = data.text_pipelines(splits, preprocessor, batch_size=8, seed=1)
    first_epoch, second_epoch = epoch(replay.train), epoch(replay.train)
    replay_epoch = epoch(data.text_pipelines(splits, preprocessor, batch_size=8, seed=1).train)
    assert len(first_epoch) == splits.train_size and np.bincount(first_epoch).tolist() == list(
        splits.class_counts["train"].values()
    )
    assert (first_epoch == replay_epoch).all() and not (first_epoch == second_epoch).all()
    validation_labels = [labels for _, labels in prepared.validation.as_numpy_iterator()]
    assert np.array_equal(np.concatenate(validation_labels), np.array([y for _, y in _all(splits.validation)]))
    with pytest.raises(ValueError, match=r"2 invalid options:\n.*batch_size.*>= 1; got 0.*\n.*cache must be"):
        data.text_pipelines(splits, preprocessor, batch_size=0, cache="")


def test_numpy_images_grayscale_to_rgb_and_augmentation_on_train_only():
    random = np.random.RandomState(0)
    images = random.randint(0, 256, size=(40, 32, 32)).astype("uint8")
    labels = np.arange(40) % 4
    splits = data.load_image_splits((images, labels), label_names=["a", "b", "c", "d"], validation_fraction=0.25)
    assert splits.class_counts["validation"] == {"a": 2, "b": 2, "c": 2, "d": 2}
    plain = data.image_pipelines(splits, (32, 32), batch_size=40, seed=0)
    augmented = data.image_pipelines(splits, (32, 32), batch_size=40, augmentation=("flip", "crop", "rotation"), seed=0)
    train_plain, _ = next(iter(plain.train))
    train_augmented, _ = next(iter(augmented.train))
    validation_plain, labels_plain = next(iter(plain.validation))
    validation_augmented, _ = next(iter(augmented.validation))
    assert train_augmented.shape == train_plain.shape == (32, 32, 32, 3)
    assert np.array_equal(validation_plain, validation_augmented)  # validation is never augmented
    assert not np.allclose(train_plain, train_augmented)
    originals = {int(label): [] for label in range(4)}
    for image, label in zip(images, labels, strict=True):
        originals[int(label)].append(image.astype("float32"))
    first = validation_plain[0].numpy()
    assert np.array_equal(first[..., 0], first[..., 2])  # grayscale became RGB
    assert any(np.array_equal(first[..., 0], original) for original in originals[int(labels_plain[0])])
    with pytest.raises(ValueError, match="augmentation must be a sequence of"):
        data.image_pipelines(splits, (32, 32), batch_size=8, augmentation=("zoom",))


@pytest.mark.parametrize("image_size", [(16, 64), (31, 32), (64,), (32.0, 32), "32x32", 32, (32, 32, 3)])
def test_image_pipelines_accept_exactly_the_sizes_the_builders_accept(image_size):
    images = np.zeros((8, 32, 32, 3), "uint8")
    splits = data.load_image_splits((images, [0, 1] * 4), validation_fraction=0.25, verbose=False)
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\), two integers in \[32, 2048\]"):
        data.image_pipelines(splits, image_size, batch_size=4)
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\)"):
        tftune.build_image_classifier("resnet50", 2, image_size=image_size, weights=None)
    prepared = data.image_pipelines(splits, (32, 40), batch_size=4)
    assert {tuple(images.shape[1:]) for images, _ in prepared.train.as_numpy_iterator()} == {(32, 40, 3)}


def test_pipeline_option_errors_are_listed_together():
    splits = data.load_image_splits((np.zeros((8, 32, 32, 3)), [0, 1] * 4), verbose=False)
    with pytest.raises(ValueError) as error:
        data.image_pipelines(splits, (8, 8), batch_size=1.5, augmentation="flip", shuffle_buffer=0)
    message = str(error.value)
    assert message.startswith("4 invalid options:")
    assert "image_size" in message and "augmentation" in message and "batch_size" in message
    assert "shuffle_buffer must be an integer >= 1; got 0" in message
    with pytest.raises(ValueError, match="Expected image DataSplits"):
        text_splits = data.load_text_splits((["a", "b", "c", "d"], ["x", "y"] * 2), verbose=False)
        data.image_pipelines(text_splits, (32, 32), batch_size=4)

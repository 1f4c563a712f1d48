"""load_text_splits / load_image_splits on every kind of source, and their bad-data errors (offline, tiny data)."""

import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from tftune import data

TEXTS = ["a fine film", "dull and long", "great acting", "a mess", "loved it", "boring", "superb", "awful"] * 3
LABELS = ["fresh", "rotten"] * 12


def _write_images(folder, count, extension, seed=0, size=(9, 7)):
    os.makedirs(folder, exist_ok=True)
    random = np.random.RandomState(seed)
    for index in range(count):
        pixels = random.randint(0, 256, size=(*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{index}{extension}"))


def _all(dataset):
    return list(dataset.as_numpy_iterator())


def test_lists_stratified_split_is_seeded_disjoint_and_counted(caplog):
    with caplog.at_level(logging.INFO, logger="tftune"):
        splits = data.load_text_splits((TEXTS, LABELS), validation_fraction=0.25, seed=3)
    assert "in-memory data: 18 train / 6 validation text examples" in caplog.text  # the summary, logged
    assert splits.kind == "text" and splits.label_names == ["fresh", "rotten"]
    assert splits.class_counts == {"train": {"fresh": 9, "rotten": 9}, "validation": {"fresh": 3, "rotten": 3}}
    train, validation = _all(splits.train), _all(splits.validation)
    assert len(train) == 18 and len(validation) == 6
    assert sorted(train + validation) == sorted((text.encode(), LABELS[i] == "rotten") for i, text in enumerate(TEXTS))
    again = data.load_text_splits((TEXTS, LABELS), validation_fraction=0.25, seed=3, verbose=False)
    other = data.load_text_splits((TEXTS, LABELS), validation_fraction=0.25, seed=4, verbose=False)
    assert _all(again.validation) == validation and _all(other.validation) != validation
    summary = splits.summary()
    assert "18 train / 6 validation" in summary and "stratified 25%" in summary and "rotten" in summary
    small = data.load_text_splits((TEXTS, LABELS), max_examples=10, validation_fraction=0.2, verbose=False)
    assert small.train_size + small.validation_size == 10 and len(_all(small.train)) == small.train_size
    with pytest.raises(ValueError, match=r"max_examples must be an integer >= 4; got 0"):
        data.load_text_splits((TEXTS, LABELS), max_examples=0)


@pytest.mark.parametrize("extension", [".csv", ".tsv", ".jsonl"])
def test_local_text_files_with_named_columns(tmp_path, extension):
    path = tmp_path / f"reviews{extension}"
    rows = [
        {"review": text, "verdict": label, "id": i}
        for i, (text, label) in enumerate(zip(TEXTS, LABELS, strict=True))
    ]
    if extension == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        separator = "\t" if extension == ".tsv" else ","
        lines = [separator.join(["id", "review", "verdict"])]
        lines += [separator.join([str(row["id"]), f'"{row["review"]}"', row["verdict"]]) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    validation = tmp_path / f"dev{extension}"
    validation.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    splits = data.load_text_splits(
        str(path), validation=str(validation), text_key="review", label_key="verdict", label_names=["rotten", "fresh"]
    )
    assert splits.label_names == ["rotten", "fresh"] and splits.validation_source == str(validation)
    assert splits.class_counts["train"] == {"rotten": 12, "fresh": 12} == splits.class_counts["validation"]
    assert _all(splits.train)[:2] == [(b"a fine film", 1), (b"dull and long", 0)]


def test_tfds_text_dataset_keys_from_features(tmp_path):
    # Without metadata files, mocked tfds datasets know no split names: name the validation split.
    with tfds.testing.mock_data(num_examples=12):
        splits = data.load_text_splits("glue/sst2", data_dir=str(tmp_path), validation="validation", download=True)
        with pytest.raises(ValueError, match=r"text_key='title' is not a Text feature.*\['sentence'\]"):
            data.load_text_splits("glue/sst2", data_dir=str(tmp_path), text_key="title", download=True)
    assert splits.label_names == ["negative", "positive"]
    assert splits.validation_source == "the dataset's 'validation' split"
    assert splits.train_size == splits.validation_size == 12
    text, label = _all(splits.train)[0]
    assert isinstance(text, bytes) and label in (0, 1)


def test_tfds_image_dataset_without_validation_split_is_split_stratified(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        splits = data.load_image_splits("tf_flowers", data_dir=str(tmp_path), download=True, validation_fraction=0.2)
        prepared = data.image_pipelines(splits, (32, 32), batch_size=16)
        images, labels = next(iter(prepared.validation))
        validation_labels = np.concatenate([y for _, y in prepared.validation.as_numpy_iterator()])
        train_labels = np.concatenate([y for _, y in prepared.train.as_numpy_iterator()])
    assert splits.label_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert splits.validation_source.startswith("stratified 20% of train")
    assert splits.train_size + splits.validation_size == 40
    assert list(np.bincount(validation_labels, minlength=5)) == list(splits.class_counts["validation"].values())
    assert list(np.bincount(train_labels, minlength=5)) == list(splits.class_counts["train"].values())
    assert images.shape[1:] == (32, 32, 3) and images.dtype == tf.float32
    pixels = images.numpy()  # resized, rounded to uint8 then cast: whole numbers in 0..255, not a constant
    assert np.array_equal(pixels, np.clip(np.round(pixels), 0, 255)) and pixels.max() > pixels.min()
    with tfds.testing.mock_data(num_examples=40):
        subset = data.load_image_splits("tf_flowers", data_dir=str(tmp_path), download=True, max_examples=15)
        assert subset.train_size + subset.validation_size == 15
        assert len(_all(subset.train)) == subset.train_size and len(_all(subset.validation)) == subset.validation_size


def test_tfds_image_folder_builder_uses_its_own_validation_split(tmp_path):
    for split, count in (("train", 6), ("validation", 3), ("test", 2)):
        for label in ("cat", "dog"):
            _write_images(tmp_path / split / label, count, ".png", seed=count)
    builder = tfds.folder_dataset.ImageFolder(str(tmp_path))
    splits = data.load_image_splits(builder)
    assert splits.label_names == ["cat", "dog"] and splits.validation_source == "the dataset's 'validation' split"
    assert splits.class_counts == {"train": {"cat": 6, "dog": 6}, "validation": {"cat": 3, "dog": 3}}
    image, _ = _all(splits.train)[0]
    assert image.shape == (9, 7, 3) and image.dtype == np.uint8
    assert data.load_image_splits(builder, validation="test", verbose=False).validation_size == 4
    with pytest.raises(ValueError, match=r"validation must be a split of tfds image_folder"):
        data.load_image_splits(builder, validation="dev")


def test_tfds_dataset_missing_offline_gives_one_clear_error(tmp_path):
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.load_text_splits("imdb_reviews", data_dir=str(tmp_path))
    message = str(error.value)
    assert "'imdb_reviews'" in message and str(tmp_path) in message
    assert "tfds build imdb_reviews" in message and "download=True" in message
    assert os.listdir(tmp_path) == []  # nothing was downloaded or prepared
    with pytest.raises(ValueError, match="neither an existing file or folder .* nor a tfds dataset name"):
        data.load_image_splits("no_such_folder_or_dataset", data_dir=str(tmp_path))


def test_image_folder_all_formats_corrupt_files_skipped_or_strict(tmp_path):
    for label, extension in (("bird", ".jpg"), ("cat", ".png"), ("dog", ".bmp"), ("fish", ".gif")):
        _write_images(tmp_path / label, 5, extension)
    (tmp_path / "cat" / "broken.png").write_bytes(b"not an image at all")
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    splits = data.load_image_splits(str(tmp_path), validation_fraction=0.2)
    assert splits.label_names == ["bird", "cat", "dog", "fish"]
    assert splits.skipped_files == (str(tmp_path / "cat" / "broken.png"),)
    assert "skipped 1 unreadable" in splits.summary()
    assert splits.class_counts == {
        "train": dict.fromkeys(splits.label_names, 4),
        "validation": dict.fromkeys(splits.label_names, 1),
    }
    prepared = data.image_pipelines(splits, (40, 32), batch_size=4)
    shapes = {tuple(images.shape[1:]) for images, _ in prepared.train.as_numpy_iterator()}
    assert shapes == {(40, 32, 3)}
    with pytest.raises(ValueError, match=r"1 image file\(s\).*broken\.png.*strict=False"):
        data.load_image_splits(str(tmp_path), strict=True)


def _csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_bad_text_data_errors(tmp_path):
    with pytest.raises(ValueError, match=r"no column 'text'.*\['body', 'label'\].*text_key="):
        data.load_text_splits(_csv(tmp_path, "body,label\nhello,a\nbye,b\n"))
    with pytest.raises(ValueError, match=r"not in the label list \['neg', 'pos'\]: \['meh'\]"):
        data.load_text_splits((TEXTS[:3], ["pos", "neg", "meh"]), label_names=["neg", "pos"])
    with pytest.raises(ValueError, match=r"must index label_names"):
        data.load_text_splits((TEXTS[:3], [0, 1, 2]), label_names=["neg", "pos"])
    with pytest.raises(ValueError, match="single class"):
        data.load_text_splits((TEXTS[:6], ["pos"] * 6))
    with pytest.raises(ValueError, match=r"data.jsonl must hold strings; line 2 holds float 2\.5"):
        jsonl = tmp_path / "data.jsonl"
        jsonl.write_text('{"text": "ok", "label": "a"}\n{"text": 2.5, "label": "b"}\n', encoding="utf-8")
        data.load_text_splits(str(jsonl))
    with pytest.raises(ValueError, match="holds no examples"):
        data.load_text_splits((TEXTS[:4], LABELS[:4]), validation=([], []))
    with pytest.raises(ValueError, match=r"validation_fraction must be a number in \(0, 1\); got 1.5"):
        data.load_text_splits((TEXTS, LABELS), validation_fraction=1.5)


def test_bad_image_data_errors(tmp_path):
    _write_images(tmp_path / "cat", 3, ".png")
    os.makedirs(tmp_path / "dog")
    (tmp_path / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"class folder .*dog has no images"):
        data.load_image_splits(str(tmp_path))
    with pytest.raises(ValueError, match=r"not in the label list \['cat', 'dog'\]: \['cow'\]"):
        _write_images(tmp_path / "cow", 2, ".jpg")
        data.load_image_splits(str(tmp_path), label_names=["cat", "dog"])
    with pytest.raises(ValueError, match="single class"):
        data.load_image_splits((np.zeros((4, 8, 8, 3)), [1, 1, 1, 1]), label_names=["a", "b"])
    with pytest.raises(ValueError, match=r"numeric array \[N, H, W, 3\]"):
        data.load_image_splits((np.zeros((4, 8, 8, 2)), [0, 1, 0, 1]))

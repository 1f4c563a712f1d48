"""load_keras_model: a .keras file (or the newest in a directory), and errors that say what is wrong with the file."""

import os
import shutil
import zipfile

import keras
import numpy as np
import pytest

import tftune
from tftune import cli


@pytest.fixture(scope="module")
def saved_model_path(small_resnet_preset, tmp_path_factory):
    model = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32), labels=["ant", "bee"])
    path = str(tmp_path_factory.mktemp("models") / "insects.keras")
    model.save(path)
    return model, path


def test_loads_the_classifier_from_a_file_or_the_newest_in_a_directory(saved_model_path, tmp_path):
    model, path = saved_model_path
    loaded = tftune.load_keras_model(path)
    assert (loaded.kind, loaded.labels) == ("image", ["ant", "bee"])
    images = np.random.RandomState(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    shutil.copy(path, checkpoints / "epoch_2.keras")
    (checkpoints / "epoch_1.keras").write_bytes(b"")
    os.utime(checkpoints / "epoch_1.keras", (1, 1))
    assert tftune.load_keras_model(checkpoints).labels == ["ant", "bee"]
    os.utime(checkpoints / "epoch_2.keras", (0, 0))
    with pytest.raises(ValueError, match="epoch_1.keras' exists but is not a readable Keras archive"):
        tftune.load_keras_model(checkpoints)


def test_an_empty_or_truncated_file_is_not_a_readable_keras_archive(saved_model_path, tmp_path):
    _, path = saved_model_path
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="exists but is not a readable Keras archive: it is empty") as raised:
        tftune.load_keras_model(empty)
    assert str(empty) in str(raised.value) and "model.save" in str(raised.value)
    with open(path, "rb") as model_file:
        content = model_file.read()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=rf"\({len(content) // 2} bytes\) is not a zip archive"):
        tftune.load_keras_model(truncated)


def test_a_zip_without_a_model_and_other_models_are_named(tmp_path):
    not_a_model = tmp_path / "notes.keras"
    with zipfile.ZipFile(not_a_model, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ValueError, match="is a zip archive but not a loadable Keras model"):
        tftune.load_keras_model(not_a_model)
    sequential = tmp_path / "sequential.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(sequential)
    with pytest.raises(ValueError, match="holds a model tftune cannot use: a Sequential is not a tftune"):
        tftune.load_keras_model(sequential)


def test_missing_files_wrong_formats_and_empty_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such model file or directory: .*missing.keras"):
        tftune.load_keras_model(tmp_path / "missing.keras")
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"\x89HDF")
    with pytest.raises(ValueError, match=r"is not a '\.keras' file \(a '\.weights\.h5' file lacks"):
        tftune.load_keras_model(weights)
    with pytest.raises(ValueError, match="holds no '.keras' file"):
        tftune.load_keras_model(tmp_path)


def test_the_cli_export_of_a_corrupt_file_exits_with_the_reason(tmp_path, capsys):
    corrupt = tmp_path / "model.keras"
    corrupt.write_bytes(b"PK\x03\x04 half of a zip")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", str(corrupt), "--base-dir", str(tmp_path / "saved_models")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"'{corrupt}' exists but is not a readable Keras archive" in error and "File not found" not in error
    assert not os.path.exists(tmp_path / "saved_models")

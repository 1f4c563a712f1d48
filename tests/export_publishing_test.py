"""Versioned publishing: versions, atomic publish on failure and on a full disk, argument checks, export_from_file."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import decoded, image_bytes, image_model_from, keras_image_probabilities

from tftune import export

pytest_plugins = ["export_fixtures"]
# With pytest-xdist (`make test`), every test of the session-scoped exports runs on one worker: exported once.
pytestmark = pytest.mark.xdist_group("exports")

# Exports a .keras model into base_dir with writes capped (a file size limit,
# or a tiny filesystem mounted by the caller) and reports what is left.
_EXPORT_WITHOUT_ROOM = r"""
import json, os, resource, signal, sys
import tftune
model_path, base_dir, file_size_limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = tftune.load_keras_model(model_path)
if file_size_limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
try:
    tftune.export_saved_model(model, base_dir, name="pets", warmup=False, verify=False)
    error = None
except OSError as raised:
    error = str(raised)
left = {"base_dir": sorted(os.listdir(base_dir)), "pets": sorted(os.listdir(os.path.join(base_dir, "pets")))}
print(json.dumps({"error": error, **left}))
"""
_TINY_FILESYSTEM_BYTES = 256 * 1024
_FILE_SIZE_LIMIT = 200_000


def _tiny_filesystem_mountable() -> bool:
    """Whether an unprivileged user namespace may mount a size-limited tmpfs here (often not in containers)."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as mount_point:
        command = ["unshare", "--user", "--map-root-user", "--mount", "mount", "-t", "tmpfs", "-o", "size=64k",
                   "tmpfs", mount_point]
        return subprocess.run(command, capture_output=True).returncode == 0


def _export_pets(model, base_dir, **kwargs):
    return export.export_saved_model(model, base_dir, name="pets", verify=False, **kwargs)


@pytest.mark.slow
def test_versions_count_up_and_a_failed_export_leaves_nothing_behind(image_model, tmp_path):
    base_dir = str(tmp_path / "saved_models")
    assert [_export_pets(image_model, base_dir, warmup=False).version for _ in range(2)] == [1, 2]
    # The SavedModel is written before the warm-up requests fail to decode these bytes.
    with pytest.raises(tf.errors.InvalidArgumentError):
        _export_pets(image_model, base_dir, warmup_examples=[b"not an image"])
    assert sorted(os.listdir(os.path.join(base_dir, "pets"))) == ["1", "2"]
    assert _export_pets(image_model, base_dir).version == 3
    with pytest.raises(ValueError, match="Version 2 .* already exists"):
        _export_pets(image_model, base_dir, version=2)
    replaced = _export_pets(image_model, base_dir, version=2, overwrite=True, top_k=3)
    assert "top_k_labels" in replaced.signatures["serving_default"]["outputs"]
    with open(os.path.join(base_dir, "pets", "2", export.METADATA_FILE)) as metadata_file:
        assert "top_k_labels" in json.load(metadata_file)["signatures"]["serving_default"]["outputs"]
    assert sorted(os.listdir(os.path.join(base_dir, "pets"))) == ["1", "2", "3"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "limit", ["file_size_limit"] + (["tiny_filesystem"] if _tiny_filesystem_mountable() else [])
)
def test_a_full_disk_is_one_line_naming_the_directory_and_the_bytes_needed(image_model, tmp_path, limit):
    model_path = str(tmp_path / "pets.keras")
    image_model.save(model_path)
    base_dir = str(tmp_path / "disk" / "saved_models")
    os.makedirs(base_dir)
    command = [sys.executable, "-c", _EXPORT_WITHOUT_ROOM, model_path, base_dir]
    if limit == "file_size_limit":
        command.append(str(_FILE_SIZE_LIMIT))
        reason = "File too large"
    else:
        mount = f'mount -t tmpfs -o size={_TINY_FILESYSTEM_BYTES} tmpfs "$0" && mkdir "$0/saved_models" && exec "$@"'
        command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, os.path.dirname(base_dir),
                   *command, "0"]
        reason = "No space left on device"
    process = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert process.returncode == 0, process.stderr[-3000:]
    outcome = json.loads(process.stdout.strip().splitlines()[-1])
    needed = sum(weight.numpy().nbytes for weight in image_model.weights)
    assert needed > _TINY_FILESYSTEM_BYTES > _FILE_SIZE_LIMIT
    assert outcome["error"] is not None and "\n" not in outcome["error"]
    expected_start = f"Export to '{base_dir}/pets' failed: {reason}. It needs at least {needed} bytes"
    assert outcome["error"].startswith(expected_start)
    assert "Nothing was published" in outcome["error"]
    if limit == "file_size_limit":
        assert f"file size limit (ulimit -f) {_FILE_SIZE_LIMIT} bytes" in outcome["error"]
    assert outcome["base_dir"] == ["pets"] and outcome["pets"] == []  # no version, no staging directory


def test_bad_arguments_raise_together_before_anything_is_written(image_model, tmp_path):
    base_dir = tmp_path / "saved_models"
    cases = [
        (dict(model=keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])), "a Sequential is not a tftune"),
        (dict(name="a/b"), "not a valid model name"),
        (dict(name=".."), "not a valid model name"),
        (dict(name="../escape"), "not a valid model name"),
        (dict(name='say "hi"'), "not a valid model name"),
        (dict(version="2"), "version must be an integer >= 1; got '2'"),
        (dict(version=1.5), "version must be an integer >= 1; got 1.5"),
        (dict(version=0), "version must be an integer >= 1; got 0"),
        (dict(top_k=4), r"top_k must be an integer in \[1, 3\]; got 4"),
        (dict(warmup_examples=["not bytes"]), "JPEG / PNG bytes"),
    ]
    for overrides, message in cases:
        arguments = dict(model=image_model, base_dir=str(base_dir), name="pets") | overrides
        with pytest.raises(ValueError, match=message):
            export.export_saved_model(**arguments)
    with pytest.raises(ValueError, match="3 invalid options") as raised:
        export.export_saved_model(image_model, str(base_dir), name="a/b", version=0, top_k=True)
    assert len(str(raised.value).splitlines()) == 4 and "top_k must be an integer" in str(raised.value)
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


def test_export_from_keras_file_and_checkpoint_directory(image_model, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    image_model.save(str(checkpoints / "epoch_1.keras"))
    base_dir = str(tmp_path / "saved_models")
    result = export.export_from_file(str(checkpoints), base_dir, name="pets", warmup=False, verify=False)
    assert (result.path, result.kind) == (os.path.join(base_dir, "pets", "1"), "image")
    images = tf.constant(np.stack([decoded(item) for item in image_bytes()]))
    served = tf.saved_model.load(result.path).signatures["serve_images"](images=images)
    expected = keras_image_probabilities(image_model, image_bytes())
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"'.*empty\.keras' exists but is not a readable Keras archive"):
        export.export_from_file(str(empty), base_dir)
    assert os.listdir(base_dir) == ["pets"]


def _model_whose_head_activation_is(preset, activation):
    """A fresh image classifier whose output layer applies `activation` (a user's own Python code) to its logits."""
    model = image_model_from(preset)
    model.get_layer("probabilities").activation = activation
    return model


def _softmax_in_python(logits):
    """Softmax in a `tf.py_function`: Python code in the graph, which a SavedModel cannot carry to a model server."""
    probabilities = tf.py_function(tf.nn.softmax, [logits], tf.float32)
    return tf.ensure_shape(probabilities, logits.shape)


def _softmax_shifted_when_traced(logits):
    """Keras (eager) calls get the softmax; the traced serving graph gets it rolled by one class."""
    return tf.nn.softmax(logits if tf.executing_eagerly() else tf.roll(logits, 1, axis=-1))


@pytest.mark.slow
def test_the_pre_publish_check_refuses_an_export_that_does_not_run_or_disagrees(small_resnet_preset, tmp_path):
    base_dir = tmp_path / "saved_models"
    python_in_graph = _model_whose_head_activation_is(small_resnet_preset, _softmax_in_python)
    with pytest.raises(
        RuntimeError,
        match=r"does not load and run in a process with only tensorflow .*, where tftune, keras_hub, keras, "
        r"tf_keras cannot be imported; nothing was published\.(.|\n)*pyfunc",
    ):
        export.export_saved_model(python_in_graph, base_dir, name="pets", warmup=False)
    shifted = _model_whose_head_activation_is(small_resnet_preset, _softmax_shifted_when_traced)
    expected = keras_image_probabilities(shifted, image_bytes())
    keras_labels = [shifted.labels[index] for index in expected.argmax(-1)]
    served_labels = [shifted.labels[index] for index in np.roll(expected, 1, axis=-1).argmax(-1)]
    assert served_labels != keras_labels  # a roll by one class moves every argmax
    with pytest.raises(
        RuntimeError,
        match=rf"disagrees with the Keras model: .* served labels {re.escape(str(served_labels))}, "
        rf"Keras labels {re.escape(str(keras_labels))}; nothing was published\.",
    ):
        export.export_saved_model(shifted, base_dir, name="pets", warmup=False, warmup_examples=image_bytes())
    assert os.listdir(base_dir / "pets") == []  # no version, no staging directory left

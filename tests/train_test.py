"""tftune.fit: one replica vs two CPU replicas, model-in-scope checks, and resuming after SIGKILL."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import distribute
from tftune.builders import ModelSpec
from tftune.options import DistributionOptions, OptimizerOptions
from tftune.train import fit
from tftune.unfreeze import GradualUnfreezing

TWO_CPUS = ["/cpu:0", "/cpu:1"]
_CPU_BATCHES_OF_4 = DistributionOptions("cpu", batch_size=4)


def _image_examples(count=16, size=32):
    images = np.random.RandomState(1).uniform(0, 255, (count, size, size, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((images, np.arange(count) % 2))


def _fit_weights(spec, data, strategy, batch_size, **kwargs):
    keras.utils.set_random_seed(0)
    result = fit(spec, data, epochs=1, optimization=OptimizerOptions("sgd", learning_rate=0.05),
                 distribution=DistributionOptions(strategy=strategy, batch_size=batch_size), verbose=0, **kwargs)
    return result, [weight.numpy() for weight in result.model.weights]


@pytest.mark.slow
def test_two_replicas_match_one_replica_on_a_small_resnet(small_resnet_preset):
    # tftune.fit synchronizes BatchNorm over the replicas (stage_4's BN trains from step 2),
    # so both runs normalise with the same global-batch statistics; only summation order differs.
    spec = ModelSpec("image", small_resnet_preset, 2, options={"image_size": (32, 32), "dropout": 0.0, "weights": None})
    unfreezing = dict(unit="step", schedule={0: 0, 2: 1}, verbose=0)
    single, single_weights = _fit_weights(
        spec, _image_examples(32), "cpu", 8, unfreezing=GradualUnfreezing(**unfreezing)
    )
    mirrored_strategy = distribute.get_strategy("mirrored", devices=TWO_CPUS)
    mirrored, mirrored_weights = _fit_weights(
        spec, _image_examples(32), mirrored_strategy, 4, unfreezing=GradualUnfreezing(**unfreezing)
    )
    assert mirrored.strategy.num_replicas_in_sync == 2
    changed = []
    for weight, before, one, two in zip(
        mirrored.model.weights, _initial_weights(spec), single_weights, mirrored_weights, strict=True
    ):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-5, err_msg=weight.path)
        changed += [weight.path] * (not np.allclose(before, one))
    assert "stack3_block0_1_bn/moving_mean" in changed
    assert len(changed) >= 3  # head kernel, head bias, and the unfrozen top stage trained
    np.testing.assert_allclose(single.history["loss"], mirrored.history["loss"], rtol=1e-4)


def _initial_weights(spec):
    keras.utils.set_random_seed(0)
    return [weight.numpy() for weight in spec.build().weights]


@pytest.mark.slow
def test_two_replicas_match_one_replica_on_bert(tiny_bert_preset, rotten_tomatoes):
    # A 1-layer BERT: the same inputs (keras-hub's bool padding_mask among them) and layers as MiniLM's.
    spec = ModelSpec("text", tiny_bert_preset, 2, options={"sequence_length": 16, "dropout": 0.0})

    def examples(model):
        features = model.preprocessor(rotten_tomatoes.texts[:8])
        return tf.data.Dataset.from_tensor_slices((features, rotten_tomatoes.labels[:8]))

    runs = []
    for strategy, per_replica in (("cpu", 4), (distribute.get_strategy("mirrored", devices=TWO_CPUS), 2)):
        keras.utils.set_random_seed(0)
        runs.append(
            fit(spec, examples, epochs=1, optimization=OptimizerOptions("sgd", learning_rate=1e-1),
                # float32: the tolerance below is float32's ("auto" trains text in bfloat16 on AMX CPUs).
                distribution=DistributionOptions(strategy=strategy, batch_size=per_replica, precision="float32"),
                unfreezing=GradualUnfreezing({0: 0, 1: "all"}, unit="step", verbose=0), verbose=0)
        )
    single, mirrored = runs
    assert mirrored.strategy.num_replicas_in_sync == 2
    # Step 1 trained the encoder layer too: its weights left the preset's.
    preset_layer = keras_hub.models.BertBackbone.from_preset(tiny_bert_preset).get_layer("transformer_layer_0")
    trained_layer = single.model.backbone.get_layer("transformer_layer_0")
    assert not np.allclose(preset_layer.get_weights()[0], trained_layer.get_weights()[0])
    # Stated tolerance: float32 sums in another order over 2 SGD steps.
    for one, two in zip(single.model.weights, mirrored.model.weights, strict=True):
        np.testing.assert_allclose(one.numpy(), two.numpy(), rtol=1e-4, atol=1e-6, err_msg=one.path)
    np.testing.assert_allclose(single.evaluation["loss"], mirrored.evaluation["loss"], rtol=1e-5)


def test_a_model_built_outside_a_distributed_scope_is_rejected(small_resnet_preset, tmp_path):
    model = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32), weights=None)
    with pytest.raises(ValueError, match=r"created outside the scope of the MirroredStrategy with 2 replica\(s\)"):
        fit(model, _image_examples(), epochs=1,
            distribution=DistributionOptions(distribute.get_strategy("mirrored", devices=TWO_CPUS), batch_size=4))
    with pytest.raises(
        ValueError, match="precision='mixed_bfloat16' but the model was built with the 'float32' policy"
    ):
        fit(model, _image_examples(), epochs=1, distribution={"precision": "mixed_bfloat16", "batch_size": 4})
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ValueError, match="the tensorboard package is not installed"):
            fit(model, _image_examples(), epochs=1, distribution={"batch_size": 4}, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="ModelSpec.kind must be one of"):
        ModelSpec("audio", "x", 2)
    plain_multi_worker = tf.distribute.MultiWorkerMirroredStrategy()  # local mode: no TF_CONFIG here
    with pytest.raises(ValueError, match=r"plain tf.distribute.MultiWorkerMirroredStrategy \(keras-team/keras#20585\)"):
        fit(model, _image_examples(), epochs=1, distribution=DistributionOptions(plain_multi_worker, batch_size=4))


def test_fit_returns_history_evaluation_and_best_checkpoint(small_resnet_preset, tmp_path):
    spec = {"kind": "image", "backbone": small_resnet_preset, "num_classes": 2,
            "options": {"image_size": (32, 32), "weights": None}}
    result = fit(spec, _image_examples(8), _image_examples(4), epochs=2, distribution=_CPU_BATCHES_OF_4,
                 checkpoint_dir=tmp_path, early_stopping_patience=3, tensorboard=False, verbose=0)
    assert sorted(result.history) == ["accuracy", "loss", "trainable_params", "val_accuracy", "val_loss"]
    assert len(result.history["loss"]) == 2 and set(result.evaluation) == {"accuracy", "loss"}
    assert (tmp_path / "best.weights.h5").is_file()
    assert not (tmp_path / "backup").exists()  # BackupAndRestore deletes its backup after a finished fit



class _InterruptAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_resumed_run_keeps_the_best_weights_of_the_epochs_before_the_interruption(small_resnet_preset, tmp_path):
    # Validation labels are the training labels flipped: val_loss rises as the model fits, so epoch 1 is the best.
    images = np.random.RandomState(1).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.arange(8) % 2
    train, validation = (tf.data.Dataset.from_tensor_slices((images, y)) for y in (labels, 1 - labels))
    spec = ModelSpec("image", small_resnet_preset, 2, options={"image_size": (32, 32), "dropout": 0.0, "weights": None})

    def run(callbacks):
        keras.utils.set_random_seed(0)
        return fit(spec, train, validation, epochs=3, optimization=OptimizerOptions("adam", learning_rate=1e-2),
                   distribution=_CPU_BATCHES_OF_4, unfreezing=GradualUnfreezing({0: "all"}, verbose=0),
                   checkpoint_dir=tmp_path, tensorboard=False, callbacks=callbacks, verbose=0)

    with pytest.raises(KeyboardInterrupt):
        run([_InterruptAtEpoch(1)])
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["monitor"] == "val_loss" and record["epoch"] == 0
    result = run([])
    assert len(result.history["val_loss"]) == 2  # resumed at epoch 2
    assert min(result.history["val_loss"]) > record["best"]  # the epochs after the restart are worse
    result.model.load_weights(tmp_path / "best.weights.h5")
    best_loss = result.model.evaluate(validation.batch(4), verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(best_loss, record["best"], rtol=1e-5)  # still epoch 1's weights

_TRAINER = textwrap.dedent(
    """
    import json, os, resource, signal, sys, time
    import keras, numpy as np, tensorflow as tf
    from tftune import DistributionOptions, ModelSpec, OptimizerOptions
    from tftune.train import fit
    from tftune.unfreeze import GradualUnfreezing

    preset, checkpoint_dir, journal, kill_point, schedule = sys.argv[1:6]

    class Journal(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            trainable = [group.name for group in self.model.layer_groups if group.trainable]
            with open(journal, "a") as file:
                file.write(json.dumps({"pid": os.getpid(), "epoch": epoch, "trainable": trainable}) + "\\n")
            if kill_point == f"write:{epoch}":
                # No file may grow past 100 kB from here: the kernel kills this process (SIGXFSZ) in the middle
                # of the first checkpoint written at the end of this epoch.
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it (the write would fail instead)
                resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

        def on_train_batch_end(self, batch, logs=None):
            if kill_point == f"{self._epoch}:{batch}":
                with open(journal + ".ready", "w") as file:
                    file.write("1")
                time.sleep(600)

        def on_epoch_end(self, epoch, logs=None):
            self._epoch = epoch + 1

    keras.utils.set_random_seed(0)
    images = np.random.RandomState(1).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 2))
    spec = ModelSpec("image", preset, 2, options={"image_size": (32, 32), "dropout": 0.0, "weights": None})
    callback = Journal()
    callback._epoch = 0
    unfreezing = GradualUnfreezing(None if schedule == "one_group_per_epoch" else schedule, verbose=0)
    # Validation labels are the training labels flipped: val_loss rises as the model fits, so after epoch 0 no
    # epoch beats the best and the backup is the first checkpoint written at an epoch's end.
    validation = data.map(lambda image, label: (image, 1 - label))
    result = fit(spec, data, validation, epochs=3, optimization=OptimizerOptions("adam", learning_rate=1e-3),
                 distribution=DistributionOptions("cpu", batch_size=4), unfreezing=unfreezing,
                 checkpoint_dir=checkpoint_dir, tensorboard=False, callbacks=[callback], verbose=0)
    np.savez(journal + ".npz", *[weight.numpy() for weight in result.model.weights])
    """
)


def _train(preset, checkpoint_dir, journal, kill_point="none", schedule="one_group_per_epoch"):
    return subprocess.Popen(
        [sys.executable, "-c", _TRAINER, preset, str(checkpoint_dir), str(journal), kill_point, schedule]
    )


def _journal(path):
    return [json.loads(line) for line in open(path)]


def _wait_for_kill_point(process, ready, what):
    deadline = time.time() + 600
    while not ready.exists():
        assert time.time() < deadline and process.poll() is None, f"the training process never reached {what}"
        time.sleep(0.2)


def _resumed_entries(journal, reference):
    """The journal entries of the resumed process, checked against the uninterrupted run's; returns them."""
    run = _journal(journal)
    first_pid = run[0]["pid"]
    assert [entry["epoch"] for entry in run if entry["pid"] == first_pid] == [0, 1]
    resumed = [entry for entry in run if entry["pid"] != first_pid]
    assert [entry["epoch"] for entry in resumed] == [1, 2]  # not restarted from epoch 0
    assert resumed == [dict(entry, pid=resumed[0]["pid"]) for entry in _journal(reference)[1:]]
    return resumed


def _assert_same_final_weights(reference, run):
    expected, actual = np.load(f"{reference}.npz"), np.load(f"{run}.npz")
    for name in expected.files:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sigkill_in_epoch_two_resumes_at_epoch_two_in_its_unfreezing_stage(small_resnet_preset, tmp_path):
    uninterrupted = _train(small_resnet_preset, tmp_path / "reference", tmp_path / "reference.jsonl")
    killed = _train(small_resnet_preset, tmp_path / "run", tmp_path / "run.jsonl", kill_point="1:1")
    _wait_for_kill_point(killed, tmp_path / "run.jsonl.ready", "epoch 2")
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    resumed = _train(small_resnet_preset, tmp_path / "run", tmp_path / "run.jsonl")
    assert resumed.wait(timeout=600) == 0 and uninterrupted.wait(timeout=600) == 0
    resumed_entries = _resumed_entries(tmp_path / "run.jsonl", tmp_path / "reference.jsonl")
    assert resumed_entries[0]["trainable"] == ["stage_4", "head"]  # the stage of epoch 2, not "head only"
    _assert_same_final_weights(tmp_path / "reference.jsonl", tmp_path / "run.jsonl")


@pytest.mark.slow
def test_a_head_first_run_killed_mid_epoch_or_mid_checkpoint_write_resumes_like_an_uninterrupted_run(
    small_resnet_preset, tmp_path
):
    """The default schedule for pretrained weights: its boundary is a step inside epoch 1, its resumes land after it.

    One run gets SIGKILL in epoch 2; another is killed by the kernel (SIGXFSZ, a file size limit) while its
    end-of-epoch-2 backup is half written: the resume must ignore the torn file and restart from epoch 2.
    """
    def train(name, kill_point="none"):
        return _train(small_resnet_preset, tmp_path / name, tmp_path / f"{name}.jsonl", kill_point, "head_first")

    processes = {"reference": train("reference"), "killed": train("killed", "1:1"), "torn": train("torn", "write:1")}
    _wait_for_kill_point(processes["killed"], tmp_path / "killed.jsonl.ready", "epoch 2")
    os.kill(processes["killed"].pid, signal.SIGKILL)
    assert processes["killed"].wait() == -signal.SIGKILL
    assert processes["torn"].wait(timeout=600) == -signal.SIGXFSZ
    backup = tmp_path / "torn" / "backup"
    # Killed mid-write: a weights file (a whole one is ~600 kB) stopped at the limit.
    assert any(path.suffix == ".h5" and path.stat().st_size <= 100_000 for path in backup.iterdir()), sorted(
        (path.name, path.stat().st_size) for path in backup.iterdir()
    )
    resumed = {name: train(name) for name in ("killed", "torn")}
    assert processes["reference"].wait(timeout=600) == 0
    for name, process in resumed.items():
        assert process.wait(timeout=600) == 0, name
        resumed_entries = _resumed_entries(tmp_path / f"{name}.jsonl", tmp_path / "reference.jsonl")
        assert len(resumed_entries[0]["trainable"]) == 6  # every group, past the head-first boundary
        _assert_same_final_weights(tmp_path / "reference.jsonl", tmp_path / f"{name}.jsonl")


def _imbalanced_examples():
    """28 examples, 24 of class 0 and 4 of class 1: the minority class is 1/7 of the data."""
    images = np.random.RandomState(2).uniform(0, 255, (28, 32, 32, 3)).astype("float32")
    labels = np.array([0] * 24 + [1] * 4)
    return images, labels


@pytest.mark.slow
def test_class_weight_balanced_weighs_each_example_in_the_training_loss(small_resnet_preset):
    images, labels = _imbalanced_examples()
    spec = ModelSpec("image", small_resnet_preset, 2, {"image_size": (32, 32), "weights": None, "dropout": 0.0})
    keras.utils.set_random_seed(0)
    untrained = spec.build()
    probabilities = untrained.predict(images, verbose=0)
    per_example = -np.log(probabilities[np.arange(len(labels)), labels])
    weights = tftune.balanced_class_weights(np.bincount(labels))
    assert weights == pytest.approx({0: 28 / (2 * 24), 1: 28 / (2 * 4)})
    # A rate too small to move the weights, one batch per epoch: the logged loss is the weighted one.
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    for class_weight, example_weights in [
        ("balanced", np.where(labels == 1, weights[1], weights[0])),
        ({"1": 3.0}, np.where(labels == 1, 3.0, 1.0)),
        (None, np.ones(len(labels))),
    ]:
        keras.utils.set_random_seed(0)
        result = fit(spec, data, epochs=1, optimization=OptimizerOptions("sgd", learning_rate=1e-12),
                     distribution=DistributionOptions("cpu", batch_size=28),
                     unfreezing=GradualUnfreezing({0: 0}, verbose=0), class_weight=class_weight, verbose=0)
        np.testing.assert_allclose(result.history["loss"][0], np.mean(example_weights * per_example), rtol=1e-3)


def test_class_weight_errors_before_training(small_resnet_preset):
    spec = ModelSpec("image", small_resnet_preset, 2, {"image_size": (32, 32), "weights": None})
    images, labels = _imbalanced_examples()
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    for class_weight, message in [
        ("inverse", "class_weight must be 'balanced', a dict"),
        ({2: 1.0}, r"class_weight key 2 \(a class index or label name\) must be an integer in \[0, 1\]"),
        ({0: -1.0}, r"class_weight\[0\] must be a number > 0; got -1.0"),
    ]:
        with pytest.raises(ValueError, match=message):
            fit(spec, data, epochs=1, distribution=DistributionOptions("cpu", batch_size=28),
                class_weight=class_weight, verbose=0)
    only_zeros = tf.data.Dataset.from_tensor_slices((images[:24], labels[:24]))
    with pytest.raises(ValueError, match=r"classes \[1\] have no example"):
        fit(spec, only_zeros, epochs=1, distribution=_CPU_BATCHES_OF_4, class_weight="balanced", verbose=0)

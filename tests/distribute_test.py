"""Strategies, batch sizes, precision policies, distributed datasets, and two real worker processes."""

import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import distribute, precision

TWO_CPUS = ["/cpu:0", "/cpu:1"]


@pytest.fixture
def mirrored():
    return distribute.get_strategy("mirrored", devices=TWO_CPUS)


def test_auto_picks_the_default_strategy_without_tpu_or_gpus_and_logs_it(caplog):
    with caplog.at_level(logging.INFO, logger="tftune.distribute"):
        strategy = distribute.get_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert [record.getMessage() for record in caplog.records if record.name.startswith("tftune")] == [
        "tftune strategy: default strategy (one CPU) with 1 replica(s)"
    ]


def test_cpu_mirrored_and_passthrough_strategies(mirrored, caplog):
    cpu = distribute.get_strategy("cpu")
    assert isinstance(cpu, tf.distribute.OneDeviceStrategy) and cpu.num_replicas_in_sync == 1
    assert cpu.extended.worker_devices == ("/job:localhost/replica:0/task:0/device:CPU:0",)
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == 2
    assert distribute.get_strategy(mirrored) is mirrored
    with caplog.at_level(logging.INFO, logger="tftune.distribute"):
        distribute.get_strategy("mirrored", devices=TWO_CPUS)
    assert "MirroredStrategy(" in caplog.text and "CPU:1) with 2 replica(s)" in caplog.text


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(name="horovod"), "strategy must be one of ['auto', 'cpu', 'gpu', 'mirrored', 'multi_worker', 'tpu']"),
        (dict(name="gpu"), "strategy='gpu' but TensorFlow sees no GPU"),
        (dict(name="cpu", devices=TWO_CPUS), "only applies to strategy='mirrored'"),
        (dict(name="mirrored", tpu="local"), "tpu='local' only applies to strategy='tpu' or 'auto'"),
    ],
)
def test_bad_strategy_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        distribute.get_strategy(**arguments)


def test_tpu_without_a_tpu_names_what_was_tried(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError) as error:
        distribute.get_strategy("tpu")
    message = str(error.value)
    assert message.startswith("No TPU is reachable. Tried tpu=None (TPU_NAME / Cloud TPU metadata): ValueError")
    assert "tpu='local': NotFoundError: TPUs not found in the cluster" in message
    assert "On a Cloud TPU VM pass tpu='local'" in message


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "needs the TF_CONFIG environment variable, which is not set"),
        ("{cluster: ", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty lists of 'host:port'"),
        (
            '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}',
            "TF_CONFIG['task'] must be",
        ),
        ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}', "in [0, 1)"),
    ],
)
def test_multi_worker_needs_a_well_formed_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        distribute.get_strategy("multi_worker")
    assert '"task": {"type": "worker", "index": 0}' in str(error.value)


def test_batch_size_is_per_replica_unless_told_otherwise(mirrored):
    assert distribute.global_batch_size(16, mirrored) == 32
    assert distribute.global_batch_size(32, mirrored, per_replica=False) == 32
    assert distribute.global_batch_size(16, distribute.get_strategy("cpu")) == 16
    with pytest.raises(ValueError, match="global batch_size=7 does not split evenly over 2 replicas"):
        distribute.global_batch_size(7, mirrored, per_replica=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        distribute.global_batch_size(0, mirrored)


def test_precision_policy_per_device_kind(mirrored):
    gpu = tf.distribute.OneDeviceStrategy("/gpu:0")  # only inspected, never run
    assert distribute.device_kind(mirrored) == "CPU" and distribute.device_kind(gpu) == "GPU"
    assert precision.precision_policy("auto", mirrored) == "float32"
    assert precision.precision_policy("auto", tf.distribute.get_strategy()) == "float32"
    assert precision.precision_policy("auto", gpu) == "mixed_float16"
    assert precision.precision_policy("mixed_bfloat16", mirrored) == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.precision_policy("float16", mirrored)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.slow
def test_mixed_precision_keeps_head_and_loss_float32_and_trains(small_resnet_preset, mirrored, policy):
    with mirrored.scope(), precision.precision_scope(policy):
        model = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32), weights=None)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
        distribute.use_all_replicas_loss_scaling(model)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert model.backbone.dtype_policy.name == policy
    assert model.get_layer("probabilities").compute_dtype == "float32"
    assert isinstance(model.optimizer, distribute.AllReplicasLossScaleOptimizer) == (policy == "mixed_float16")
    images = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    probabilities = model.predict(images[:2], verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    data = distribute.distribute_dataset(
        tf.data.Dataset.from_tensor_slices((images, np.arange(8) % 2)), mirrored, global_batch_size=4
    )
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert [weight.path for weight in model.weights if not np.all(np.isfinite(weight.numpy()))] == []
    if policy == "mixed_float16":
        _replica_one_overflows_only_keras_own_loss_scaler_applies_it(small_resnet_preset, mirrored)


def _replica_one_overflows_only_keras_own_loss_scaler_applies_it(preset, mirrored):
    """Replica 1 gets pixels of 6e4 (float16 gradients overflow), replica 0 ordinary ones, 8 steps of SGD.

    Measured: Keras' LossScaleOptimizer (replica 0's gradients checked) applies replica 1's overflow and 52 weights
    end non-finite; tftune's skips those steps (3 of 8) on both replicas and every weight stays finite.
    """
    images = np.random.RandomState(0).uniform(0, 255, (32, 32, 32, 3)).astype("float32")
    images[np.arange(32) % 4 >= 2] *= 6e4 / 255  # positions 2, 3 of each global batch of 4: replica 1's share
    data = distribute.distribute_dataset(
        tf.data.Dataset.from_tensor_slices((images, np.arange(32) % 2)), mirrored, global_batch_size=4
    )
    non_finite, steps = {}, {}
    for all_replicas in (True, False):
        keras.utils.set_random_seed(1)
        with mirrored.scope(), precision.precision_scope("mixed_float16"):
            model = tftune.build_image_classifier(preset, 2, image_size=(32, 32), weights=None)
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
            if all_replicas:
                distribute.use_all_replicas_loss_scaling(model)
        model.fit(data, epochs=1, verbose=0)
        non_finite[all_replicas] = [w.path for w in model.weights if not np.all(np.isfinite(w.numpy()))]
        steps[all_replicas] = int(model.optimizer.iterations.numpy())
    assert non_finite[True] == [] and 0 < steps[True] < 8  # some steps skipped, the others applied
    assert non_finite[False] != []  # the control: the overflow the fix is for


def test_distribute_dataset_batches_shards_and_keeps_the_partial_batch(mirrored):
    examples = tf.data.Dataset.from_tensor_slices(
        ({"ids": np.arange(10), "mask": np.arange(10) % 3 > 0}, np.arange(10))
    )
    batches = distribute.distribute_dataset(examples, mirrored, global_batch_size=4)
    assert batches.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    features, _ = batches.element_spec
    assert features["mask"].dtype == tf.int32
    sizes = [int(labels.shape[0]) for _, labels in batches]
    assert sizes == [4, 4, 2]
    distributed = mirrored.experimental_distribute_dataset(batches)
    per_replica = [
        [int(tensor.shape[0]) for tensor in mirrored.experimental_local_results(labels)] for _, labels in distributed
    ]
    assert per_replica == [[2, 2], [2, 2], [1, 1]]


def test_bool_padding_mask_pipeline_trains_bert_on_two_replicas(tiny_bert_preset, mirrored):
    with mirrored.scope():
        model = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=16, dropout=0.0)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    features = model.preprocessor(["a fine film", "dull and long", "great fun", "a mess"])
    features["padding_mask"] = tf.cast(features["padding_mask"], tf.bool)  # keras-hub's own dtype
    examples = tf.data.Dataset.from_tensor_slices((features, np.array([1, 0, 1, 0])))
    data = distribute.distribute_dataset(examples, mirrored, global_batch_size=4)
    assert data.element_spec[0]["padding_mask"].dtype == tf.int32
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def train_small_resnet(preset, checkpoint_dir, strategy):
    """3 SGD steps at global batch 8; the head trains from step 0, every group (BatchNorm too) from step 1."""
    keras.utils.set_random_seed(0)
    images = np.random.RandomState(1).uniform(0, 255, (24, 32, 32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(24) % 2))
    spec = tftune.ModelSpec("image", preset, 2, options={"image_size": (32, 32), "dropout": 0.0, "weights": None})
    result = tftune.fit(
        spec, data, epochs=1, optimization=tftune.OptimizerOptions("sgd", learning_rate=0.05),
        distribution=tftune.DistributionOptions(strategy, batch_size=8 // strategy.num_replicas_in_sync),
        checkpoint_dir=checkpoint_dir, tensorboard=False, verbose=0,
        # One learning-rate clock: with the default per-stage restart, two worker processes agree with each
        # other but not with one process (max |difference| 2e-3 after 3 steps; an open issue, see the README).
        unfreezing=tftune.GradualUnfreezing({0: 0, 1: "all"}, unit="step", restart_schedule=False, verbose=0),
    )
    weights = {weight.path: weight.numpy() for weight in result.model.weights}
    return weights, {"history": result.history, "evaluation": result.evaluation}


_WORKER = textwrap.dedent(
    """
    import json, logging, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from distribute_test import distribute, train_small_resnet

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    strategy = distribute.get_strategy("multi_worker")  # before any other TensorFlow work
    weights, logs = train_small_resnet(sys.argv[2], sys.argv[3], strategy)
    np.savez(sys.argv[4], **weights)
    with open(sys.argv[4] + ".json", "w") as file:
        json.dump(logs, file)
    """
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_two_worker_processes_train_identical_weights_equal_to_one_process(small_resnet_preset, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, os.path.dirname(__file__), small_resnet_preset,
                 str(tmp_path / "run"), str(tmp_path / f"worker{index}.npz")],
                env=dict(os.environ, TF_CONFIG=json.dumps(tf_config)), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True,
            )
        )
    single, single_logs = train_small_resnet(small_resnet_preset, tmp_path / "single", distribute.get_strategy("cpu"))
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for index, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, output[-3000:]
        assert f"tftune strategy: MultiWorkerMirroredStrategy(worker {index} of 2) with 2 replica(s)" in output

    first, second = (np.load(tmp_path / f"worker{index}.npz") for index in range(2))
    initial = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32), weights=None)
    assert first.files == second.files == list(single) == [weight.path for weight in initial.weights]
    for name in first.files:  # every weight, BatchNorm moving statistics included
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    # The README's tolerance, 1e-5: the same 3 SGD steps with float32 sums in another order (measured max 1.5e-6).
    for name in first.files:
        np.testing.assert_allclose(first[name], single[name], rtol=1e-5, atol=1e-5, err_msg=name)
    moved = [weight.path for weight in initial.weights if not np.allclose(weight.numpy(), single[weight.path])]
    assert "conv1_bn/moving_mean" in moved and "conv1_conv/kernel" in moved and "probabilities/kernel" in moved

    logs = [json.load(open(tmp_path / f"worker{index}.npz.json")) for index in range(2)]
    assert logs[0] == logs[1]
    np.testing.assert_allclose(logs[0]["history"]["loss"], single_logs["history"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(logs[0]["evaluation"]["loss"], single_logs["evaluation"]["loss"], rtol=1e-5)
    # One shared checkpoint_dir: the chief writes to it, worker 1 to its own subdirectory.
    assert (tmp_path / "run" / "best.weights.h5").is_file()
    assert (tmp_path / "run" / "worker_1" / "best.weights.h5").is_file()

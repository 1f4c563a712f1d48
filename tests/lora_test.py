"""LoRA as a training mode: adapters train, base kernels stay pristine through fit, restart and export."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune._keras_private import base_kernel
from tftune.lora import lora_layers

TEXTS = ["a fine film", "the worst thing this year", "ok", "a joy from start to end"] * 2
LABELS = [0, 1, 0, 1] * 2


def _examples(model):
    return tf.data.Dataset.from_tensor_slices((model.preprocessor(tf.constant(TEXTS)), LABELS))


def test_lora_trains_adapters_and_head_base_kernels_stay_bit_identical(tiny_bert_preset):
    spec = tftune.ModelSpec("text", tiny_bert_preset, 2, options={"sequence_length": 8, "dropout": 0.0})
    pristine = spec.build()
    result = tftune.fit(
        spec, _examples(pristine), epochs=2, optimization=tftune.OptimizerOptions(learning_rate=1e-2),
        distribution=tftune.DistributionOptions("cpu", batch_size=4), lora=tftune.LoraOptions(rank=4),
        unfreezing=tftune.GradualUnfreezing("head_first", verbose=0), verbose=0,
    )
    model = result.model
    adapted = lora_layers(model)
    assert [layer.name for layer in adapted] == ["value", "query"]
    for layer in adapted:
        assert np.abs(np.asarray(layer.lora_kernel_b)).max() > 0  # zero-initialized, trained
    trained_ids = {
        id(variable) for layer in adapted for variable in (layer.lora_kernel_a, layer.lora_kernel_b, layer.bias)
    }
    pristine_weights = {weight.path: weight for weight in pristine.backbone.weights}
    checked = 0
    for trained in model.backbone.weights:  # base kernels included: bit-identical to the pretrained ones
        if id(trained) not in trained_ids:
            np.testing.assert_array_equal(trained, pristine_weights[trained.path], err_msg=trained.path)
            checked += 1
    assert checked == len(pristine.backbone.weights) - len(adapted)  # every weight but the adapted biases
    head_before = pristine.get_layer("probabilities").kernel
    assert not np.array_equal(model.get_layer("probabilities").kernel, head_before)


def test_families_without_attention_refuse_lora_by_name(small_resnet_preset):
    model = tftune.build_image_classifier(small_resnet_preset, 2, image_size=(32, 32))
    with pytest.raises(ValueError, match="ResNet backbones have no attention layers LoRA can target"):
        tftune.enable_lora(model, rank=4)
    with pytest.raises(ValueError, match=r"LoraOptions.rank must be an integer >= 1; got 0"):
        tftune.fit(tftune.ModelSpec("image", small_resnet_preset, 2), tf.data.Dataset.range(1), epochs=1,
                   lora={"rank": 0})
    with pytest.raises(ValueError, match=r"^rank must be an integer >= 1; got 0"):
        tftune.enable_lora(model, rank=0)


def test_adapters_file_round_trip_by_layer_path(tiny_bert_preset, tmp_path):
    model = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=8)
    tftune.enable_lora(model, rank=2, alpha=4)
    for layer in lora_layers(model):
        layer.lora_kernel_b.assign(np.random.RandomState(0).normal(size=layer.lora_kernel_b.shape))
    path = tftune.save_adapters(model, tmp_path / "adapters.weights.h5")
    assert os.path.getsize(path) < 200_000
    fresh = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=8)
    fresh.get_layer("probabilities").set_weights(model.get_layer("probabilities").get_weights())
    tftune.load_adapters(fresh, path)
    inputs = model.preprocessor(tf.constant(TEXTS))
    np.testing.assert_allclose(fresh(inputs), model(inputs), atol=1e-6)
    assert [layer.lora_alpha for layer in lora_layers(fresh)] == [4.0, 4.0]
    other = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=8)
    tftune.enable_lora(other, rank=3)
    with pytest.raises(ValueError, match="lora_kernel_a has shape"):
        tftune.load_adapters(other, path)


def test_saved_model_has_the_adapters_merged_and_matches_keras(tiny_bert_preset, tmp_path):
    model = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=8)
    tftune.enable_lora(model, rank=2)
    for layer in lora_layers(model):
        layer.lora_kernel_b.assign(np.full(layer.lora_kernel_b.shape, 0.5, "float32"))
    result = tftune.export_saved_model(model, str(tmp_path), name="lora", warmup=False, verify=True)
    names = [name for name, _ in tf.train.list_variables(os.path.join(result.path, "variables", "variables"))]
    assert names and not [name for name in names if "lora" in name]
    served = tf.saved_model.load(result.path).signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(served["probabilities"], model(model.preprocessor(tf.constant(TEXTS))), atol=1e-5)


_TRAINER = textwrap.dedent(
    """
    import json, os, sys, time
    import keras, numpy as np, tensorflow as tf
    import tftune
    from tftune._keras_private import base_kernel
    from tftune.lora import lora_layers

    preset, checkpoint_dir, journal, kill_epoch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    class Journal(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            with open(journal, "a") as file:
                file.write(json.dumps({"pid": os.getpid(), "epoch": epoch}) + "\\n")
            if epoch == kill_epoch:
                with open(journal + ".ready", "w") as file:
                    file.write("1")
                time.sleep(600)

    keras.utils.set_random_seed(0)
    spec = tftune.ModelSpec("text", preset, 2, options={"sequence_length": 8, "dropout": 0.0})
    texts = ["a fine film", "the worst thing this year", "ok", "a joy from start to end"] * 2
    data = lambda model: tf.data.Dataset.from_tensor_slices((model.preprocessor(tf.constant(texts)), [0, 1, 0, 1] * 2))
    result = tftune.fit(spec, data, epochs=3, optimization=tftune.OptimizerOptions("adam", learning_rate=1e-2),
                        distribution=tftune.DistributionOptions("cpu", batch_size=4), lora=tftune.LoraOptions(rank=2),
                        unfreezing=tftune.GradualUnfreezing("head_first", verbose=0),
                        checkpoint_dir=checkpoint_dir, tensorboard=False, callbacks=[Journal()], verbose=0)
    layers = lora_layers(result.model)
    np.savez(journal + ".npz", **{f"{layer.path}/{name}": np.asarray(value) for layer in layers
             for name, value in (("base", base_kernel(layer)), ("a", layer.lora_kernel_a), ("b", layer.lora_kernel_b))})
    """
)


def _train(preset, directory, journal, kill_epoch=-1):
    return subprocess.Popen([sys.executable, "-c", _TRAINER, preset, str(directory), str(journal), str(kill_epoch)])


@pytest.mark.slow
def test_sigkill_in_epoch_two_resumes_with_its_adapters_and_pristine_kernels(tiny_bert_preset, tmp_path):
    reference = _train(tiny_bert_preset, tmp_path / "reference", tmp_path / "reference.jsonl")
    killed = _train(tiny_bert_preset, tmp_path / "run", tmp_path / "run.jsonl", kill_epoch=1)
    deadline = time.time() + 240
    while not (tmp_path / "run.jsonl.ready").exists():
        assert time.time() < deadline and killed.poll() is None, "the training process never reached epoch 2"
        time.sleep(0.2)
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    resumed = _train(tiny_bert_preset, tmp_path / "run", tmp_path / "run.jsonl")
    assert resumed.wait(timeout=300) == 0 and reference.wait(timeout=300) == 0
    run = [json.loads(line) for line in open(tmp_path / "run.jsonl")]
    assert [entry["epoch"] for entry in run if entry["pid"] != run[0]["pid"]] == [1, 2]  # resumed at epoch 2
    pristine = tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=8)
    tftune.enable_lora(pristine, rank=2)
    expected, actual = np.load(tmp_path / "reference.jsonl.npz"), np.load(tmp_path / "run.jsonl.npz")
    for layer in lora_layers(pristine):
        np.testing.assert_array_equal(actual[f"{layer.path}/base"], base_kernel(layer))  # bit-identical
    for name in expected.files:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not (tmp_path / "run" / "lora").exists()  # removed at the end of the completed fit

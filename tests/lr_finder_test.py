"""Tests for tftune.lr_finder: the learning-rate sweep, its restore of the model, its suggestion and plot."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import lr_finder


def _colored_images(count=48, seed=0):
    """Noise images whose class (0, 1, 2) is the brightest colour channel: learnable from a random ResNet."""
    rng = np.random.RandomState(seed)
    labels = np.arange(count) % 3
    images = rng.uniform(0, 120, size=(count, 32, 32, 3))
    images[np.arange(count), :, :, labels] += 120
    return images.astype("float32"), labels.astype("int32")


def _batches(count=48, batch_size=16):
    return tf.data.Dataset.from_tensor_slices(_colored_images(count)).batch(batch_size)


def _image_model(preset, seed=0, dropout=0.0):
    keras.utils.set_random_seed(seed)
    return tftune.build_image_classifier(preset, 3, image_size=(32, 32), dropout=dropout, weights=None)


def _values(variables):
    return [variable.numpy().copy() for variable in variables]


def _identical(before, after):
    return len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.slow
def test_sweep_restores_the_model_and_fit_continues_as_without_it(small_resnet_preset, tmp_path):
    def compiled_model():
        model = _image_model(small_resnet_preset, dropout=0.2)
        tftune.unfreeze_top(model, 1)  # stage_4 trains: its BatchNorm statistics move during the sweep
        tftune.compile_for_unfreezing(model, "adamw", 1e-3)
        model.fit(_batches(16, 8), epochs=1, verbose=0)  # optimizer state that the sweep must not touch
        return model

    model, twin = compiled_model(), compiled_model()
    optimizer, trainable = model.optimizer, [variable.path for variable in model.trainable_variables]
    variables, optimizer_variables = _values(model.variables), _values(optimizer.variables)
    plot_path = tmp_path / "plots" / "lr_find.png"
    sweep = tftune.find_learning_rate(model, _batches(16, 8), max_learning_rate=1e-2, steps=7, plot_path=plot_path)

    assert sweep.learning_rates == pytest.approx(np.geomspace(1e-7, 1e-2, 7).tolist(), rel=1e-12)
    assert len(sweep.losses) == len(sweep.raw_losses) == 7 and sweep.stop_reason is None
    first, second = sweep.raw_losses[:2]  # the debiased moving average of the batch losses, beta 0.98
    assert sweep.losses[:2] == pytest.approx([first, (0.98 * 0.02 * first + 0.02 * second) / (1 - 0.98**2)])
    assert sweep.learning_rates[0] <= sweep.suggested_learning_rate <= sweep.learning_rates[-1]
    assert sweep.plot_path == str(plot_path) and plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Suggested learning rate: {sweep.suggested_learning_rate:.3g}" in sweep.summary()

    assert _identical(variables, _values(model.variables))  # weights, BatchNorm statistics, dropout seeds
    assert model.optimizer is optimizer and _identical(optimizer_variables, _values(optimizer.variables))
    assert [variable.path for variable in model.trainable_variables] == trainable
    model.fit(_batches(16, 8), epochs=1, verbose=0)
    twin.fit(_batches(16, 8), epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == int(twin.optimizer.iterations.numpy()) == 4
    assert not _identical(variables, _values(model.variables))
    for after_sweep, without_sweep in zip(model.variables, twin.variables, strict=True):
        np.testing.assert_allclose(after_sweep.numpy(), without_sweep.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_two_replica_sweep_matches_one_replica(small_resnet_preset, precision):
    """Under MirroredStrategy the steps run through the strategy: same losses as one replica, weights restored."""
    data = _batches(32, 32)  # one global batch, 16 examples per replica, every step

    def sweep(strategy, policy):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            with strategy.scope():
                model = _image_model(small_resnet_preset)
        finally:
            keras.config.set_dtype_policy(previous)
        tftune.freeze(model)
        variables = _values(model.variables)
        result = tftune.find_learning_rate(model, data, min_learning_rate=1e-4, max_learning_rate=0.1, steps=8)
        for variable, value in zip(model.variables, variables, strict=True):
            for replica_value in getattr(variable, "values", (variable,)):  # each replica's copy of the variable
                np.testing.assert_array_equal(replica_value.numpy(), value)
        return model, result

    single_model, single = sweep(tf.distribute.get_strategy(), "float32")
    mirrored_model, mirrored = sweep(tftune.get_strategy("mirrored", devices=("/cpu:0", "/cpu:1")), precision)
    assert mirrored_model.distribute_strategy.num_replicas_in_sync == 2
    assert single_model.distribute_strategy.num_replicas_in_sync == 1
    tolerance = 1e-5 if precision == "float32" else 2e-2
    np.testing.assert_allclose(mirrored.raw_losses, single.raw_losses, rtol=tolerance)
    assert single.raw_losses[-1] < single.raw_losses[0] - 0.05  # the sweep really trained the head


def test_sweep_stops_once_the_loss_diverges(small_resnet_preset):
    model = _image_model(small_resnet_preset)
    tftune.freeze(model)
    sweep = tftune.find_learning_rate(model, _batches(), min_learning_rate=1e-6, max_learning_rate=1e4, steps=100)
    lowest = int(np.argmin(sweep.losses))
    assert "exceeded 4x its best" in sweep.stop_reason and "(stopped: the smoothed loss" in sweep.summary()
    assert len(sweep.learning_rates) < 100 and np.all(np.diff(sweep.learning_rates) > 0)
    assert sweep.losses[-1] > 4 * sweep.losses[lowest] and max(sweep.losses[:-1]) <= 4 * sweep.losses[lowest]
    assert sweep.suggested_learning_rate <= sweep.learning_rates[lowest] / 10


_REVIEWS = (
    ["a wonderful, moving film", "great acting and a lovely story", "brilliant, funny and warm",
     "a delight from start to end", "superb and touching", "one of the best films this year",
     "beautiful and smart", "I loved every minute"],
    ["a dull, tired mess", "boring and badly acted", "awful, lazy and long", "a waste of two hours",
     "terrible script and flat jokes", "one of the worst films this year", "ugly and stupid", "I hated every minute"],
)


@pytest.mark.slow
def test_suggested_rate_trains_a_real_bert_head(bert_dir):
    """The default sweep on MiniLM's head suggests a head-sized rate, and it trains far better than 1/100 of it."""
    def head_only_model():
        keras.utils.set_random_seed(0)
        model = tftune.build_text_classifier(bert_dir, 2, sequence_length=16, dropout=0.0)
        tftune.freeze(model)
        return model

    model = head_only_model()
    features = model.preprocessor(tf.constant(_REVIEWS[1] + _REVIEWS[0]))
    labels = np.array([0] * 8 + [1] * 8, "int32")
    data = tf.data.Dataset.from_tensor_slices((features, labels)).shuffle(16, seed=0).batch(8)
    suggested = tftune.find_learning_rate(model, data).suggested_learning_rate
    assert 1e-4 <= suggested <= 1e-1

    def loss_after_training(learning_rate):
        trained = head_only_model()
        tftune.compile_for_unfreezing(trained, "adamw", learning_rate)
        return trained.fit(data, epochs=5, verbose=0).history["loss"][-1]

    assert loss_after_training(suggested) < loss_after_training(suggested / 100) - 0.05


def test_valley_rule_picks_the_middle_of_the_descent():
    rates = np.geomspace(1e-6, 1.0, 80).tolist()
    noise = np.random.RandomState(0).normal(0, 0.003, 80)
    # Flat at 1.0 for 20 steps, down to 0.2 over the next 40, then diverging.
    curve = np.concatenate([np.ones(20), np.linspace(1.0, 0.2, 40), 0.2 + np.linspace(0, 3, 20) ** 2]) + noise
    # Not the ends of steps 20..59.
    assert rates[32] <= lr_finder.suggest_learning_rate(rates, curve.tolist()) <= rates[48]


def test_flat_sweep_warns_and_suggests_the_low_end(small_resnet_preset, caplog):
    model = _image_model(small_resnet_preset)
    tftune.freeze(model)
    with caplog.at_level(logging.WARNING, logger="tftune.lr_finder"):
        sweep = tftune.find_learning_rate(model, _batches(16, 16), min_learning_rate=1e-9, max_learning_rate=1e-8,
                                          steps=5)
    assert "shows no valley" in caplog.text and "Widen the range" in caplog.text
    # A tenth of the rate at the lowest loss, at least min_learning_rate: here min_learning_rate itself.
    assert sweep.suggested_learning_rate == pytest.approx(1e-9)


def test_bad_arguments_and_unusable_data_raise_clear_errors(small_resnet_preset):
    model = _image_model(small_resnet_preset)
    data = _batches(16, 8)
    variables = _values(model.variables)
    with pytest.raises(ValueError) as error:
        tftune.find_learning_rate(
            model, data, min_learning_rate=1e-2, max_learning_rate=1e-3, steps=3, stop_factor=1, plot_path=5
        )
    message = str(error.value)
    assert message.startswith("4 invalid options:")
    for expected in (
        "min_learning_rate must be below max_learning_rate; got 0.01 >= 0.001",
        "steps must be an integer >= 5; got 3.",
        "stop_factor must be a number > 1; got 1.",
        "plot_path must be a file path",
    ):
        assert expected in message
    with pytest.raises(ValueError, match=r"min_learning_rate must be a number > 0; got 0\."):
        tftune.find_learning_rate(model, data, min_learning_rate=0)
    with pytest.raises(ValueError, match=r"data must yield \(features, labels\)"):
        tftune.find_learning_rate(model, data.map(lambda images, labels: images))
    with pytest.raises(ValueError, match=r"data is empty"):
        tftune.find_learning_rate(model, data.take(0))
    with pytest.raises(ValueError, match=r"data must be a batched tf.data.Dataset.*got tuple"):
        tftune.find_learning_rate(model, _colored_images())
    images, labels = _colored_images(16)
    broken = tf.data.Dataset.from_tensor_slices((np.full_like(images, np.nan), labels)).batch(8)
    with pytest.raises(ValueError, match=r"no finite loss: the loss became nan at learning rate 1e-07"):
        tftune.find_learning_rate(model, broken)
    model.trainable = False
    with pytest.raises(ValueError, match=r"no trainable weights.*tftune.freeze\(model\)"):
        tftune.find_learning_rate(model, data)
    assert _identical(variables, _values(model.variables))

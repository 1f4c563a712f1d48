"""Tests for tftune.unfreeze: freezing, gradual unfreezing during one fit, layer-wise rates."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import unfreeze
from tftune._keras_private import nested_layers


def _image_model(preset, seed=0):
    keras.utils.set_random_seed(seed)
    return tftune.build_image_classifier(preset, 2, image_size=(32, 32), dropout=0.0, weights=None)


def _image_data(count=16, seed=0):
    images = np.random.RandomState(seed).uniform(0, 255, size=(count, 32, 32, 3)).astype("float32")
    return images, (np.arange(count) % 2).astype("int32")


def _group_values(model):
    return {group.name: [weight.numpy().copy() for weight in group.weights] for group in model.layer_groups}


def _identical(before, after):
    return all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


class _Recorder(keras.callbacks.Callback):
    """Weights, head optimizer state and trainable groups at each epoch end (head state also at each epoch begin)."""

    def __init__(self):
        super().__init__()
        self.weights, self.head_state, self.trainable, self.head_state_at_begin = [], [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        # Placed after GradualUnfreezing in `callbacks`: the state once the epoch's boundary was entered.
        head = unfreeze._group_optimizers(self.model)["head"]
        self.head_state_at_begin.append({variable.path: variable.numpy().copy() for variable in head.variables})

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(_group_values(self.model))
        head = unfreeze._group_optimizers(self.model)["head"]
        self.head_state.append([variable.numpy().copy() for variable in head.variables])
        self.trainable.append([group.name for group in self.model.layer_groups if group.trainable])


def _count_traces(model):
    traces = []
    train_step = model.train_step

    def counted(data):
        traces.append(1)
        return train_step(data)

    model.train_step = counted
    return traces


def test_freeze_helpers_and_summary(small_resnet_preset):
    model = _image_model(small_resnet_preset)
    unfreeze.freeze(model)
    assert [group.trainable for group in model.layer_groups] == [False] * 5 + [True]
    assert len(model.trainable_weights) == 2
    unfreeze.unfreeze_top(model, 2, keep_batchnorm_frozen=True)
    summary = unfreeze.trainable_summary(model)
    assert [line.split()[:2] for line in summary.splitlines()[1:7]] == [
        ["stem", "no"], ["stage_1", "no"], ["stage_2", "no"],
        ["stage_3", "partial"], ["stage_4", "partial"], ["head", "yes"],
    ]
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in model.layers + model.backbone.layers
        if layer.trainable_weights
    )
    model.backbone.trainable = False  # a user's frozen container must not hide the groups
    unfreeze.unfreeze_all(model)
    assert all(group.trainable for group in model.layer_groups)
    grouped = [weight for group in model.layer_groups for layer in group.layers for weight in layer.trainable_weights]
    # Every trainable weight in exactly one group: no weight left out, none in two groups (or twice in one).
    assert len({id(weight) for weight in grouped}) == len(grouped)
    assert {id(weight) for weight in grouped} == {id(weight) for weight in model.trainable_weights}
    assert sorted(weight.path for weight in grouped) == sorted(weight.path for weight in model.trainable_weights)
    with pytest.raises(ValueError, match=r"n_groups=6 .* 5 backbone groups \(stem, stage_1, .*, stage_4\)"):
        unfreeze.unfreeze_top(model, 6)
    with pytest.raises(ValueError, match="no recorded layer groups.*build_image_classifier"):
        unfreeze.freeze(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_gradual_unfreezing_freezes_exactly_and_continues_optimizer_state(small_resnet_preset, caplog):
    images, labels = _image_data()
    fit_args = dict(x=images, y=labels, batch_size=8, epochs=3, shuffle=False, verbose=0)

    reference = _image_model(small_resnet_preset)
    unfreeze.freeze(reference)
    reference_traces, reference_record = _count_traces(reference), _Recorder()
    unfreeze.compile_for_unfreezing(reference, "adamw", 1e-3)
    reference.fit(callbacks=[reference_record], **fit_args)

    model = _image_model(small_resnet_preset)
    traces, record = _count_traces(model), _Recorder()
    unfreeze.compile_for_unfreezing(model, "adamw", 1e-3)  # all trainable: the callback decides
    with caplog.at_level(logging.INFO, logger="tftune"):
        callback = unfreeze.GradualUnfreezing({0: 0, 1: 1, 2: "all"})
        history = model.fit(callbacks=[callback, record], **fit_args)
    assert callback.boundaries() == [1, 2]

    printed = _logged(caplog)
    all_trainable = model.count_params() - _moving_statistics(model)
    assert printed == [
        "GradualUnfreezing: epoch 0 step 0: 1/6 groups trainable (head), 66 trainable parameters",
        "GradualUnfreezing: epoch 1 step 0: 2/6 groups trainable (head, stage_4), 19,714 trainable parameters",
        "GradualUnfreezing: epoch 2 step 0: 6/6 groups trainable (head, stage_4, stage_3, stage_2, stage_1, stem), "
        f"{all_trainable:,} trainable parameters",
    ]
    assert history.history["trainable_params"] == [66, 19714, all_trainable]
    assert record.trainable == [["head"], ["stage_4", "head"], [g.name for g in model.layer_groups]]

    # Re-traced exactly once per boundary: 2 boundaries more than a fit that never changes stage.
    assert len(traces) == len(reference_traces) + 2

    start = _group_values(_image_model(small_resnet_preset))
    for epoch, values in enumerate(record.weights):
        for group in model.layer_groups[:-1]:
            unfrozen_at = 1 if group.name == "stage_4" else 2
            frozen = _identical(start[group.name], values[group.name])
            assert frozen == (epoch < unfrozen_at), (group.name, epoch)
    # BatchNorm moving statistics of a frozen group (inference mode) never moved; they do once it trains.
    moving = [index for index, weight in enumerate(model.layer_groups[0].weights) if "moving" in weight.path]
    assert moving
    assert all(np.array_equal(start["stem"][i], record.weights[1]["stem"][i]) for i in moving)
    assert not any(np.array_equal(start["stem"][i], record.weights[2]["stem"][i]) for i in moving)

    # Until the boundary the head trains exactly as in a fit that never changes stage ...
    assert _identical(reference_record.weights[0]["head"], record.weights[0]["head"])
    assert all(np.array_equal(a, b) for a, b in zip(reference_record.head_state[0], record.head_state[0], strict=True))
    # ... and afterwards its moments and step count continue (not reset), while the new groups start fresh:
    # entering each boundary leaves the head's Adam moments (non-zero) and step count as the last step left them.
    head = unfreeze._group_optimizers(model)["head"]
    moments = [variable.path for variable in head.variables if variable.path.endswith(("momentum", "velocity"))]
    assert len(moments) == 2 * len(model.layer_groups[-1].weights)
    for boundary in (1, 2):
        before, after = record.head_state[boundary - 1], record.head_state_at_begin[boundary]
        assert [np.any(value) for path, value in after.items() if path in moments] == [True] * len(moments)
        for variable, value in zip(head.variables, before, strict=True):
            assert np.array_equal(after[variable.path], value), (boundary, variable.path)
    groups = unfreeze._group_optimizers(model)
    assert int(groups["head"].iterations) == 6 and int(groups["stage_4"].iterations) == 4
    assert int(groups["stage_3"].iterations) == 2 and int(groups["stem"].iterations) == 2
    assert int(model.optimizer.iterations) == 6
    assert not _identical(reference_record.weights[2]["head"], record.weights[2]["head"])


def _moving_statistics(model):
    return sum(int(np.prod(w.shape)) for w in model.weights if "moving" in w.path)


def test_keep_batchnorm_frozen_after_unfreezing(small_resnet_preset):
    images, labels = _image_data()
    model = _image_model(small_resnet_preset)
    unfreeze.compile_for_unfreezing(model, "sgd", 0.05)
    before = _group_values(model)
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0,
              callbacks=[unfreeze.GradualUnfreezing({0: "all"}, keep_batchnorm_frozen=True, verbose=0)])
    after = _group_values(model)
    for group in model.layer_groups[:-1]:
        for weight, old, new in zip(group.weights, before[group.name], after[group.name], strict=True):
            is_batchnorm = "_bn/" in weight.path
            assert np.array_equal(old, new) == is_batchnorm, weight.path


@pytest.mark.parametrize("optimizer", ["sgd", keras.optimizers.AdamW(weight_decay=0.0)], ids=["sgd", "adamw"])
def test_layer_decay_scales_each_group_update(small_resnet_preset, optimizer):
    """Group k from the top moves by lr * decay**k: |update| / |gradient| for SGD, |update| for Adam's first step."""
    images, labels = _image_data(8)
    model = _image_model(small_resnet_preset)
    unfreeze.compile_for_unfreezing(model, optimizer, 1e-2, layer_decay=0.5)
    groups = model.layer_groups
    weights = [w for g in groups for layer in g.layers for w in layer.trainable_weights]
    statistics = [w.numpy() for w in model.non_trainable_weights]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, model(images, training=True)))
    gradients = dict(zip([id(w) for w in weights], tape.gradient(loss, weights), strict=True))
    for weight, value in zip(model.non_trainable_weights, statistics, strict=True):  # as before the gradient pass
        weight.assign(value)
    before = {id(w): w.numpy().copy() for w in weights}
    model.train_on_batch(images, labels)
    rates = []
    for group in groups:
        moved, scale = [], []
        for layer in group.layers:
            for weight in layer.trainable_weights:
                gradient = gradients[id(weight)].numpy()
                update = np.abs(weight.numpy() - before[id(weight)])
                if optimizer == "sgd":
                    moved.append(update.sum())
                    scale.append(np.abs(gradient).sum())
                else:  # Adam's first step is lr * g / |g| where |g| >> epsilon
                    moved.extend(update[np.abs(gradient) > 1e-4].ravel())
        rates.append(sum(moved) / sum(scale) if optimizer == "sgd" else float(np.median(moved)))
    expected = [1e-2 * 0.5 ** k for k in reversed(range(len(groups)))]
    # Measured per-group step size matches lr * decay**k within 1% (float32 round-off).
    np.testing.assert_allclose(rates, expected, rtol=1e-2)
    np.testing.assert_allclose(np.array(rates[:-1]) / rates[1:], 0.5, rtol=1e-2)


@pytest.mark.parametrize(
    "replicas, precision",
    # Keras 3.15's LossScaleOptimizer decides "finite" from replica 0's gradients only, so under
    # MirroredStrategy a float16 overflow on another replica turns weights into NaN; compile_for_unfreezing
    # uses tftune's AllReplicasLossScaleOptimizer instead.
    [(2, "float32"), (1, "mixed_float16"), (2, "mixed_float16")],
    ids=["mirrored-2-replicas", "mixed-precision", "mirrored-mixed-precision"],
)
@pytest.mark.slow
def test_same_schedule_under_strategy_and_mixed_precision(small_resnet_preset, replicas, precision):
    images, labels = _image_data()
    strategy = (
        tftune.get_strategy("mirrored", devices=("/cpu:0", "/cpu:1")) if replicas == 2 else tf.distribute.get_strategy()
    )
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        with strategy.scope():
            model = _image_model(small_resnet_preset)
            unfreeze.compile_for_unfreezing(model, "adamw", 1e-3, layer_decay=0.5, warmup_steps=2, total_steps=6)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    assert strategy.num_replicas_in_sync == replicas
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
    before = _group_values(model)
    record = _Recorder()
    history = model.fit(images, labels, batch_size=8, epochs=3, shuffle=False, verbose=0,
                        callbacks=[unfreeze.GradualUnfreezing(verbose=0), record])
    assert record.trainable == [["head"], ["stage_4", "head"], ["stage_3", "stage_4", "head"]]
    assert history.history["trainable_params"][:2] == [66, 19714]
    assert np.all(np.isfinite(history.history["loss"]))
    assert _identical(before["stage_2"], _group_values(model)["stage_2"])
    assert not _identical(before["stage_3"], _group_values(model)["stage_3"])
    groups = unfreeze._group_optimizers(model)
    steps = [int(groups[name].iterations.numpy()) for name in ("head", "stage_4", "stage_3", "stage_2")]
    if precision == "float32":
        assert steps == [6, 4, 2, 0]
    else:  # steps whose gradients overflowed float16 are skipped on every replica
        assert steps[0] >= steps[1] >= steps[2] >= 1 and steps[3] == 0 and steps[0] - steps[1] <= 2


def test_bad_input_raises_before_training(small_resnet_preset):
    for schedule, message in [
        ({0: 0, -1: 2}, "non-negative integers; got -1"),
        ([(0, 0), (3, 1), (2, 2)], "strictly increasing; 2 follows 3"),
        ({0: 2, 1: 1}, "only unfreeze: 1 groups at epoch 1"),
        ({0: "some"}, "number of top backbone groups .* or 'all'; got 'some'"),
    ]:
        with pytest.raises(ValueError, match=message):
            unfreeze.GradualUnfreezing(schedule)
    assert unfreeze.parse_schedule(" 0:0, 1:2,3:all") == ((0, 0), (1, 2), (3, "all"))
    for text in ("0:0,1", "0:x", "-1:2", "0:2,1:1"):
        with pytest.raises(ValueError, match="schedule"):
            unfreeze.parse_schedule(text)
    images, labels = _image_data(8)
    model = _image_model(small_resnet_preset)
    with pytest.raises(ValueError, match=r"supports the optimizers \['adam', 'adamw', 'sgd'\].*'rmsprop'"):
        unfreeze.compile_for_unfreezing(model, "rmsprop")
    with pytest.raises(ValueError, match="layer_decay must be in"):
        unfreeze.compile_for_unfreezing(model, "adamw", layer_decay=2.6)
    with pytest.raises(ValueError, match="would act per group"):
        unfreeze.compile_for_unfreezing(model, keras.optimizers.AdamW(global_clipnorm=1.0))
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="needs the model compiled with tftune.compile_for_unfreezing"):
        model.fit(images, labels, verbose=0, callbacks=[unfreeze.GradualUnfreezing()])
    unfreeze.compile_for_unfreezing(model, "sgd", 0.1)
    before = _group_values(model)
    with pytest.raises(ValueError, match=r"schedule\[2\]=6 asks for more top groups .* 5 backbone groups"):
        model.fit(images, labels, verbose=0, callbacks=[unfreeze.GradualUnfreezing({0: 1, 2: 6})])
    assert all(_identical(before[name], values) for name, values in _group_values(model).items())


@pytest.mark.slow
def test_learning_rate_clock_is_shared_or_restarted_per_stage(small_resnet_preset):
    """Warm-up/decay: one clock for every group by default; restart_schedule restarts it at each boundary."""
    schedule = tftune.WarmupDecay(1.0, warmup_steps=4, total_steps=12, decay="cosine", final_ratio=0.1)
    np.testing.assert_allclose([float(schedule(step)) for step in (0, 3, 8, 12, 20)],
                               [0.25, 1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    images, labels = _image_data()
    rates = {}
    for restart in (False, True):
        model = _image_model(small_resnet_preset)
        unfreeze.compile_for_unfreezing(model, "sgd", 1.0, layer_decay=0.5, warmup_steps=4, total_steps=8)
        model.fit(images, labels, batch_size=4, epochs=2, shuffle=False, verbose=0,
                  callbacks=[unfreeze.GradualUnfreezing(restart_schedule=restart, verbose=0)])
        groups = unfreeze._group_optimizers(model)
        rates[restart] = [float(groups[name].learning_rate) for name in ("head", "stage_4")]
    # After 8 steps (stage_4 unfrozen at step 4): a shared clock is at the end of the decay for both ...
    np.testing.assert_allclose(rates[False], [0.0, 0.0], atol=1e-7)
    # ... a restarted one has just finished the 4-step warm-up again: peak rates lr and lr * 0.5.
    np.testing.assert_allclose(rates[True], [1.0, 0.5], rtol=1e-6)


@pytest.mark.slow
def test_backup_and_restore_resumes_in_the_right_stage(small_resnet_preset, tmp_path, caplog):
    images, labels = _image_data()

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    def fit(extra):
        model = _image_model(small_resnet_preset)
        unfreeze.compile_for_unfreezing(model, "adamw", 1e-3)
        callbacks = [keras.callbacks.BackupAndRestore(str(tmp_path)), unfreeze.GradualUnfreezing(), *extra]
        return model, model.fit(images, labels, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)

    with pytest.raises(RuntimeError, match="interrupted"):
        fit([Interrupt()])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tftune"):
        model, history = fit([])
    printed = _logged(caplog)
    assert printed[0].startswith("GradualUnfreezing: epoch 2 step 0: 3/6 groups trainable (head, stage_4, stage_3)")
    assert len(history.history["trainable_params"]) == 2
    groups = unfreeze._group_optimizers(model)
    # The optimizer state came back with the weights: 8 steps in all, stage_4 trained since epoch 1.
    assert [int(groups[name].iterations.numpy()) for name in ("head", "stage_4", "stage_3", "stage_2")] == [8, 6, 4, 2]


@pytest.mark.slow
def test_real_bert_transfers_gradual_beats_head_only(bert_dir, rotten_tomatoes):
    """Real transfer: MiniLM BERT on balanced Rotten Tomatoes subsets (128 train, 400 test), sequence length 32.

    The same fit (3 epochs, AdamW 1e-3, layer decay 1/2.6, head first then every group) from the
    pretrained weights, and a head-only fit on the frozen pretrained encoder. Measured (4 seeds/subsets):
    head only 0.46-0.55, gradual 0.60-0.68, ahead by 0.06-0.15 every time; the gradual fit from `weights=None`
    stays near chance (0.50 on this subset), so the absolute floor of 0.58 for gradual also fails when the pretrained
    weights do not load (chance is 0.5; on 400 examples a model at chance is above 0.58 with probability < 0.1%).
    Asserted margin over head only: 0.04.
    """
    rng = np.random.RandomState(0)
    by_class = [rng.permutation(np.flatnonzero(rotten_tomatoes.labels == label)) for label in (0, 1)]
    train = rng.permutation(np.concatenate([indices[:64] for indices in by_class]))
    test = np.concatenate([indices[64:264] for indices in by_class])
    accuracy = {}
    for mode in ("head_only", "gradual"):
        keras.utils.set_random_seed(0)
        model = tftune.build_text_classifier(bert_dir, 2, sequence_length=32)
        features = model.preprocessor([rotten_tomatoes.texts[i] for i in np.concatenate([train, test])])
        unfreeze.freeze(model)
        unfreeze.compile_for_unfreezing(model, "adamw", 1e-3, layer_decay=1 / 2.6)
        callbacks = [] if mode == "head_only" else [unfreeze.GradualUnfreezing({0: 0, 1: "all"}, verbose=0)]
        model.fit({name: value[: len(train)] for name, value in features.items()}, rotten_tomatoes.labels[train],
                  batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
        accuracy[mode] = model.evaluate({name: value[len(train):] for name, value in features.items()},
                                        rotten_tomatoes.labels[test], batch_size=100, verbose=0,
                                        return_dict=True)["accuracy"]
    assert accuracy["gradual"] >= 0.58, accuracy
    assert accuracy["gradual"] >= accuracy["head_only"] + 0.04, accuracy


def test_helpers_between_plain_fits(small_resnet_preset):
    """Without the callback: freeze, fit, unfreeze_top, fit again; the second fit trains the new group."""
    images, labels = _image_data(8)
    model = _image_model(small_resnet_preset)
    unfreeze.freeze(model)
    unfreeze.compile_for_unfreezing(model, "adam", 1e-2)
    model.fit(images, labels, epochs=1, verbose=0)
    after_head_only = _group_values(model)
    unfreeze.unfreeze_top(model, 1)
    model.fit(images, labels, epochs=1, verbose=0)
    after_top_one = _group_values(model)
    assert not _identical(after_head_only["stage_4"], after_top_one["stage_4"])
    assert _identical(after_head_only["stage_3"], after_top_one["stage_3"])


def _logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("GradualUnfreezing")]


def test_head_learning_rate_holds_while_the_backbone_is_frozen(small_resnet_preset):
    """The head trains at head_learning_rate in the head-only stage, then at the layer-wise rate with the backbone."""
    model = _image_model(small_resnet_preset)
    unfreeze.freeze(model)
    unfreeze.compile_for_unfreezing(model, "adamw", 1e-3, head_learning_rate=2e-2, layer_decay=0.5)

    def rates():
        groups = unfreeze._group_optimizers(model)
        return [float(groups[name].learning_rate) for name in ("head", "stage_4", "stage_3", "stem")]

    np.testing.assert_allclose(rates(), [2e-2, 5e-4, 2.5e-4, 1e-3 * 0.5**5])
    assert "0.02" in unfreeze.trainable_summary(model)
    unfreeze.unfreeze_top(model, 1)
    np.testing.assert_allclose(rates(), [1e-3, 5e-4, 2.5e-4, 1e-3 * 0.5**5])
    # The traced train step uses the stage's rate: one SGD-like step of the head moves it by the head-only rate.
    images, labels = _image_data(8)
    unfreeze.freeze(model)
    before = model.get_layer("probabilities").kernel.numpy().copy()
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    first_step = np.abs(model.get_layer("probabilities").kernel.numpy() - before).max()
    np.testing.assert_allclose(first_step, 2e-2, rtol=0.05)  # Adam's first step is lr * sign(gradient)
    with pytest.raises(ValueError, match="head_learning_rate must be a number > 0; got -1"):
        unfreeze.compile_for_unfreezing(model, "adamw", 1e-3, head_learning_rate=-1)


@pytest.mark.slow
def test_restart_warms_up_again_at_each_boundary_and_after_a_resume(small_resnet_preset, tmp_path):
    """Each stage warms up from 0 and decays to the end of the fit, also when BackupAndRestore resumes inside it."""
    images, labels = _image_data()  # 4 steps per epoch at batch 4
    seen = {}

    class Rates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            groups = unfreeze._group_optimizers(self.model)
            # The rate the coming step uses: each group's schedule at its own step count.
            seen.setdefault(self.run, []).append(float(groups["head"].learning_rate))

    def fit(run, epochs_to_crash=None):
        model = _image_model(small_resnet_preset)
        unfreeze.compile_for_unfreezing(model, "sgd", 1.0, warmup_steps=2, total_steps=12)
        recorder = Rates()
        recorder.run = run
        callbacks = [keras.callbacks.BackupAndRestore(str(tmp_path / run)),
                     unfreeze.GradualUnfreezing({0: 0, 1: 2}, verbose=0), recorder]
        if epochs_to_crash is not None:
            class Crash(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    if epoch == epochs_to_crash:
                        raise RuntimeError("crash")
            callbacks.append(Crash())
        model.fit(images, labels, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)

    fit("whole")
    # Stage 0 (steps 0-3): warm-up 0.5, 1, then the decay over the 10 steps to 12 begins (1.0, 0.9).
    # Stage 1 from step 4: warm-up again (0.5, 1), then decay over the 6 steps left to 12.
    np.testing.assert_allclose(seen["whole"][:6], [0.5, 1.0, 1.0, 0.9, 0.5, 1.0], rtol=1e-5)
    np.testing.assert_allclose(seen["whole"][6:], [1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6], rtol=1e-5)
    with pytest.raises(RuntimeError, match="crash"):
        fit("resumed", epochs_to_crash=1)
    fit("resumed")
    # Resumed at epoch 2, inside the stage that began at step 4: the clock continues, no new warm-up.
    np.testing.assert_allclose(seen["resumed"][-4:], seen["whole"][-4:], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_save_and_load_mid_schedule_then_resume_matches_an_uninterrupted_fit(small_resnet_preset, tmp_path):
    """A model compiled by compile_for_unfreezing, saved after the head-only epoch, loads and resumes exactly."""
    images, labels = _image_data()
    fit_args = dict(x=images, y=labels, batch_size=8, epochs=3, shuffle=False, verbose=0)

    def compiled():
        model = _image_model(small_resnet_preset)
        unfreeze.compile_for_unfreezing(model, "adamw", 1e-3, head_learning_rate=1e-2, warmup_steps=1, total_steps=6)
        return model

    reference = compiled()
    reference.fit(callbacks=[unfreeze.GradualUnfreezing({0: 0, 1: 1, 2: "all"}, verbose=0)], **fit_args)

    model = compiled()
    model.fit(callbacks=[unfreeze.GradualUnfreezing({0: 0, 1: 1, 2: "all"}, verbose=0)], **{**fit_args, "epochs": 1})
    model.save(tmp_path / "mid.keras")
    loaded = keras.models.load_model(tmp_path / "mid.keras")
    loaded.fit(callbacks=[unfreeze.GradualUnfreezing({0: 0, 1: 1, 2: "all"}, verbose=0)], initial_epoch=1, **fit_args)
    groups = unfreeze._group_optimizers(loaded)
    assert [int(groups[name].iterations.numpy()) for name in ("head", "stage_4", "stage_3")] == [6, 4, 2]
    for expected, actual in zip(reference.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_gradual_unfreezing_config_round_trip():
    callback = unfreeze.GradualUnfreezing({0: 0, 2: 3, 4: "all"}, unit="step", keep_batchnorm_frozen=True,
                                          restart_schedule=False, verbose=0)
    config = callback.get_config()
    assert config == {"schedule": [[0, 0], [2, 3], [4, "all"]], "unit": "step", "every": 1,
                      "keep_batchnorm_frozen": True, "restart_schedule": False, "verbose": 0}
    assert unfreeze.GradualUnfreezing(**config).get_config() == config
    with pytest.raises(ValueError, match="2 invalid options:\n  - unit must be one of 'epoch', 'step'; got 'batch'"):
        unfreeze.GradualUnfreezing(unit="batch", every=0)


def test_spread_schedule_follows_the_fits_epochs_and_the_models_groups(small_resnet_preset):
    assert tftune.spread_schedule(3, 8) == {0: 0, 1: 4, 2: "all"}
    assert tftune.spread_schedule(5, 5) == {0: 0, 1: 1, 2: 2, 3: 4, 4: "all"}
    with pytest.raises(ValueError, match="needs a head-only epoch and a last one"):
        tftune.spread_schedule(1, 5)
    images, labels = _image_data(8)
    model = _image_model(small_resnet_preset)
    unfreeze.compile_for_unfreezing(model, "sgd", 1e-3)
    callback = unfreeze.GradualUnfreezing("spread", verbose=0)
    history = model.fit(images, labels, batch_size=8, epochs=3, verbose=0, callbacks=[callback])
    assert callback.boundaries() == [1, 2]
    assert history.history["trainable_params"][0] < history.history["trainable_params"][1] < history.history[
        "trainable_params"][2]
    assert callback.get_config()["schedule"] == "spread"
    with pytest.raises(ValueError, match="schedule 'spread' sets its boundaries in epochs; got unit='step'"):
        unfreeze.GradualUnfreezing("spread", unit="step")


def test_head_first_trains_the_head_alone_for_half_the_first_epoch_then_every_group(small_resnet_preset):
    assert tftune.head_first_schedule(50) == {0: 0, 25: "all"}
    assert tftune.head_first_schedule(3, head_fraction=0.1) == {0: 0, 1: "all"}
    with pytest.raises(ValueError, match=r"steps_per_epoch must be an integer >= 1; got 0"):
        tftune.head_first_schedule(0)
    with pytest.raises(ValueError, match="schedule 'head_first' sets its boundaries in steps; got unit='epoch'"):
        unfreeze.GradualUnfreezing("head_first", unit="epoch")
    with pytest.raises(
        ValueError, match="'head-first' is not a schedule name; the names are 'spread' and 'head_first'"
    ):
        unfreeze.GradualUnfreezing("head-first")
    images, labels = _image_data(8)
    model = _image_model(small_resnet_preset)
    unfreeze.compile_for_unfreezing(model, "sgd", 1e-2)
    callback = unfreeze.GradualUnfreezing("head_first", verbose=0)
    backbone_changed = []

    def record(batch, logs):
        backbone_changed.append(not _identical(before[-1], _group_values(model)["stage_4"]))
        before.append(_group_values(model)["stage_4"])

    before = [_group_values(model)["stage_4"]]
    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=record)
    history = model.fit(images, labels, batch_size=2, epochs=2, verbose=0, callbacks=[callback, recorder])
    # 4 steps per epoch: the head alone for steps 0-1, every group from step 2 on.
    assert backbone_changed == [False, False, True, True, True, True, True, True]
    assert callback.unit == "step" and callback.boundaries() == [2] and callback.epoch_boundaries() == []
    assert [(stage["epoch"], stage["step"], stage["groups"]) for stage in callback.stages_entered] == [
        (0, 0, ["head"]), (0, 2, ["head", "stage_4", "stage_3", "stage_2", "stage_1", "stem"])]
    assert callback.stages_entered[0]["trainable_params"] < callback.stages_entered[1]["trainable_params"]
    assert history.history["trainable_params"] == [sum(int(np.prod(w.shape)) for w in model.trainable_weights)] * 2
    assert unfreeze.GradualUnfreezing(**callback.get_config()).get_config() == callback.get_config()


def _dropout_rates(layer):
    return [sub.rate for sub in nested_layers(layer) if isinstance(sub, keras.layers.Dropout)]


def test_frozen_groups_train_with_dropout_off_and_get_their_rates_back(tiny_bert_dir):
    model = tftune.build_text_classifier(tiny_bert_dir, 2, sequence_length=8, dropout=0.0)
    own_rates = _dropout_rates(model.backbone)
    assert len(own_rates) == 4 and set(own_rates) == {0.1}  # the checkpoint's hidden and attention dropout
    features = model.preprocessor(tf.constant(["a fine, moving film", "a dull, tired mess"] * 2))
    labels = np.array([1, 0, 1, 0])
    # SGD at a negligible rate: the logged training loss of one batch is the loss before its update, so it equals
    # the inference loss exactly when no Dropout acts in training mode.
    unfreeze.compile_for_unfreezing(model, "sgd", 1e-12, head_learning_rate=1e-12)
    inference_loss = model.evaluate(features, labels, verbose=0)[0]
    rates_seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rates_seen.append(_dropout_rates(model.backbone))
    )
    history = model.fit(features, labels, batch_size=4, epochs=2, verbose=0,
                        callbacks=[unfreeze.GradualUnfreezing({0: 0, 1: "all"}, verbose=0), recorder])
    training_loss = history.history["loss"]
    assert training_loss[0] == pytest.approx(inference_loss, rel=1e-5)  # epoch 0: backbone frozen, Dropout off
    assert abs(training_loss[1] - inference_loss) > 1e-3  # epoch 1: backbone training, Dropout 0.1 again
    assert set(rates_seen[0]) == {0.0} and rates_seen[1] == own_rates

    # Frozen to the end of the fit: the rates come back when it ends, so the saved model keeps them.
    model.fit(features, labels, batch_size=4, epochs=1, verbose=0,
              callbacks=[unfreeze.GradualUnfreezing({0: 0}, verbose=0)])
    assert _dropout_rates(model.backbone) == own_rates

    # A fit interrupted in a frozen stage leaves Dropout off until the group unfreezes (here by a helper).
    class _Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(features, labels, batch_size=4, epochs=1, verbose=0,
                  callbacks=[unfreeze.GradualUnfreezing({0: 0}, verbose=0), _Interrupt()])
    assert set(_dropout_rates(model.backbone)) == {0.0}
    tftune.unfreeze_all(model)
    assert _dropout_rates(model.backbone) == own_rates

"""Learning-rate finder: an exponential learning-rate sweep on a copy of the weights, and a suggested rate.

Leslie Smith's range test as fastai's `lr_find` runs it: train what is
currently trainable for `steps` steps with a rate rising exponentially from
`min_learning_rate` to `max_learning_rate`, smooth the loss with a debiased
exponential moving average (beta 0.98), stop once the smoothed loss exceeds
`stop_factor` times its best, and suggest a rate from the curve.

The suggestion is fastai's "valley" rule: the longest strictly decreasing
subsequence of the smoothed losses (its length L and its last point e) marks
the descending stretch of the curve, about steps [e - L, e]; the suggestion
is its middle, step e - L // 2, and never past the lowest loss. Noise
barely shortens that subsequence, and it ignores bumps of the flat start.
Guard: when the smoothed loss falls by less than 5% from its highest value
before its lowest point (the range is too low, the data is not learnable,
or the loss rises from the first step) there is no valley. The suggestion is then a tenth of the rate at the
lowest loss (at least `min_learning_rate`) and a warning says to widen the
range.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os

import keras
import numpy as np
import tensorflow as tf

from tftune import _plotting
from tftune._validation import integer_error, number_error, raise_errors
from tftune.distribute import AllReplicasLossScaleOptimizer, distribute_dataset

_logger = logging.getLogger(__name__)

MIN_STEPS = 5
# The sweep's defaults: fastai's range, a few hundred steps (the smoothed curve needs them to show a valley).
DEFAULT_STEPS = 200
DEFAULT_MIN_LEARNING_RATE = 1e-7
DEFAULT_MAX_LEARNING_RATE = 1.0
_SMOOTHING = 0.98
_MIN_DESCENT = 0.05


@dataclasses.dataclass(frozen=True)
class LearningRateSweep:
    """What `find_learning_rate` measured: the rate of each step, its loss, and the suggested rate.

    `losses` are the smoothed losses (debiased exponential moving average),
    `raw_losses` the loss of each step's batch. `stop_reason` says why the
    sweep ended before `max_learning_rate` (None when it ran every step).

    Example:

    ```python
    sweep = tftune.LearningRateSweep(
        learning_rates=[1e-4, 1e-3, 1e-2], losses=[0.7, 0.5, 0.9], raw_losses=[0.7, 0.4, 1.2],
        suggested_learning_rate=1e-3, plot_path=None,
    )
    print(sweep.summary())
    ```
    """

    learning_rates: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggested_learning_rate: float
    plot_path: str | None
    stop_reason: str | None = None

    def summary(self) -> str:
        """A few lines for people: the swept range, the lowest loss, the suggested rate, the plot."""
        best = int(np.argmin(self.losses))
        lines = [
            f"Swept {len(self.learning_rates)} steps, learning rate {self.learning_rates[0]:.3g} to "
            f"{self.learning_rates[-1]:.3g}" + (f" (stopped: {self.stop_reason})" if self.stop_reason else "") + ".",
            f"Lowest smoothed loss {self.losses[best]:.4g} at learning rate {self.learning_rates[best]:.3g}.",
            f"Suggested learning rate: {self.suggested_learning_rate:.3g}",
        ]
        if self.plot_path:
            lines.append(f"Plot: {self.plot_path}")
        return "\n".join(lines)


def find_learning_rate(
    model: keras.Model,
    data: tf.data.Dataset,
    *,
    min_learning_rate: float = DEFAULT_MIN_LEARNING_RATE,
    max_learning_rate: float = DEFAULT_MAX_LEARNING_RATE,
    steps: int = DEFAULT_STEPS,
    stop_factor: float = 4.0,
    plot_path: str | os.PathLike | None = None,
) -> LearningRateSweep:
    """Sweep the learning rate exponentially on a copy of the weights and suggest one (fastai's `lr_find`).

    Trains the weights that are trainable now (after `tftune.freeze(model)`:
    the head only) with a fresh `keras.optimizers.AdamW` (Keras defaults,
    wrapped in a loss-scale optimizer under mixed_float16), one batch of
    `data` per step, the rate rising from `min_learning_rate` to
    `max_learning_rate` over `steps` steps; `data` (batches of
    `(features, integer labels[, sample weights])`, as tftune's pipelines
    give) is repeated when it is shorter. The loss is the compiled one
    (`model.compute_loss`), or sparse categorical cross-entropy for a model
    that is not compiled. The sweep stops early once the smoothed loss
    exceeds `stop_factor` times its best, or is not finite. See the module
    docstring for the suggestion rule. Under a multi-replica strategy the
    steps run through the model's strategy (`data` holds global batches).

    Afterwards every model variable (weights, BatchNorm statistics, dropout
    seeds) is restored bit for bit; `model.optimizer`, its state and the
    model's compiled train function are not touched, so `fit` continues as if
    the sweep never happened. With `plot_path`, a PNG of loss against rate
    (log scale, suggestion marked) is written there.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.freeze(model)
    features = model.preprocessor(tf.constant(["a fine, moving film", "a dull, tired mess"] * 8))
    data = tf.data.Dataset.from_tensor_slices((features, np.array([1, 0] * 8))).batch(8)
    sweep = tftune.find_learning_rate(model, data, steps=10, plot_path="lr_find.png")
    print(sweep.summary())
    ```
    """
    _check_arguments(model, data, min_learning_rate, max_learning_rate, steps, stop_factor, plot_path)
    strategy = model.distribute_strategy
    trainable = model.trainable_variables
    saved = [variable.numpy() for variable in model.variables]
    rates = np.geomspace(min_learning_rate, max_learning_rate, steps).tolist()
    _logger.info(
        "Learning-rate sweep: %d steps from %.3g to %.3g over %d trainable weights (%d replicas)",
        steps, min_learning_rate, max_learning_rate, len(trainable), strategy.num_replicas_in_sync,
    )
    with strategy.scope():
        optimizer = keras.optimizers.AdamW(learning_rate=min_learning_rate)
        if model.dtype_policy.name == "mixed_float16":
            optimizer = AllReplicasLossScaleOptimizer(optimizer)
        optimizer.build(trainable)
    step = _train_step(model, strategy, optimizer, trainable)
    batches = strategy.experimental_distribute_dataset(distribute_dataset(data.repeat(), strategy))
    learning_rates, losses, raw_losses, stop_reason = [], [], [], None
    try:
        average, best = 0.0, math.inf
        for index, (rate, batch) in enumerate(zip(rates, batches, strict=False)):
            optimizer.learning_rate = rate
            loss = float(step(batch))
            if not math.isfinite(loss):
                stop_reason = f"the loss became {loss} at learning rate {rate:.3g}"
                break
            average = _SMOOTHING * average + (1 - _SMOOTHING) * loss
            smoothed = average / (1 - _SMOOTHING ** (index + 1))
            learning_rates.append(rate)
            raw_losses.append(loss)
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > stop_factor * best:
                stop_reason = f"the smoothed loss exceeded {stop_factor:g}x its best at learning rate {rate:.3g}"
                break
    finally:
        for variable, value in zip(model.variables, saved, strict=True):
            variable.assign(value)
    if not learning_rates:
        raise ValueError(
            f"The learning-rate sweep has no finite loss: {stop_reason}. Check the data and labels, "
            f"or lower min_learning_rate (got {min_learning_rate:g})."
        )
    if stop_reason:
        _logger.info("Learning-rate sweep stopped after %d steps: %s", len(learning_rates), stop_reason)
    suggested = suggest_learning_rate(learning_rates, losses)
    _logger.info("Suggested learning rate: %.3g", suggested)
    if plot_path is not None:
        plot_path = os.fspath(plot_path)
        _plot(learning_rates, losses, raw_losses, suggested, plot_path)
        _logger.info("Wrote the loss-vs-learning-rate plot to %s", plot_path)
    return LearningRateSweep(learning_rates, losses, raw_losses, suggested, plot_path, stop_reason)


def _check_arguments(model, data, min_learning_rate, max_learning_rate, steps, stop_factor, plot_path) -> None:
    """Raise one ValueError listing every bad argument, before anything trains."""
    errors = [
        number_error("min_learning_rate", min_learning_rate, minimum=0, exclusive=True),
        number_error("max_learning_rate", max_learning_rate, minimum=0, exclusive=True),
        integer_error("steps", steps, minimum=MIN_STEPS),
        number_error("stop_factor", stop_factor, minimum=1, exclusive=True),
    ]
    if not any(errors[:2]) and min_learning_rate >= max_learning_rate:
        errors.append(
            f"min_learning_rate must be below max_learning_rate; got {min_learning_rate:g} >= "
            f"{max_learning_rate:g}. Sweep e.g. from 1e-7 to 1."
        )
    if plot_path is not None and not isinstance(plot_path, (str, os.PathLike)):
        errors.append(f"plot_path must be a file path (str or os.PathLike) or None; got {plot_path!r}.")
    if not isinstance(model, keras.Model):
        errors.append(f"model must be a keras.Model (e.g. from tftune.build_text_classifier); got {model!r}.")
    elif not model.trainable_variables:
        errors.append(
            f"model {model.name!r} has no trainable weights, so there is nothing to sweep. Make the head "
            f"trainable with tftune.freeze(model) (head only) or tftune.unfreeze_top(model, n)."
        )
    elif model.compiled and model.loss is not None and isinstance(model.loss, (list, tuple, dict)):
        errors.append(
            f"model {model.name!r} is compiled with several losses ({model.loss!r}); the learning-rate "
            f"finder sweeps one classifier output. Compile it with one loss."
        )
    if not isinstance(data, tf.data.Dataset):
        errors.append(f"data must be a batched tf.data.Dataset of (features, labels); got {type(data).__name__}.")
    elif not isinstance(data.element_spec, tuple) or len(data.element_spec) not in (2, 3):
        errors.append(
            f"data must yield (features, labels) or (features, labels, sample_weights) batches, as "
            f"tftune.text_pipelines / tftune.image_pipelines give; got elements {data.element_spec}."
        )
    elif data.cardinality() == 0:
        errors.append("data is empty (0 batches); give at least one batch of (features, labels).")
    raise_errors(*errors)


def _train_step(model: keras.Model, strategy: tf.distribute.Strategy, optimizer, trainable: list):
    """A tf.function that trains one (distributed) batch and returns its mean loss over the global batch."""
    uses_compiled_loss = model.compiled and model.loss is not None
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()

    def replica_step(batch):
        features, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        with tf.GradientTape() as tape:
            predictions = model(features, training=True)
            # Keras losses divide by the number of replicas themselves, so the sum over replicas is the mean.
            if uses_compiled_loss:
                loss = model.compute_loss(features, labels, predictions, sample_weight, training=True)
            else:
                loss = cross_entropy(labels, predictions, sample_weight)
                if model.losses:
                    loss += keras.ops.sum(model.losses) / strategy.num_replicas_in_sync
            scaled_loss = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled_loss, trainable), trainable)
        return loss

    @tf.function
    def step(batch):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=(batch,)), axis=None)

    return step


def suggest_learning_rate(learning_rates: list[float], losses: list[float]) -> float:
    """The rate the valley rule picks from a smoothed sweep, with its flat-curve guard (see the module docstring)."""
    losses = np.asarray(losses)
    lowest = int(np.argmin(losses))
    highest_before = float(losses[: lowest + 1].max())
    if highest_before - losses[lowest] < _MIN_DESCENT * abs(highest_before):
        suggested = max(learning_rates[lowest] / 10, learning_rates[0])
        _logger.warning(
            "The smoothed loss fell by less than %d%% before its lowest point (%.4g -> %.4g), so the sweep shows "
            "no valley; suggesting %.3g, a tenth of the rate at the lowest loss. Widen the range "
            "(min_learning_rate, max_learning_rate) or check that the data is learnable.",
            round(_MIN_DESCENT * 100), highest_before, losses[lowest], suggested,
        )
        return suggested
    # run[i]: length of the longest strictly decreasing subsequence ending at step i.
    run = np.ones(len(losses), dtype=int)
    for index in range(1, len(losses)):
        higher = losses[:index] > losses[index]
        if higher.any():
            run[index] = run[:index][higher].max() + 1
    end = int(np.argmax(run))
    return learning_rates[min(end - run[end] // 2, lowest)]


def _plot(learning_rates, losses, raw_losses, suggested: float, path: str) -> None:
    pyplot = _plotting.pyplot()
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure, axis = pyplot.subplots(figsize=(7, 4.5))
    axis.plot(learning_rates, raw_losses, color="0.75", linewidth=1, label="loss per batch")
    axis.plot(learning_rates, losses, color="C0", linewidth=2, label="smoothed loss")
    axis.axvline(suggested, color="C3", linestyle="--", label=f"suggested {suggested:.3g}")
    axis.plot([suggested], [np.interp(np.log(suggested), np.log(learning_rates), losses)], "o", color="C3")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("training loss")
    axis.set_title("Learning-rate finder")
    axis.legend()
    # The scale shows the descent (from the highest loss before the lowest one), not the divergence after it.
    lowest = min(losses)
    start = max(losses[: losses.index(lowest) + 1])
    span = max(start - lowest, 0.05 * abs(start), 1e-3)
    axis.set_ylim(min(min(raw_losses), lowest) - 0.1 * span, min(max(losses), start + 1.5 * span) + 0.1 * span)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)

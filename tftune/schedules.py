"""Learning-rate schedules for fine-tuning: linear warm-up, then linear or cosine decay, restartable per stage."""

from __future__ import annotations

import math

import keras

from tftune._validation import choice_error, integer_error, number_error, raise_errors

DECAY_SHAPES = ("linear", "cosine", "constant")


@keras.saving.register_keras_serializable(package="tftune")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak_learning_rate`, then linear or cosine decay to the end of the fit.

    The rate rises linearly over `warmup_steps`, then decays to
    `final_ratio * peak_learning_rate` at `total_steps` (`decay="linear"` or
    `"cosine"`) and stays there (a warm-up longer than the fit, or than a
    stage, ends before reaching the peak); with `total_steps=None` or
    `decay="constant"` it stays at the peak. ULMFiT's slanted triangular rate
    is `warmup_steps=0.1 * T, total_steps=T, decay="linear", final_ratio=1/32`.

    `head_only_learning_rate` is the peak while `head_only` is set: tftune
    sets it while the whole backbone is frozen, so a newly attached head
    trains at a head-sized rate first, then at `peak_learning_rate` with the
    backbone.

    Two clock settings let one schedule follow a fit made of stages
    (`GradualUnfreezing` sets them at boundaries; they are read when the
    train function is traced, which Keras does again at every boundary):
    `step_offset` is added to the optimizer's own step count to give the
    fit's step, and `restart(step)` starts a new warm-up at the fit's `step`,
    decaying from there to `total_steps`.

    Example:

    ```python
    schedule = tftune.WarmupDecay(1e-3, warmup_steps=10, total_steps=100, decay="cosine")
    round(float(schedule(4)), 6), float(schedule(100))  # (0.0005, 0.0)
    schedule.restart(50)
    round(float(schedule(54)), 6)  # 0.0005: warming up again
    ```
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        decay: str = "linear",
        final_ratio: float = 0.0,
        head_only_learning_rate: float | None = None,
    ):
        raise_errors(
            *schedule_errors(peak_learning_rate, warmup_steps, total_steps, decay, final_ratio),
            None
            if head_only_learning_rate is None
            else number_error("head_only_learning_rate", head_only_learning_rate, minimum=0, exclusive=True),
        )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.decay = decay
        self.final_ratio = float(final_ratio)
        self.head_only_learning_rate = None if head_only_learning_rate is None else float(head_only_learning_rate)
        self.step_offset = 0
        self.stage_start = 0
        self.head_only = False

    def restart(self, step: int) -> None:
        """Start a new warm-up at the fit's `step`, then decay from its peak to `total_steps`."""
        self.stage_start = int(step)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32") + float(self.step_offset - self.stage_start)
        rate = keras.ops.ones_like(step)
        if self.warmup_steps:
            rate = keras.ops.minimum(rate, (step + 1.0) / self.warmup_steps)
        if self.total_steps is not None and self.decay != "constant":
            decay_steps = max(self.total_steps - self.stage_start - self.warmup_steps, 1)
            progress = keras.ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
            if self.decay == "linear":
                shape = 1.0 - progress
            else:
                shape = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
            decayed = self.final_ratio + (1.0 - self.final_ratio) * shape
            rate = keras.ops.where(step < self.warmup_steps, rate, decayed)
        peak = (
            self.head_only_learning_rate if self.head_only and self.head_only_learning_rate else self.peak_learning_rate
        )
        return peak * rate

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "decay": self.decay,
            "final_ratio": self.final_ratio,
            "head_only_learning_rate": self.head_only_learning_rate,
        }


def schedule_errors(learning_rate, warmup_steps, total_steps, decay, final_ratio) -> list[str | None]:
    """The problems with `WarmupDecay`'s arguments (for `tftune._validation.raise_errors`)."""
    return [
        number_error("learning_rate", learning_rate, minimum=0, exclusive=True),
        integer_error("warmup_steps", warmup_steps, minimum=0),
        None if total_steps is None else integer_error("total_steps", total_steps, minimum=1),
        choice_error("decay", decay, DECAY_SHAPES),
        number_error("final_ratio (final rate / peak rate)", final_ratio, minimum=0, maximum=1),
    ]

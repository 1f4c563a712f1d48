"""`GradualUnfreezing`: the callback that unfreezes layer groups from the top down during one `model.fit`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import keras

from tftune._keras_private import nested_layers
from tftune._validation import choice_error, integer_error, raise_errors
from tftune.unfreeze.freezing import set_trainable_groups, switch_dropout
from tftune.unfreeze.groups import ALL, check_group_count, count_weights, layer_groups, trainable_state
from tftune.unfreeze.optimizer import group_optimizers, group_schedule, layerwise_optimizer
from tftune.unfreeze.schedule import (
    HEAD_FIRST,
    NAMED_SCHEDULE_UNITS,
    SPREAD,
    check_schedule,
    head_first_schedule,
    spread_schedule,
)

# The logger is the package's, `tftune.unfreeze`, as the docstring says.
_logger = logging.getLogger(__package__)


class GradualUnfreezing(keras.callbacks.Callback):
    """Unfreezes layer groups from the top down during one `model.fit` call.

    `schedule` maps a boundary (an epoch, or a global step with
    `unit="step"`) to how many top backbone groups train from there on, on
    top of the head (0 = head only, or "all"); before the first boundary only
    the head trains. The default (`None`) is ULMFiT's: head only, then one more
    group every `every` epochs (or steps). `"spread"` spreads the groups over
    the fit's epochs (`tftune.spread_schedule`): head only in the first epoch,
    every group in the last. `"head_first"` trains the head alone for the first
    half of the first epoch, then every group (`tftune.head_first_schedule`; its
    boundary is a step, so `unit` is "step"). At a boundary the new groups train
    from the next step on, with fresh optimizer state; groups already training
    keep theirs. The train function is re-traced once per boundary. Frozen
    groups run as at inference: BatchNorm in inference mode
    (`keep_batchnorm_frozen=True` keeps it so after unfreezing too) and
    Dropout off (rate 0; Keras does the first for a frozen layer, not the
    second), so the head is fitted on the features the frozen backbone serves
    and the frozen stage runs faster. A Dropout layer gets its own rate back
    when its group unfreezes, and at the end of the fit. With `restart_schedule=True` (the default) every
    group's `WarmupDecay` warms up again at each boundary and decays from its
    peak to the end of the fit, so each stage is its own warm-up-then-decay
    cycle (fastai's `fine_tune`); with False all groups follow one clock over
    the whole fit.

    The stage is a pure function of (epoch, step) and is applied in
    `on_epoch_begin` / `on_train_batch_begin`, so a fit resumed by
    `keras.callbacks.BackupAndRestore` at epoch k restarts in the stage of
    epoch k (the optimizer built up front by `compile_for_unfreezing` has
    the same variables in every stage, so its state restores too). Each epoch
    logs `trainable_params` (History, and TensorBoard if listed after this
    callback); each boundary logs one line (logger `tftune.unfreeze`) and is
    listed in `stages_entered` (`{"epoch", "step", "groups", "trainable_params"}`
    per stage this fit entered, groups from the top; `tftune.write_report`
    takes it). With `steps_per_execution > 1` a step boundary takes effect at
    the next execution.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.compile_for_unfreezing(model, "adamw", 1e-4, layer_decay=1 / 2.6)
    features = model.preprocessor(tf.constant(["a fine, moving film", "a dull, tired mess"] * 4))
    unfreezing = tftune.GradualUnfreezing({0: 0, 1: 1})  # head only, then also the top encoder layer
    history = model.fit(features, np.array([1, 0] * 4), batch_size=4, epochs=2, callbacks=[unfreezing])
    head, top = model.layer_groups[-1].count_params(), model.layer_groups[-2].count_params()
    history.history["trainable_params"] == [head, head + top]  # True (MiniLM: [770, 1775234])
    ```
    """

    def __init__(
        self,
        schedule: Mapping | Sequence | str | None = None,
        *,
        unit: str | None = None,
        every: int = 1,
        keep_batchnorm_frozen: bool = False,
        restart_schedule: bool = True,
        verbose: int = 1,
    ):
        super().__init__()
        named = isinstance(schedule, str)
        named_unit = NAMED_SCHEDULE_UNITS.get(schedule) if named else None
        unit = unit or named_unit or "epoch"
        raise_errors(
            choice_error("unit", unit, ("epoch", "step")),
            integer_error(f"every ({unit}s per newly unfrozen group)", every, minimum=1),
        )
        if named_unit is not None and unit != named_unit:
            raise ValueError(
                f"schedule {schedule!r} sets its boundaries in {named_unit}s; got unit={unit!r}. Leave unit unset."
            )
        if named and named_unit is None:
            raise ValueError(
                f"schedule {schedule!r} is not a schedule name; the names are "
                f"{' and '.join(map(repr, NAMED_SCHEDULE_UNITS))} (or pass a mapping such as {{0: 0, 1: 2, 3: 'all'}})."
            )
        self.schedule = schedule if named or schedule is None else check_schedule(schedule, unit)
        self._pairs = self.schedule
        self.unit = unit
        self.every = every
        self.keep_batchnorm_frozen = bool(keep_batchnorm_frozen)
        self.restart_schedule = bool(restart_schedule)
        self.verbose = verbose
        self.stages_entered: list[dict] = []
        self._stage = None
        self._epoch = 0
        self._groups = ()

    def get_config(self) -> dict:
        return {
            "schedule": self.schedule if self.schedule is None or isinstance(self.schedule, str) else [
                list(pair) for pair in self.schedule
            ],
            "unit": self.unit,
            "every": self.every,
            "keep_batchnorm_frozen": self.keep_batchnorm_frozen,
            "restart_schedule": self.restart_schedule,
            "verbose": self.verbose,
        }

    def stage_at(self, epoch: int, step: int = 0) -> tuple[int, int]:
        """(boundary, number of top backbone groups trainable) at `step` of `epoch`.

        A pure function of the schedule and the model's groups (and of the
        fit's steps per epoch for `unit="step"`), so a resumed fit lands in
        the same stage. Available once the fit began.
        """
        position = epoch if self.unit == "epoch" else epoch * self._steps_per_epoch() + step
        n_backbone = len(self._groups) - 1
        if self._pairs is None:
            n_groups = min(position // self.every, n_backbone)
            return n_groups * self.every, n_groups
        boundary, n_groups = 0, 0
        for start, count in self._pairs:
            if start > position:
                break
            boundary, n_groups = start, n_backbone if count == ALL else count
        return boundary, n_groups

    def boundaries(self) -> list[int]:
        """The boundaries (epochs, or steps with `unit="step"`) where this fit's trainable set grows.

        Available once the fit began (a "spread" schedule depends on the fit's
        epochs, a "head_first" one on its steps per epoch). `epoch_boundaries`
        gives the ones `tftune.write_report` takes.
        """
        epochs = (self.params or {}).get("epochs") or 0
        end = epochs if self.unit == "epoch" else epochs * self._steps_per_epoch()
        if self._pairs is None:
            starts = [index * self.every for index in range(1, len(self._groups))]
        else:
            starts = [start for start, _ in self._pairs]
        return [start for start in starts if 0 < start < end]

    def epoch_boundaries(self) -> list[int]:
        """The boundaries that fall on an epoch's start, as epochs: `tftune.write_report(unfreezing_boundaries=...)`.

        A step boundary inside an epoch (the "head_first" one, say) splits no
        per-epoch history, so it is left out. Available once the fit began.
        """
        if self.unit == "epoch":
            return self.boundaries()
        steps = self._steps_per_epoch()
        return [boundary // steps for boundary in self.boundaries() if boundary % steps == 0]

    def on_train_begin(self, logs=None):
        groups = self._groups = layer_groups(self.model)
        if self.schedule == SPREAD:
            self._pairs = tuple(spread_schedule((self.params or {}).get("epochs") or 0, len(groups) - 1).items())
        elif self.schedule == HEAD_FIRST:
            self._pairs = tuple(head_first_schedule(self._steps_per_epoch()).items())
        if self._pairs is not None:
            for start, count in self._pairs:
                if count != ALL:
                    check_group_count(count, groups, f"schedule[{start}]")
        if self.unit == "step":
            self._steps_per_epoch()
        multi_optimizer = layerwise_optimizer(self.model)
        if multi_optimizer is None:
            raise ValueError(
                f"GradualUnfreezing needs the model compiled with tftune.compile_for_unfreezing "
                f"(its optimizer is built for every group up front); got optimizer "
                f"{type(getattr(self.model, 'optimizer', None)).__name__}. Call "
                f"tftune.compile_for_unfreezing(model, optimizer, learning_rate, ...) before fit."
            )
        self._stage = None
        self.stages_entered = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._enter(epoch, 0)

    def on_train_batch_begin(self, batch, logs=None):
        if self.unit == "step":
            self._enter(self._epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["trainable_params"] = count_weights(self.model.trainable_weights)

    def on_train_end(self, logs=None):
        # The model leaves the fit with every Dropout at its own rate, so a saved config keeps it. The last
        # train function (traced with the frozen groups' Dropout off) stays consistent: those groups are still frozen.
        for layer in nested_layers(self.model):
            if isinstance(layer, keras.layers.Dropout):
                switch_dropout(layer, off=False)

    def _enter(self, epoch: int, step: int) -> None:
        boundary, n_groups = self.stage_at(epoch, step)
        if (boundary, n_groups) == self._stage:
            return
        groups = self._groups
        set_trainable_groups(self.model, groups, n_groups, self.keep_batchnorm_frozen, dropout_off_when_frozen=True)
        self._align_schedules(epoch, step, boundary)
        self._stage = (boundary, n_groups)
        trainable = [group.name for group in reversed(groups) if trainable_state(group) != "no"]
        parameters = count_weights(self.model.trainable_weights)
        stage = {"epoch": epoch, "step": step, "groups": trainable, "trainable_params": parameters}
        self.stages_entered.append(stage)
        if self.verbose:
            _logger.info(
                f"GradualUnfreezing: epoch {epoch} step {step}: {len(trainable)}/{len(groups)} groups trainable "
                f"({', '.join(trainable)}), {parameters:,} trainable parameters"
            )

    def _align_schedules(self, epoch: int, step: int, boundary: int) -> None:
        """Put each group's WarmupDecay on the fit's step clock; restart_schedule: warm up again from the boundary."""
        fit_step = int(layerwise_optimizer(self.model).iterations.numpy())
        stage_start = fit_step - self._steps_into_stage(epoch, step, boundary) if self.restart_schedule else 0
        for group_optimizer in group_optimizers(self.model).values():
            schedule = group_schedule(group_optimizer)
            if schedule is not None:
                schedule.step_offset = fit_step - int(group_optimizer.iterations.numpy())
                schedule.restart(stage_start)

    def _steps_into_stage(self, epoch: int, step: int, boundary: int) -> int:
        """Optimizer steps since the stage's boundary (non-zero when a fit resumes inside a stage)."""
        if self.unit == "step":
            return epoch * self._steps_per_epoch() + step - boundary
        return step if epoch == boundary else (epoch - boundary) * self._steps_per_epoch() + step

    def _steps_per_epoch(self) -> int:
        steps = (self.params or {}).get("steps")
        if not steps:
            raise ValueError(
                f"GradualUnfreezing(unit={self.unit!r}) needs the number of steps per epoch, which this fit "
                f"does not know (a dataset of unknown length). Pass steps_per_epoch= to fit, or use unit='epoch'."
            )
        return steps

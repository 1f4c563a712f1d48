"""Freezing, gradual unfreezing and layer-wise learning rates for tftune classifiers.

The unit of freezing is a layer group (`model.layer_groups`, recorded by the
builders, ordered from the input up, the last one is the `head`). Keras 3
ignores a `trainable` change after the train function was traced, and an
optimizer built on the head alone refuses the backbone later. tftune handles
both:

- `compile_for_unfreezing` gives every group its own optimizer (one
  `keras.optimizers.MultiOptimizer` routing variables by path) built up front
  over every weight that may ever train. A group that starts training later
  starts from fresh moments and its own step count (correct Adam bias
  correction); groups already training keep theirs. Group k from the top gets
  `learning_rate * layer_decay**k`, so the rate itself (not the gradient) is
  scaled, which is what adaptive optimizers need.
- The freeze helpers and `GradualUnfreezing` flip `trainable` on whole
  groups, point the optimizer at the new trainable set and re-create the
  train function, so the change takes effect at the next step (one re-trace).
  `MultiOptimizer.apply` insists on exactly the variables it was built with,
  so its router is rebuilt on the new trainable set (this creates no
  variables; the per-group optimizers and their state are untouched).

This holds under `tf.distribute` strategies (the optimizers are created in the
model's strategy scope) and with mixed_float16 (Keras wraps the
MultiOptimizer in a LossScaleOptimizer).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Mapping, Sequence

import keras

from tftune._keras_private import nested_layers, set_own_trainable
from tftune._validation import choice_error, integer_error, number_error, raise_errors
from tftune.families import HEAD
from tftune.distribute import use_all_replicas_loss_scaling
from tftune.lora import restrict_to_adapters
from tftune.schedules import WarmupDecay, schedule_errors

ALL = "all"
# GradualUnfreezing schedule names. "spread": head only first, every group in the last epoch, evenly in
# between. "head_first": the head alone for the first half of the first epoch, then every group.
SPREAD = "spread"
HEAD_FIRST = "head_first"
# Each name's boundary unit: "spread" is resolved from the fit's epochs, "head_first" from its steps per epoch.
_NAMED_SCHEDULE_UNITS = {SPREAD: "epoch", HEAD_FIRST: "step"}
_OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}
_logger = logging.getLogger(__name__)
# The WarmupDecay of each per-group optimizer, held by tftune (Keras has no public getter for a schedule).
_GROUP_SCHEDULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The own rate of each Dropout layer GradualUnfreezing switched off while its group is frozen.
_SWITCHED_OFF_DROPOUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Per-group optimizers are named after their group: "group_<group name>".
_GROUP_OPTIMIZER_PREFIX = "group_"
# Settings that would act per group instead of over the whole model.
_PER_GROUP_ONLY = ("global_clipnorm", "use_ema", "gradient_accumulation_steps")


def freeze(model: keras.Model) -> None:
    """Freeze the whole backbone and leave the head trainable.

    Usable before `compile` and between fits: the next `fit` trains the head only.

    Example:

    ```python
    model = tftune.build_text_classifier(bert_dir, num_classes=2, sequence_length=32)
    tftune.freeze(model)
    print(tftune.trainable_summary(model))
    ```
    """
    unfreeze_top(model, 0)


def unfreeze_top(model: keras.Model, n_groups: int | str, *, keep_batchnorm_frozen: bool = False) -> None:
    """Make the head and the top `n_groups` backbone groups trainable, freeze the rest.

    `n_groups=0` is `freeze(model)`, `"all"` is `unfreeze_all(model)`.
    With `keep_batchnorm_frozen=True`, BatchNormalization layers stay frozen
    (inference mode, moving statistics fixed) even in trainable groups.

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", num_classes=3, weights=None)
    tftune.unfreeze_top(model, 2, keep_batchnorm_frozen=True)  # stage_3, stage_4, head
    ```
    """
    groups = layer_groups(model)
    n_groups = _check_group_count(n_groups, groups, "n_groups")
    _set_trainable_groups(model, groups, n_groups, keep_batchnorm_frozen)


def unfreeze_all(model: keras.Model, *, keep_batchnorm_frozen: bool = False) -> None:
    """Make every group trainable (full fine-tuning).

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", num_classes=3, image_size=(32, 32), weights=None)
    tftune.freeze(model)
    tftune.unfreeze_all(model)
    print(tftune.trainable_summary(model))  # every group trainable
    ```
    """
    unfreeze_top(model, ALL, keep_batchnorm_frozen=keep_batchnorm_frozen)


def trainable_summary(model: keras.Model) -> str:
    """A table of the layer groups: name, trainable or not, parameters, learning rate.

    The learning-rate column appears once the model was compiled with
    `compile_for_unfreezing` (the current rate of each group's optimizer).

    Example:

    ```python
    model = tftune.build_image_classifier("resnet50", num_classes=3, image_size=(32, 32), weights=None)
    tftune.unfreeze_top(model, 1)
    print(tftune.trainable_summary(model))  # stage_4 and head trainable
    ```
    """
    groups = layer_groups(model)
    group_optimizers = _group_optimizers(model)
    header = f"{'group':<12} {'trainable':<10} {'params':>12}" + ("  learning_rate" if group_optimizers else "")
    lines = [header]
    for group in groups:
        line = f"{group.name:<12} {_trainable_state(group):<10} {group.count_params():>12,}"
        if group_optimizers:
            line += f"  {float(group_optimizers[group.name].learning_rate):.3g}"
        lines.append(line)
    trainable = _count(model.trainable_weights)
    lines.append(f"trainable parameters: {trainable:,} of {model.count_params():,}")
    return "\n".join(lines)


def layer_groups(model: keras.Model) -> tuple:
    """The model's recorded layer groups, checked: at least one backbone group and a `head` last.

    Internal (not re-exported by `tftune`); users read `model.layer_groups`
    (see the `LayerGroup` example).
    """
    groups = tuple(getattr(model, "layer_groups", None) or ())
    if len(groups) < 2 or groups[-1].name != HEAD:
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} has no recorded layer groups "
            f"(got {[getattr(group, 'name', group) for group in groups]}); freezing and "
            f"layer-wise rates need `model.layer_groups` ending with a 'head' group. Build "
            f"the model with tftune.build_text_classifier or tftune.build_image_classifier."
        )
    return groups


def spread_schedule(epochs: int, backbone_groups: int) -> dict[int, int | str]:
    """Gradual unfreezing spread over `epochs`: head only in the first, every group in the last, evenly between.

    `GradualUnfreezing("spread")` uses it with the fit's epochs and the model's groups.

    Example:

    ```python
    tftune.spread_schedule(epochs=3, backbone_groups=8)  # {0: 0, 1: 4, 2: 'all'}
    ```
    """
    raise_errors(
        integer_error("epochs (the 'spread' schedule needs a head-only epoch and a last one)", epochs, minimum=2),
        integer_error("backbone_groups", backbone_groups, minimum=1),
    )
    stages = {epoch: round(epoch * backbone_groups / (epochs - 1)) for epoch in range(epochs)}
    return {epoch: ALL if groups >= backbone_groups else groups for epoch, groups in stages.items()}


def head_first_schedule(steps_per_epoch: int, head_fraction: float = 0.5) -> dict[int, int | str]:
    """A step schedule: the new head alone for `head_fraction` of the first epoch, then every group.

    Linear probing then fine-tuning (LP-FT; fastai's `fine_tune` with a
    fraction of an epoch frozen): the head leaves its random start at a
    head-sized rate before its gradients reach the pretrained backbone. Use it
    with `unit="step"`; `GradualUnfreezing("head_first")` uses it with the
    fit's steps per epoch and `head_fraction=0.5`.

    Example:

    ```python
    tftune.head_first_schedule(steps_per_epoch=50)  # {0: 0, 25: 'all'}
    unfreezing = tftune.GradualUnfreezing(tftune.head_first_schedule(50, head_fraction=0.2), unit="step")
    ```
    """
    raise_errors(
        integer_error("steps_per_epoch", steps_per_epoch, minimum=1),
        number_error("head_fraction (of the first epoch, head only)", head_fraction, minimum=0, maximum=1),
    )
    head_steps = max(1, round(steps_per_epoch * head_fraction))
    return {0: 0, head_steps: ALL}


def parse_schedule(text: str, unit: str = "epoch") -> tuple[tuple[int, int | str], ...]:
    """Parse a command-line unfreezing schedule "boundary:groups,..." for `GradualUnfreezing`.

    Example:

    ```python
    tftune.parse_schedule("0:0,1:2,3:all")  # ((0, 0), (1, 2), (3, 'all'))
    ```
    """
    pairs = []
    for item in str(text).split(","):
        boundary, separator, count = item.strip().partition(":")
        if not separator or not boundary.strip().isdigit() or not (count.strip().isdigit() or count.strip() == ALL):
            raise ValueError(
                f"Unfreezing schedule {text!r}: {item.strip()!r} is not '{unit}:groups'. Write e.g. "
                f"'0:0,1:2,3:all' ({unit} -> number of top backbone groups trainable, 0 = head only, or 'all')."
            )
        pairs.append((int(boundary), ALL if count.strip() == ALL else int(count)))
    return _check_schedule(pairs, unit)


def compile_for_unfreezing(
    model: keras.Model,
    optimizer: str | keras.optimizers.Optimizer = "adamw",
    learning_rate: float = 2e-5,
    *,
    head_learning_rate: float | None = None,
    layer_decay: float | None = None,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    decay: str = "linear",
    final_ratio: float = 0.0,
    loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
    **compile_kwargs,
) -> None:
    """Compile a tftune classifier so that its groups can be (un)frozen at any time.

    Every layer group gets its own copy of `optimizer` ("adam", "adamw",
    "sgd", or an Adam / AdamW / SGD instance whose settings are copied), with
    a `WarmupDecay` rate `learning_rate * layer_decay**k` for group k from the
    top (head k=0; `layer_decay=None` means 1, ULMFiT uses 1/2.6).
    `head_learning_rate`, when given, is the head's rate while the whole
    backbone is frozen (the head-only stage): a newly attached head wants a
    much larger rate than pretrained layers (fastai's `fine_tune`); once
    backbone groups train, the head trains with them at `learning_rate`. They are named `group_<group name>` and
    routed by variable path through one `keras.optimizers.MultiOptimizer`
    (wrapped in a `LossScaleOptimizer` under mixed_float16, as Keras does),
    built now, inside the model's distribution strategy, over every weight
    that may ever train. Plain `model.fit` works; the freeze helpers and
    `GradualUnfreezing` change the trainable groups between or during fits.
    Call it after `freeze` / `unfreeze_top` or before, in any order.

    Example:

    ```python
    model = tftune.build_text_classifier(bert_dir, num_classes=2, sequence_length=16)
    tftune.freeze(model)
    tftune.compile_for_unfreezing(model, "adamw", 1e-4, layer_decay=1 / 2.6, total_steps=500)
    print(tftune.trainable_summary(model))  # group k from the top (head: k=0) at 1e-4 / 2.6**k
    ```
    """
    groups = layer_groups(model)
    optimizer_class, optimizer_config = _optimizer_template(optimizer)
    raise_errors(
        *schedule_errors(learning_rate, warmup_steps, total_steps, decay, final_ratio),
        None if head_learning_rate is None else number_error("head_learning_rate", head_learning_rate, minimum=0, exclusive=True),
        _layer_decay_error(layer_decay),
    )
    optimizer_config.pop("learning_rate", None)
    optimizer_config.pop("name", None)
    with model.distribute_strategy.scope():
        per_group = {}
        for depth, group in enumerate(reversed(groups)):
            rate = learning_rate * (layer_decay if layer_decay is not None else 1.0) ** depth
            head_only_rate = head_learning_rate if group.name == HEAD else None
            schedule = WarmupDecay(rate, warmup_steps, total_steps, decay, final_ratio, head_only_rate)
            per_group[group.name] = optimizer_class(
                learning_rate=schedule, name=_GROUP_OPTIMIZER_PREFIX + group.name, **optimizer_config
            )
            _GROUP_SCHEDULES[per_group[group.name]] = schedule
        trainable_by_group = _trainable_weights_by_group(model, groups)
        routes = {
            variable.path: per_group[group_name]
            for group_name, variables in trainable_by_group.items()
            for variable in variables
        }
        if len(routes) != sum(len(variables) for variables in trainable_by_group.values()):
            raise ValueError(
                f"Model {model.name!r} has several weights with the same path, so they cannot be routed to "
                f"per-group optimizers. Give its layers unique names."
            )
        multi_optimizer = keras.optimizers.MultiOptimizer(
            keras.optimizers.OptimizerMap(per_group[HEAD], routes), name="layerwise"
        )
        model.compile(optimizer=multi_optimizer, loss=loss, metrics=list(metrics or []), **compile_kwargs)
        use_all_replicas_loss_scaling(model)
        model.optimizer.build([variable for variables in trainable_by_group.values() for variable in variables])
    _track_trainable(model)


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
    model = tftune.build_text_classifier(bert_dir, num_classes=2, sequence_length=16)
    tftune.compile_for_unfreezing(model, "adamw", 1e-4, layer_decay=1 / 2.6)
    features = model.preprocessor(tf.constant(["a fine, moving film", "a dull, tired mess"] * 4))
    unfreezing = tftune.GradualUnfreezing({0: 0, 1: 1})  # head only, then also the top encoder layer
    history = model.fit(features, np.array([1, 0] * 4), batch_size=4, epochs=2, callbacks=[unfreezing])
    history.history["trainable_params"]  # [770, 1775234]
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
        named_unit = _NAMED_SCHEDULE_UNITS.get(schedule) if named else None
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
                f"schedule {schedule!r} is not a schedule name; the names are {' and '.join(map(repr, _NAMED_SCHEDULE_UNITS))} "
                f"(or pass a mapping such as {{0: 0, 1: 2, 3: 'all'}})."
            )
        self.schedule = schedule if named or schedule is None else _check_schedule(schedule, unit)
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
                    _check_group_count(count, groups, f"schedule[{start}]")
        if self.unit == "step":
            self._steps_per_epoch()
        multi_optimizer = _multi_optimizer(self.model)
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
            logs["trainable_params"] = _count(self.model.trainable_weights)

    def on_train_end(self, logs=None):
        # The model leaves the fit with every Dropout at its own rate, so a saved config keeps it. The last
        # train function (traced with the frozen groups' Dropout off) stays consistent: those groups are still frozen.
        for layer in nested_layers(self.model):
            if isinstance(layer, keras.layers.Dropout):
                _switch_dropout(layer, off=False)

    def _enter(self, epoch: int, step: int) -> None:
        boundary, n_groups = self.stage_at(epoch, step)
        if (boundary, n_groups) == self._stage:
            return
        groups = self._groups
        _set_trainable_groups(self.model, groups, n_groups, self.keep_batchnorm_frozen, dropout_off_when_frozen=True)
        self._align_schedules(epoch, step, boundary)
        self._stage = (boundary, n_groups)
        trainable = [group.name for group in reversed(groups) if _trainable_state(group) != "no"]
        parameters = _count(self.model.trainable_weights)
        stage = {"epoch": epoch, "step": step, "groups": trainable, "trainable_params": parameters}
        self.stages_entered.append(stage)
        if self.verbose:
            _logger.info(
                f"GradualUnfreezing: epoch {epoch} step {step}: {len(trainable)}/{len(groups)} groups trainable "
                f"({', '.join(trainable)}), {parameters:,} trainable parameters"
            )

    def _align_schedules(self, epoch: int, step: int, boundary: int) -> None:
        """Put each group's WarmupDecay on the fit's step clock; with restart_schedule, warm up again from the boundary."""
        fit_step = int(_multi_optimizer(self.model).iterations.numpy())
        stage_start = fit_step - self._steps_into_stage(epoch, step, boundary) if self.restart_schedule else 0
        for group_optimizer in _group_optimizers(self.model).values():
            schedule = _group_schedule(group_optimizer)
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


def _set_trainable_groups(
    model: keras.Model, groups, n_backbone: int, keep_batchnorm_frozen: bool, dropout_off_when_frozen: bool = False
) -> None:
    """Top `n_backbone` groups and the head trainable, the rest frozen; then re-sync optimizer and train function.

    With `dropout_off_when_frozen` (GradualUnfreezing, during its fit), a
    frozen group's Dropout layers get rate 0; otherwise, and whenever their
    group trains, they get their own rate back.
    """
    for container in [layer for layer in nested_layers(model) if isinstance(layer, keras.Model)]:
        # A frozen container (e.g. a user's `model.backbone.trainable = False`) hides every weight below it.
        set_own_trainable(container, True)
    first_trainable = len(groups) - 1 - n_backbone
    for index, group in enumerate(groups):
        trainable = index >= first_trainable
        for layer in group.layers:
            layer.trainable = trainable  # Keras' setter also sets every sublayer.
            for sublayer in nested_layers(layer):
                if trainable and keep_batchnorm_frozen and isinstance(sublayer, keras.layers.BatchNormalization):
                    sublayer.trainable = False
                if isinstance(sublayer, keras.layers.Dropout):
                    _switch_dropout(sublayer, off=dropout_off_when_frozen and not trainable)
    restrict_to_adapters(model)
    _track_trainable(model)


def _switch_dropout(dropout: keras.layers.Dropout, off: bool) -> None:
    """Rate 0 (its own rate kept in `_SWITCHED_OFF_DROPOUT`), or its own rate back."""
    if off:
        _SWITCHED_OFF_DROPOUT.setdefault(dropout, dropout.rate)
        dropout.rate = 0.0
    elif dropout in _SWITCHED_OFF_DROPOUT:
        dropout.rate = _SWITCHED_OFF_DROPOUT.pop(dropout)


def _track_trainable(model: keras.Model) -> None:
    """Point a compile_for_unfreezing optimizer at the current trainable weights; re-create the train function."""
    backbone_frozen = all(_trainable_state(group) == "no" for group in layer_groups(model)[:-1])
    for group_optimizer in _group_optimizers(model).values():
        schedule = _group_schedule(group_optimizer)
        if schedule is not None:
            schedule.head_only = backbone_frozen
    multi_optimizer = _multi_optimizer(model)
    if multi_optimizer is not None and multi_optimizer.built:
        # MultiOptimizer.apply insists on the exact variable list it was built
        # with; its inner (per-group) optimizers, built over every weight, keep
        # their state: rebuilding the router creates no variables.
        multi_optimizer.built = False
        multi_optimizer.build(model.trainable_weights)
    if getattr(model, "compiled", False):
        model.make_train_function(force=True)


def _multi_optimizer(model: keras.Model):
    optimizer = getattr(model, "optimizer", None)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer if isinstance(optimizer, keras.optimizers.MultiOptimizer) else None


def _group_optimizers(model: keras.Model) -> dict:
    """Group name -> its optimizer, for models compiled with compile_for_unfreezing (else empty)."""
    multi_optimizer = _multi_optimizer(model)
    if multi_optimizer is None:
        return {}
    by_name = {optimizer.name: optimizer for optimizer in multi_optimizer.optimizers}
    return {
        group.name: by_name[_GROUP_OPTIMIZER_PREFIX + group.name]
        for group in layer_groups(model)
        if _GROUP_OPTIMIZER_PREFIX + group.name in by_name
    }


def _group_schedule(optimizer: keras.optimizers.Optimizer) -> WarmupDecay | None:
    """The WarmupDecay driving a per-group optimizer (re-attached from its config after `load_model`)."""
    if optimizer not in _GROUP_SCHEDULES:
        schedule = keras.saving.deserialize_keras_object(optimizer.get_config()["learning_rate"])
        if not isinstance(schedule, WarmupDecay):
            return None
        optimizer.learning_rate = schedule
        _GROUP_SCHEDULES[optimizer] = schedule
    return _GROUP_SCHEDULES[optimizer]


def _trainable_weights_by_group(model: keras.Model, groups) -> dict:
    """Group name -> the weights that train when the group is unfrozen (BatchNorm statistics excluded)."""
    saved = [(layer, layer.trainable) for layer in nested_layers(model)]
    for layer, _ in saved:
        layer.trainable = True
    restrict_to_adapters(model)
    by_group = {
        group.name: [weight for layer in group.layers for weight in layer.trainable_weights] for group in groups
    }
    for layer, trainable in saved:
        layer.trainable = trainable
    restrict_to_adapters(model)
    return by_group


def _layer_decay_error(layer_decay) -> str | None:
    if layer_decay is None or (number_error("layer_decay", layer_decay, maximum=1) is None and layer_decay > 0):
        return None
    return f"layer_decay must be in (0, 1] (ULMFiT uses 1/2.6 ~ 0.38) or None for one rate; got {layer_decay!r}."


def _optimizer_template(optimizer) -> tuple[type, dict]:
    if isinstance(optimizer, str) and optimizer.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[optimizer.lower()], {}
    if isinstance(optimizer, tuple(_OPTIMIZERS.values())) and not isinstance(
        optimizer, (keras.optimizers.LossScaleOptimizer, keras.optimizers.MultiOptimizer)
    ):
        config = optimizer.get_config()
        unsupported = [key for key in _PER_GROUP_ONLY if config.get(key) not in (None, False)]
        if unsupported:
            raise ValueError(
                f"compile_for_unfreezing gives each layer group its own optimizer, so {unsupported} would act "
                f"per group, not over the model. Create the optimizer without them."
            )
        return type(optimizer), config
    raise ValueError(
        f"compile_for_unfreezing supports the optimizers {sorted(_OPTIMIZERS)} (names or keras instances), "
        f"whose update is proportional to the learning rate so a per-group rate is exact; got {optimizer!r}."
    )


def _check_schedule(schedule, unit: str) -> tuple[tuple[int, int | str], ...]:
    pairs = list(schedule.items()) if isinstance(schedule, Mapping) else [tuple(pair) for pair in schedule]
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ValueError(
            f"schedule must map {unit}s to a number of top backbone groups, e.g. {{0: 0, 1: 2, 3: 'all'}}; "
            f"got {schedule!r}."
        )
    previous_start, previous_count = -1, 0
    for start, count in pairs:
        if integer_error("start", start, minimum=0):
            raise ValueError(f"schedule {unit}s must be non-negative integers; got {start!r} in {schedule!r}.")
        if start <= previous_start:
            raise ValueError(
                f"schedule {unit}s must be strictly increasing; {start} follows {previous_start} in {schedule!r}."
            )
        if count != ALL and integer_error("count", count, minimum=0):
            raise ValueError(
                f"schedule values must be a number of top backbone groups (0 = head only) or 'all'; "
                f"got {count!r} at {unit} {start}."
            )
        if previous_count == ALL or (count != ALL and count < previous_count):
            raise ValueError(
                f"schedule must only unfreeze: {count!r} groups at {unit} {start} is fewer than the "
                f"{previous_count!r} before it in {schedule!r}."
            )
        previous_start, previous_count = start, count
    return tuple(pairs)


def _check_group_count(n_groups, groups, what: str) -> int:
    backbone = [group.name for group in groups[:-1]]
    if n_groups == ALL:
        return len(backbone)
    if integer_error(what, n_groups, minimum=0, maximum=len(backbone)):
        raise ValueError(
            f"{what}={n_groups!r} asks for more top groups than the model has: it has {len(backbone)} "
            f"backbone groups ({', '.join(backbone)}) under the head. Use 0..{len(backbone)} or 'all'."
        )
    return n_groups


def _trainable_state(group) -> str:
    flags = [sub.trainable for layer in group.layers for sub in nested_layers(layer) if sub.weights]
    return "yes" if all(flags) else "partial" if any(flags) else "no"


def _count(weights) -> int:
    return int(sum(math.prod(weight.shape) for weight in weights))

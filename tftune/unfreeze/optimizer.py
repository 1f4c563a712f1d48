"""The per-group optimizer: every layer group its own optimizer and rate, routed by one `MultiOptimizer`."""

from __future__ import annotations

import keras

from tftune._keras_private import nested_layers, optimizer_routes, rebuild_multi_optimizer
from tftune._validation import layer_decay_error, number_error, raise_errors
from tftune.distribute import use_all_replicas_loss_scaling
from tftune.families import HEAD
from tftune.lora import restrict_to_adapters
from tftune.options import OPTIMIZERS, optimizer_error
from tftune.schedules import WarmupDecay, schedule_errors
from tftune.unfreeze.groups import layer_groups, trainable_state

# Per-group optimizers are named after their group: "group_<group name>".
_GROUP_OPTIMIZER_PREFIX = "group_"
# The attribute of a per-group optimizer holding its WarmupDecay (Keras has no public getter for a schedule).
# tftune's attributes on Keras objects are named tftune_*: Keras' own never are, and its savers skip a plain value.
_SCHEDULE_ATTRIBUTE = "tftune_schedule"


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
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=16)
    tftune.freeze(model)
    tftune.compile_for_unfreezing(model, "adamw", 1e-4, layer_decay=1 / 2.6, total_steps=500)
    print(tftune.trainable_summary(model))  # group k from the top (head: k=0) at 1e-4 / 2.6**k
    ```
    """
    groups = layer_groups(model)
    optimizer_class, optimizer_config = _optimizer_template(optimizer)
    raise_errors(
        *schedule_errors(learning_rate, warmup_steps, total_steps, decay, final_ratio),
        None
        if head_learning_rate is None
        else number_error("head_learning_rate", head_learning_rate, minimum=0, exclusive=True),
        layer_decay_error("layer_decay", layer_decay),
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
            setattr(per_group[group.name], _SCHEDULE_ATTRIBUTE, schedule)
        trainable_by_group = _trainable_weights_by_group(model, groups)
        multi_optimizer = keras.optimizers.MultiOptimizer(
            keras.optimizers.OptimizerMap(per_group[HEAD], _routes(model, trainable_by_group, per_group)),
            name="layerwise",
        )
        model.compile(optimizer=multi_optimizer, loss=loss, metrics=list(metrics or []), **compile_kwargs)
        use_all_replicas_loss_scaling(model)
        model.optimizer.build([variable for variables in trainable_by_group.values() for variable in variables])
    track_trainable(model)


def route_group_optimizers(model: keras.Model) -> None:
    """Key a `compile_for_unfreezing` optimizer's routes by the model's own variable paths (no-op otherwise).

    The routes are saved with the optimizer in a `.keras` file. keras-hub
    names some layers automatically (MiT, MobileNetV5), so a model rebuilt by
    `keras.models.load_model` can have other variable paths than the model
    that was saved: the classifiers call this whenever they are compiled, so
    each weight goes back to its group's optimizer (and state).
    """
    multi_optimizer = layerwise_optimizer(model)
    per_group = group_optimizers(model)
    groups = layer_groups(model)
    if multi_optimizer is None or len(per_group) != len(groups):
        return
    routes = _routes(model, _trainable_weights_by_group(model, groups), per_group)
    table = optimizer_routes(multi_optimizer)
    for path in list(table):
        del table[path]
    for path, optimizer in routes.items():
        table[path] = optimizer


def _routes(model: keras.Model, trainable_by_group: dict, per_group: dict) -> dict:
    """Variable path -> its group's optimizer."""
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
    return routes


def track_trainable(model: keras.Model) -> None:
    """Point a compile_for_unfreezing optimizer at the current trainable weights; re-create the train function."""
    backbone_frozen = all(trainable_state(group) == "no" for group in layer_groups(model)[:-1])
    for group_optimizer in group_optimizers(model).values():
        schedule = group_schedule(group_optimizer)
        if schedule is not None:
            schedule.head_only = backbone_frozen
    multi_optimizer = layerwise_optimizer(model)
    if multi_optimizer is not None and multi_optimizer.built:
        # MultiOptimizer.apply insists on the exact variable list it was built
        # with; its inner (per-group) optimizers, built over every weight, keep
        # their state: rebuilding the router creates no variables.
        rebuild_multi_optimizer(multi_optimizer, model.trainable_weights)
    if getattr(model, "compiled", False):
        model.make_train_function(force=True)


def layerwise_optimizer(model: keras.Model) -> keras.optimizers.MultiOptimizer | None:
    """The MultiOptimizer of a model compiled with compile_for_unfreezing (under any loss scaling), else None."""
    optimizer = getattr(model, "optimizer", None)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer if isinstance(optimizer, keras.optimizers.MultiOptimizer) else None


def group_optimizers(model: keras.Model) -> dict:
    """Group name -> its optimizer, for models compiled with compile_for_unfreezing (else empty)."""
    multi_optimizer = layerwise_optimizer(model)
    if multi_optimizer is None:
        return {}
    by_name = {optimizer.name: optimizer for optimizer in multi_optimizer.optimizers}
    return {
        group.name: by_name[_GROUP_OPTIMIZER_PREFIX + group.name]
        for group in layer_groups(model)
        if _GROUP_OPTIMIZER_PREFIX + group.name in by_name
    }


def group_schedule(optimizer: keras.optimizers.Optimizer) -> WarmupDecay | None:
    """The WarmupDecay driving a per-group optimizer (re-attached from its config after `load_model`)."""
    schedule = getattr(optimizer, _SCHEDULE_ATTRIBUTE, None)
    if schedule is None:
        schedule = keras.saving.deserialize_keras_object(optimizer.get_config()["learning_rate"])
        if not isinstance(schedule, WarmupDecay):
            return None
        optimizer.learning_rate = schedule
        setattr(optimizer, _SCHEDULE_ATTRIBUTE, schedule)
    return schedule


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


def _optimizer_template(optimizer) -> tuple[type, dict]:
    raise_errors(optimizer_error("optimizer", optimizer))
    if isinstance(optimizer, str):
        return OPTIMIZERS[optimizer.lower()], {}
    return type(optimizer), optimizer.get_config()

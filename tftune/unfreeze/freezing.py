"""The freezing helpers: whole layer groups trainable or frozen, between fits or during one (`GradualUnfreezing`)."""

from __future__ import annotations

import keras

from tftune._keras_private import nested_layers, set_own_trainable
from tftune.lora import restrict_to_adapters
from tftune.unfreeze.groups import ALL, check_group_count, count_weights, layer_groups, trainable_state
from tftune.unfreeze.optimizer import group_optimizers, track_trainable

# The attribute of a Dropout layer switched off (rate 0) while its group is frozen that holds its own rate. It
# lives on the layer, so a helper that unfreezes the group after an interrupted fit still finds it.
_OWN_RATE_ATTRIBUTE = "tftune_own_rate"


def freeze(model: keras.Model) -> None:
    """Freeze the whole backbone and leave the head trainable.

    Usable before `compile` and between fits: the next `fit` trains the head only.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, num_classes=2, sequence_length=32)
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
    model = tftune.build_image_classifier(image_backbone, num_classes=3, weights=None)
    tftune.unfreeze_top(model, 2, keep_batchnorm_frozen=True)  # stage_3, stage_4, head
    ```
    """
    groups = layer_groups(model)
    n_groups = check_group_count(n_groups, groups, "n_groups")
    set_trainable_groups(model, groups, n_groups, keep_batchnorm_frozen)


def unfreeze_all(model: keras.Model, *, keep_batchnorm_frozen: bool = False) -> None:
    """Make every group trainable (full fine-tuning).

    Example:

    ```python
    model = tftune.build_image_classifier(image_backbone, num_classes=3, image_size=(32, 32), weights=None)
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
    model = tftune.build_image_classifier(image_backbone, num_classes=3, image_size=(32, 32), weights=None)
    tftune.unfreeze_top(model, 1)
    print(tftune.trainable_summary(model))  # stage_4 and head trainable
    ```
    """
    groups = layer_groups(model)
    optimizers = group_optimizers(model)
    header = f"{'group':<12} {'trainable':<10} {'params':>12}" + ("  learning_rate" if optimizers else "")
    lines = [header]
    for group in groups:
        line = f"{group.name:<12} {trainable_state(group):<10} {group.count_params():>12,}"
        if optimizers:
            line += f"  {float(optimizers[group.name].learning_rate):.3g}"
        lines.append(line)
    trainable = count_weights(model.trainable_weights)
    lines.append(f"trainable parameters: {trainable:,} of {model.count_params():,}")
    return "\n".join(lines)


def set_trainable_groups(
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
                    switch_dropout(sublayer, off=dropout_off_when_frozen and not trainable)
    restrict_to_adapters(model)
    track_trainable(model)


def switch_dropout(dropout: keras.layers.Dropout, off: bool) -> None:
    """Rate 0 (its own rate kept on the layer), or its own rate back."""
    own_rate = getattr(dropout, _OWN_RATE_ATTRIBUTE, None)
    if off:
        if own_rate is None:
            setattr(dropout, _OWN_RATE_ATTRIBUTE, dropout.rate)
        dropout.rate = 0.0
    elif own_rate is not None:
        dropout.rate = own_rate
        setattr(dropout, _OWN_RATE_ATTRIBUTE, None)

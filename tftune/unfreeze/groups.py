"""Layer groups, the unit of freezing: a model's checked groups, a group's trainable state, group counts."""

from __future__ import annotations

import math

import keras

from tftune._keras_private import nested_layers
from tftune._validation import integer_error
from tftune.families import HEAD

# "Every backbone group" wherever a number of top backbone groups is asked for.
ALL = "all"


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


def check_group_count(n_groups, groups, what: str) -> int:
    """`n_groups` top backbone groups (a number, or "all") as a number, checked against the model's `groups`."""
    backbone = [group.name for group in groups[:-1]]
    if n_groups == ALL:
        return len(backbone)
    if integer_error(what, n_groups, minimum=0, maximum=len(backbone)):
        raise ValueError(
            f"{what}={n_groups!r} asks for more top groups than the model has: it has {len(backbone)} "
            f"backbone groups ({', '.join(backbone)}) under the head. Use 0..{len(backbone)} or 'all'."
        )
    return n_groups


def trainable_state(group) -> str:
    """"yes", "partial" or "no": whether the group's layers that hold weights are trainable."""
    flags = [sub.trainable for layer in group.layers for sub in nested_layers(layer) if sub.weights]
    return "yes" if all(flags) else "partial" if any(flags) else "no"


def count_weights(weights) -> int:
    """The number of parameters in `weights`."""
    return int(sum(math.prod(weight.shape) for weight in weights))

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

Modules, one job each: `groups` (a model's layer groups), `freezing` (the
freeze helpers), `schedule` (unfreezing schedules: names, parsing, checks),
`optimizer` (the per-group optimizer), `callback` (`GradualUnfreezing`).
State stays with what it describes: each per-group optimizer holds its
`WarmupDecay`, and a Dropout layer switched off while its group is frozen
holds its own rate.
"""

from tftune.unfreeze.callback import GradualUnfreezing
from tftune.unfreeze.freezing import freeze, trainable_summary, unfreeze_all, unfreeze_top
from tftune.unfreeze.groups import ALL, layer_groups
from tftune.unfreeze.optimizer import compile_for_unfreezing, group_optimizers, route_group_optimizers
from tftune.unfreeze.schedule import HEAD_FIRST, SPREAD, head_first_schedule, parse_schedule, spread_schedule

# The name tests/unfreeze_test.py reads the per-group optimizers by.
_group_optimizers = group_optimizers

__all__ = [
    "ALL",
    "HEAD_FIRST",
    "SPREAD",
    "GradualUnfreezing",
    "compile_for_unfreezing",
    "route_group_optimizers",
    "freeze",
    "group_optimizers",
    "head_first_schedule",
    "layer_groups",
    "parse_schedule",
    "spread_schedule",
    "trainable_summary",
    "unfreeze_all",
    "unfreeze_top",
]

"""Unfreezing schedules: the named ones ("spread", "head_first") and the parsing and checks of explicit ones.

A schedule maps a boundary (an epoch, or a global step) to how many top
backbone groups train from there on, on top of the head (0 = head only, or
"all"); `GradualUnfreezing` follows one during a fit.
"""

from __future__ import annotations

from collections.abc import Mapping

from tftune._validation import integer_error, number_error, raise_errors
from tftune.unfreeze.groups import ALL

# GradualUnfreezing schedule names. "spread": head only first, every group in the last epoch, evenly in
# between. "head_first": the head alone for the first half of the first epoch, then every group.
SPREAD = "spread"
HEAD_FIRST = "head_first"
# Each name's boundary unit: "spread" is resolved from the fit's epochs, "head_first" from its steps per epoch.
NAMED_SCHEDULE_UNITS = {SPREAD: "epoch", HEAD_FIRST: "step"}


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
    return check_schedule(pairs, unit)


def check_schedule(schedule, unit: str) -> tuple[tuple[int, int | str], ...]:
    """`schedule` (a mapping or (boundary, groups) pairs) as checked pairs: boundaries increasing, groups growing."""
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

"""Train / validation splits: seeded subsets, stratified hold-outs, and the `DataSplits` they end in.

The minimum a split must meet, else a ValueError: a non-empty training and
validation split, at least two classes with training examples, and no class
with validation examples but no training examples. A class with training
but no validation examples (e.g. a single example: a stratified hold-out
never takes a class's only example), or with no examples at all, is kept
with a warning (logged, and in `DataSplits.summary()`) naming it.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import tensorflow as tf

from tftune.data.examples import label_counts

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DataSplits:
    """Raw training and validation examples, label names and class counts, before batching.

    `train` and `validation` are unbatched `tf.data.Dataset`s of
    `(text string, int32 label)` (`kind="text"`) or
    `(image [H, W, 3] uint8/float32 RGB, int32 label)` (`kind="image"`; image
    sizes may vary). `class_counts` maps "train" / "validation" to
    `{label name: count}`; `warnings` names classes without validation or
    any examples. Make batched pipelines with `text_pipelines` /
    `image_pipelines`.

    Example:

    ```python
    splits = tftune.load_text_splits(tftune.load_rotten_tomatoes(), verbose=False)
    print(splits.summary())
    ```
    """

    kind: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    label_names: list[str]
    class_counts: dict[str, dict[str, int]]
    source: str
    validation_source: str
    skipped_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def train_size(self) -> int:
        return sum(self.class_counts["train"].values())

    @property
    def validation_size(self) -> int:
        return sum(self.class_counts["validation"].values())

    def summary(self) -> str:
        """Sizes, where the validation split came from, class counts (one line per class) and warnings."""
        width = max(len("class"), *(len(name) for name in self.label_names))
        lines = [
            f"{self.source}: {self.train_size} train / {self.validation_size} validation {self.kind} examples, "
            f"{len(self.label_names)} classes; validation = {self.validation_source}",
            f"  {'class':<{width}}  {'train':>7}  {'validation':>10}",
        ]
        for name in self.label_names:
            lines.append(
                f"  {name:<{width}}  {self.class_counts['train'][name]:>7}  {self.class_counts['validation'][name]:>10}"
            )
        if self.skipped_files:
            lines.append(f"  skipped {len(self.skipped_files)} unreadable image file(s), e.g. {self.skipped_files[0]}")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def split_examples(
    kind: str,
    source: str,
    label_names,
    train,
    held_out=None,
    *,
    held_out_source: str = "",
    what: str,
    validation_fraction: float,
    max_examples: int | None,
    seed: int,
    skipped_files=(),
) -> DataSplits:
    """The one path from examples to `DataSplits`, for every source.

    `train` / `held_out` are any examples with `labels`, `subset(indices)` and
    `examples()` (a deterministic tf.data.Dataset). `max_examples` keeps a
    seeded subset of `train`; without `held_out` a stratified
    `validation_fraction` of `train` (`what`) is held out.
    """
    if max_examples is not None:
        train = train.subset(np.sort(np.random.RandomState(seed).permutation(len(train.labels))[:max_examples]))
    if held_out is None:
        train_part, validation_part = _stratified_indices(train.labels, validation_fraction, seed, what)
        train, held_out = train.subset(train_part), train.subset(validation_part)
        held_out_source = f"stratified {validation_fraction:.0%} of {what} (seed {seed})"
    return _splits(kind, source, held_out_source, label_names, train, held_out, tuple(skipped_files))


def _stratified_indices(labels: np.ndarray, fraction: float, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a seeded random `fraction` (at least one when the class has 2+ examples) goes to validation."""
    random = np.random.RandomState(seed)
    held_out = []
    for label in np.unique(labels):
        members = random.permutation(np.flatnonzero(labels == label))
        count = int(round(fraction * len(members)))
        held_out.append(members[: max(count, 1) if len(members) > 1 else 0])
    validation = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, "int64")
    if len(validation) == 0:
        raise ValueError(
            f"Cannot hold out a validation split from {what}: it has {len(labels)} example(s) and no class with "
            f"2 or more. Give more examples or an explicit validation source."
        )
    return np.setdiff1d(np.arange(len(labels)), validation), validation


def _splits(kind, source, validation_source, label_names, train, held_out, skipped_files) -> DataSplits:
    datasets, counts = {}, {}
    for examples, split in ((train, "train"), (held_out, "validation")):
        if len(examples.labels) == 0:
            raise ValueError(
                f"The {split} split of {source} is empty; give a source with examples in it "
                f"(validation: {validation_source})."
            )
        datasets[split] = examples.examples().apply(tf.data.experimental.assert_cardinality(len(examples.labels)))
        counts[split] = label_counts(examples.labels, label_names)
    present = [name for name, count in counts["train"].items() if count]
    if len(present) < 2:
        raise ValueError(
            f"The training split of {source} has a single class ({present}); a classifier needs at least "
            f"two classes with examples. Check the label column / class folders."
        )
    unseen = [name for name in label_names if not counts["train"][name] and counts["validation"][name]]
    if unseen:
        raise ValueError(
            f"Class(es) {unseen} of {source} have validation examples but no training examples "
            f"(validation: {validation_source}); the model cannot learn them. Add training examples for them."
        )
    warnings = [
        f"class {name!r} has no validation examples ({counts['train'][name]} training): its accuracy is not "
        f"measured. Give it more examples (2+ for a held-out split) or a validation source that has it."
        for name in label_names
        if counts["train"][name] and not counts["validation"][name]
    ]
    absent = [name for name in label_names if not counts["train"][name]]
    if absent:
        warnings.append(
            f"class(es) {absent} have no examples: the model keeps an output it cannot learn. "
            f"Add examples, or leave them out of label_names."
        )
    for warning in warnings:
        _logger.warning("tftune: %s: %s", source, warning)
    return DataSplits(
        kind,
        datasets["train"],
        datasets["validation"],
        list(label_names),
        counts,
        source,
        validation_source,
        skipped_files,
        tuple(warnings),
    )

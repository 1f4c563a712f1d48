"""Benchmark: mixed_bfloat16 against float32 on this CPU, per training step and per predict batch, in one process.

Two recipes, each built twice (float32, then under `mixed_bfloat16`) with the
same weights and compiled as `tftune.fit` compiles them (`compile_for_unfreezing`,
AdamW, every group trainable: full fine-tuning, the stage most steps train in):

- text: the offline MiniLM-L6 BERT (real pretrained weights), sequence length 128,
  batch 16, real Rotten Tomatoes reviews;
- image: the image recipe's ResNet50V2 at its default 32x32 px and batch 32.

After a warm-up (tracing), rounds alternate the two precisions (float32 first in
even rounds, bfloat16 first in odd ones) so that drift in the machine's load
cancels; each round times `--steps` training steps and `--steps` predict batches
per precision. Other processes only ever add time, so the fastest step and the
median step are both given; the speed-ups (float32 time / bfloat16 time) are of
the median. /proc/loadavg is printed before and after. Target "bf16 faster": the
median training step, per recipe (on a loaded machine the best step alone is luck).

With `--quality-results` (the JSONL that `benchmarks/quality.py --precision float32
mixed_bfloat16` writes) the accuracy target is added: bfloat16 >= float32 - 0.5 pt,
mean accuracy over the seeds both ran, per row (the text recipe's targets). Last, per
recipe, what the targets support for `--precision auto` and what tftune picks.

    python benchmarks/precision.py --rounds 6 --steps 5
    python benchmarks/precision.py --recipes text --quality-results benchmarks/precision_quality_results.jsonl
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from quality import precision_targets  # noqa: E402

import tftune  # noqa: E402
from tftune.families import offline_text_backbone  # noqa: E402
from tftune.precision import cpu_bfloat16_flags, precision_policy, precision_scope, read_cpuinfo  # noqa: E402
from tftune.recipe import RecipeConfig  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")


def build(recipe: str, policy: str, weights: list | None) -> tuple[keras.Model, object, np.ndarray]:
    """The recipe's classifier under `policy` (with `weights` when given), compiled for full fine-tuning, one batch."""
    with precision_scope(policy):
        if recipe == "text":
            model = tftune.build_text_classifier(offline_text_backbone(), 2, sequence_length=128)
        else:
            config = RecipeConfig.for_task("image")
            model = tftune.build_image_classifier(config.backbone, 10, image_size=config.image_size, weights=None)
    if weights is not None:
        model.set_weights(weights)
    tftune.unfreeze_all(model)
    tftune.compile_for_unfreezing(model, "adamw", 5e-5)
    if recipe == "text":
        reviews = tftune.load_rotten_tomatoes("binary")
        features = model.preprocessor(reviews.texts[:16])
        labels = np.asarray(reviews.labels[:16], "int32")
    else:
        config = RecipeConfig.for_task("image")
        images = np.random.RandomState(0).uniform(0, 255, (config.batch_size, *config.image_size, 3))
        features = images.astype("float32")
        labels = np.arange(config.batch_size, dtype="int32") % 10
    return model, features, labels


def _step_seconds(step, features, labels) -> float:
    started = time.perf_counter()
    step(features, labels)
    return time.perf_counter() - started


def measure(recipe: str, rounds: int, steps: int, warmup: int) -> dict:
    """{precision: {"train": [seconds per step], "predict": [seconds per batch]}} for one recipe."""
    keras.utils.set_random_seed(0)
    float32_model = build(recipe, "float32", None)
    bfloat16_model = build(recipe, "mixed_bfloat16", float32_model[0].get_weights())
    models = {"float32": float32_model, "mixed_bfloat16": bfloat16_model}
    actions = {
        "train": lambda model, x, y: model.train_on_batch(x, y),
        "predict": lambda model, x, y: model.predict_on_batch(x),
    }
    times = {precision: {action: [] for action in actions} for precision in PRECISIONS}
    for model, features, labels in models.values():
        for run in actions.values():
            for _ in range(warmup):
                run(model, features, labels)
    for round_index in range(rounds):
        for precision in PRECISIONS if round_index % 2 == 0 else PRECISIONS[::-1]:
            model, features, labels = models[precision]
            for action, run in actions.items():
                times[precision][action] += [
                    _step_seconds(functools.partial(run, model), features, labels) for _ in range(steps)
                ]
        print(f"  {recipe}: round {round_index + 1}/{rounds} done", flush=True)
    probabilities = models["mixed_bfloat16"][0].predict_on_batch(models["mixed_bfloat16"][1])
    times["mixed_bfloat16"]["output_dtype"] = str(probabilities.dtype)
    return times


def _load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def speed_table(results: dict[str, dict]) -> tuple[str, list[tuple[str, bool, str]]]:
    """The Markdown timing table and the "bf16 faster" targets (median training step, each recipe)."""
    lines = [
        "| recipe | step | float32 median / best ms | mixed_bfloat16 median / best ms | speed-up (median) "
        "| speed-up (best) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    checks = []
    for recipe, times in results.items():
        for action in ("train", "predict"):
            ours, theirs = times["mixed_bfloat16"][action], times["float32"][action]
            median_ratio = statistics.median(theirs) / statistics.median(ours)
            lines.append(
                f"| {recipe} | {action} ({len(ours)} per precision) "
                f"| {1000 * statistics.median(theirs):.0f} / {1000 * min(theirs):.0f} "
                f"| {1000 * statistics.median(ours):.0f} / {1000 * min(ours):.0f} "
                f"| x{median_ratio:.2f} | x{min(theirs) / min(ours):.2f} |"
            )
            if action == "train":
                checks.append((f"{recipe}: mixed_bfloat16 training step faster than float32 (median)",
                               median_ratio > 1.0, f"x{median_ratio:.2f}"))
    return "\n".join(lines), checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", choices=("text", "image"), default=["text", "image"])
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (even: float32 first)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per precision, round and action")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per precision and action (tracing)")
    parser.add_argument("--quality-results", help="JSONL of benchmarks/quality.py --precision float32 mixed_bfloat16")
    args = parser.parse_args()

    flags = cpu_bfloat16_flags(read_cpuinfo())
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, bfloat16 flags: "
          f"{', '.join(flags) or 'none'}; load average before: {_load()}", flush=True)
    results = {}
    for recipe in args.recipes:
        results[recipe] = measure(recipe, args.rounds, args.steps, args.warmup)
    table, checks = speed_table(results)
    dtypes = {recipe: times["mixed_bfloat16"]["output_dtype"] for recipe, times in results.items()}
    print(f"\nload average after: {_load()}; mixed_bfloat16 predictions come out as {dtypes}\n\n{table}\n")
    recipe_checks = {recipe: [check for check in checks if check[0].startswith(f"{recipe}:")] for recipe in results}
    if args.quality_results:  # Rotten Tomatoes: the text recipe's accuracy
        with open(args.quality_results) as results_file:
            runs = [json.loads(line) for line in results_file if line.strip()]
        for task in dict.fromkeys(run["task"] for run in runs):
            task_runs = [run for run in runs if run["task"] == task]
            float32_runs = [run for run in task_runs if run.get("precision", "float32") == "float32"]
            bfloat16_runs = [run for run in task_runs if run.get("precision") == "mixed_bfloat16"]
            quality = precision_targets(task, "mixed_bfloat16", float32_runs, bfloat16_runs)
            checks += quality
            recipe_checks.setdefault("text", []).extend(quality)
    print("| target | result | measured |\n| --- | --- | --- |")
    for text, passed, measured in checks:
        print(f"| {text} | {'PASS' if passed else 'FAIL'} | {measured} |")
    print()
    strategy = tftune.get_strategy("cpu")
    for recipe in results:
        supported = "mixed_bfloat16" if flags and all(passed for _, passed, _ in recipe_checks[recipe]) else "float32"
        print(f"{recipe}: these numbers support --precision auto = {supported} on this CPU; "
              f"tftune picks {precision_policy('auto', strategy, tftune.recipe.MODALITIES[recipe])}")


if __name__ == "__main__":
    main()

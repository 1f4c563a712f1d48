"""Running a recipe: fit with gradual unfreezing, report, save, export; the learning-rate sweep on its data."""

from __future__ import annotations

import csv
import dataclasses
import functools
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence

import keras
import tensorflow as tf

from tftune import (
    builders,
    distribute,
    export,
    families,
    lora,
    lr_finder,
    report,
    train,
    unfreeze,
)
from tftune import data as data_lib
from tftune._validation import choice_error, raise_errors
from tftune.options import DistributionOptions
from tftune.precision import precision_policy, precision_scope
from tftune.recipe.config import RecipeConfig, check_steps
from tftune.recipe.data import load_splits, model_spec, prepared_data
from tftune.saving import uncompiled_copy

_logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
# With LoRA: the trained adapters alone, keyed by layer path (`tftune.load_adapters` puts them on the same backbone).
ADAPTERS_FILE = "adapters.weights.h5"
# What `tftune predict` is shown with in the next commands.
_PREDICT_EXAMPLES = {families.TEXT: shlex.quote("a fine film"), families.IMAGE: "image.jpg"}
HISTORY_FILE = "history.csv"
# Where tftune.fit's BackupAndRestore keeps the state of an interrupted run.
BACKUP_DIR = os.path.join("checkpoints", "backup")


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """What a recipe run produced: the model, its evaluation, the files it wrote, the export and the next commands."""

    model: keras.Model
    metrics: dict
    report_paths: dict
    model_path: str
    export: export.ExportResult
    next_commands: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Training:
    """What `train_on_splits` trained: the fit result, what it built and the pipelines it validated on."""

    fit: train.FitResult
    spec: builders.ModelSpec
    unfreezing: unfreeze.GradualUnfreezing
    validation_data: tf.data.Dataset
    global_batch: int
    wall_time: float


def train_on_splits(
    config: RecipeConfig,
    splits: data_lib.DataSplits,
    strategy: tf.distribute.Strategy,
    *,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Training:
    """Build `config`'s classifier on `splits` and fine-tune it: what `run_recipe` and `tftune.fine_tune` share.

    The recipe defaults apply: the resolved schedule (auto), stage-aware
    rates, the task's (or LoRA's) learning rate, pooling and precision.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("text", backbone=text_backbone, max_examples=24, epochs=1, sequence_length=16)
    splits = tftune.recipe.load_splits(config)
    training = tftune.recipe.train_on_splits(config, splits, tftune.get_strategy("cpu"))
    training.fit.model.labels == splits.label_names  # True
    ```
    """
    global_batch = distribute.global_batch_size(config.batch_size, strategy)
    check_steps(config, splits.train_size, global_batch)
    spec = model_spec(config, splits.label_names)
    pipelines = functools.cache(lambda model: prepared_data(config, model, splits, global_batch))
    unfreezing = config.unfreezing()
    started = time.time()
    result = train.fit(
        spec,
        lambda model: pipelines(model).train,
        lambda model: pipelines(model).validation,
        epochs=config.epochs,
        unfreezing=unfreezing,
        optimization=config.optimizer_options(),
        # The pipelines come batched (`config.batch_size` per replica) for the strategy resolved from the config.
        distribution=DistributionOptions(strategy=strategy, precision=config.precision),
        lora=config.lora_options(),
        checkpoint_dir=checkpoint_dir,
        class_weight=_class_weight(config, splits),
        callbacks=list(callbacks),
        verbose=progress_verbosity(),
    )
    return Training(
        result, spec, unfreezing, pipelines(result.model).validation, global_batch, time.time() - started
    )


def run_recipe(config: RecipeConfig) -> RecipeResult:
    """Run one recipe: load data, build and fine-tune with gradual unfreezing, report, save, export.

    Writes `<output_dir>/model.keras` (the final weights, those the report
    evaluates; no optimizer state), with LoRA `adapters.weights.h5` (the
    adapters alone), metrics.json / report.md / plots, `history.csv` and
    `checkpoints/` (`best.weights.h5` and its `best.json`, and `backup/` while a run is
    unfinished: rerunning the same config resumes it), and exports a
    SavedModel version under `<export_dir>/<model_name>/`.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("text", backbone=text_backbone, max_examples=40, epochs=1, sequence_length=16,
                                          output_dir="run", export_dir="saved_models")
    result = tftune.run_recipe(config)
    result.model_path, result.export.path  # ('run/model.keras', 'saved_models/rotten_tomatoes_text/1')
    ```
    """
    config.check()
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.get_strategy(config.strategy, tpu=config.tpu)
    _log_devices(strategy)
    output_dir = config.resolved_output_dir()
    history_path = _fresh_history(output_dir)
    splits = load_splits(config)
    training = train_on_splits(
        config,
        splits,
        strategy,
        checkpoint_dir=os.path.join(output_dir, "checkpoints"),
        callbacks=[keras.callbacks.CSVLogger(history_path, append=True)],
    )
    model, unfreezing = training.fit.model, training.unfreezing
    model_path = save_model(model, os.path.join(output_dir, MODEL_FILE))
    paths = {"model (final weights)": model_path}
    if config.lora_rank is not None:
        paths["LoRA adapters"] = lora.save_adapters(model, os.path.join(output_dir, ADAPTERS_FILE))
    epochs_run = len(training.fit.history.get("loss", ()))
    evaluation = report.write_report(
        output_dir,
        model,
        training.validation_data,
        splits.label_names,
        history=_read_history(history_path, config.epochs),
        unfreezing_boundaries=unfreezing.epoch_boundaries(),
        unfreezing_stages=unfreezing.stages_entered,
        config={
            **dataclasses.asdict(config),
            "backbone": training.spec.backbone,
            "learning_rate": config.resolved_learning_rate(),
            "unfreezing_schedule": unfreezing.get_config()["schedule"],
            "pooling": getattr(model, "pooling", None),
            "keep_batchnorm_frozen": config.resolved_keep_batchnorm_frozen(),
            "replicas": strategy.num_replicas_in_sync,
            "global_batch_size": training.global_batch,
            "precision_policy": model.dtype_policy.name,
            "model_file": f"{MODEL_FILE} (final weights)",
        },
        wall_time=training.wall_time,
        examples_per_second=splits.train_size * epochs_run / training.wall_time,
        title=f"tftune {config.task} recipe: {config.resolved_model_name()}",
    )
    result = training.fit
    exported = export.export_saved_model(result.model, config.export_dir, name=config.resolved_model_name())
    commands = next_commands(config, model_path, exported.path)
    _logger.info(
        "Validation accuracy %.3f (majority class %.3f), macro-F1 %.3f",
        evaluation.metrics["accuracy"],
        evaluation.metrics["majority_baseline"]["accuracy"],
        evaluation.metrics["macro_f1"],
    )
    for name, path in {**paths, **evaluation.paths}.items():
        _logger.info("  %s: %s", name, path)
    _logger.info("Serve it:\n%s", exported.serving_instructions())
    _logger.info("Next: evaluate on held-out data, re-export, predict:\n%s", "\n".join(commands))
    return RecipeResult(result.model, evaluation.metrics, evaluation.paths, model_path, exported, commands)


def sweep_learning_rate(
    config: RecipeConfig,
    *,
    stage: str = "head",
    steps: int = lr_finder.DEFAULT_STEPS,
    min_learning_rate: float = lr_finder.DEFAULT_MIN_LEARNING_RATE,
    max_learning_rate: float = lr_finder.DEFAULT_MAX_LEARNING_RATE,
) -> lr_finder.LearningRateSweep:
    """`tftune.find_learning_rate` on a recipe's data and model: the head alone (`stage="head"`) or every group.

    The plot goes to `<output_dir>/lr_find_<stage>.png`; use the suggestion as
    `head_learning_rate` (stage "head") or `learning_rate` (stage "all").

    Example:

    ```python
    import tempfile
    config = tftune.RecipeConfig.for_task("text", backbone=text_backbone, max_examples=64, sequence_length=16,
                                          output_dir=tempfile.mkdtemp())
    sweep = tftune.recipe.sweep_learning_rate(config, steps=10)
    sweep.plot_path.endswith("lr_find_head.png")  # True
    ```
    """
    raise_errors(choice_error("stage", stage, ("head", "all")))
    config.check()
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.get_strategy(config.strategy, tpu=config.tpu)
    splits = load_splits(config)
    with strategy.scope(), precision_scope(precision_policy(config.precision, strategy, config.modality)):
        model = model_spec(config, splits.label_names).build()
    if stage == "head":
        unfreeze.freeze(model)
    else:
        unfreeze.unfreeze_all(model, keep_batchnorm_frozen=config.resolved_keep_batchnorm_frozen())
    data = prepared_data(config, model, splits, distribute.global_batch_size(config.batch_size, strategy))
    return lr_finder.find_learning_rate(
        model,
        data.train,
        min_learning_rate=min_learning_rate,
        max_learning_rate=max_learning_rate,
        steps=steps,
        plot_path=os.path.join(config.resolved_output_dir(), f"lr_find_{stage}.png"),
    )


def save_model(model: keras.Model, path: str) -> str:
    """Save a trained classifier as `.keras` without its optimizer state: architecture, label names and weights.

    What `tftune evaluate` and `tftune export` need; a third of the size of
    `model.save` after `compile_for_unfreezing` (whose optimizer keeps two
    moments per weight). Loads with `keras.models.load_model` after `import tftune`.

    Example:

    ```python
    import tempfile
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    path = tftune.recipe.save_model(model, f"{tempfile.mkdtemp()}/model.keras")
    keras.models.load_model(path).labels  # ['rotten', 'fresh']
    ```
    """
    # LoRA: adapters merged into the kernels, a plain model of the same function; mixed precision: float32.
    uncompiled_copy(model, float32=True).save(path)
    return path


def next_commands(config: RecipeConfig, model_path: str, saved_model_path: str) -> tuple[str, ...]:
    """The `tftune evaluate`, `export` and `predict` commands for a finished run's model.

    Evaluate names held-out data of the same kind as the training data: a
    `test` file with the training file's extension, a `test/` folder, the
    tfds dataset's validation split, or the demo set.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("text", dataset="sms.csv", output_dir="runs/sms")
    tftune.recipe.next_commands(config, "runs/sms/model.keras", "saved_models/sms_text/1")[0]
    # 'tftune evaluate runs/sms/model.keras test.csv --output-dir runs/sms/evaluation'
    ```
    """
    dataset = config.dataset
    if os.path.isdir(dataset):
        held_out = "test/"
    elif os.path.splitext(dataset)[1].lower() in data_lib.TEXT_FILE_EXTENSIONS:
        held_out = "test" + os.path.splitext(dataset)[1].lower()
    else:
        held_out = dataset + (f" --data-dir {shlex.quote(config.data_dir)}" if config.data_dir else "")
    model_dir = os.path.dirname(os.path.normpath(saved_model_path))
    example = _PREDICT_EXAMPLES[config.modality]
    return (
        (
            f"tftune evaluate {shlex.quote(model_path)} {held_out} "
            f"--output-dir {shlex.quote(os.path.join(config.resolved_output_dir(), 'evaluation'))}"
        ),
        (
            f"tftune export {shlex.quote(model_path)} --base-dir {shlex.quote(os.path.dirname(model_dir) or '.')} "
            f"--name {shlex.quote(os.path.basename(model_dir))}"
        ),
        f"tftune predict {shlex.quote(model_dir)} {example}",
    )


def progress_verbosity() -> int:
    """Keras' `verbose` for training: the progress bar (1) on a terminal, one line per epoch (2) otherwise.

    A log file or a pipe would otherwise hold every `\\r` update of the bar.

    Example:

    ```python
    tftune.recipe.progress_verbosity()  # 2 under pytest (stdout captured)
    ```
    """
    return 1 if sys.stdout.isatty() else 2


def _log_devices(strategy) -> None:
    """One line when training runs on the CPU only (no GPU / TPU found)."""
    if distribute.device_kind(strategy) == "CPU":
        _logger.info("No GPU or TPU found: training on the CPU (%d core(s)).", os.cpu_count() or 1)


def _class_weight(config: RecipeConfig, splits: data_lib.DataSplits) -> dict | None:
    """"balanced" from the training split's class counts (no pass over the data), else as configured."""
    if config.class_weight != "balanced":
        return config.class_weight
    return train.balanced_class_weights([splits.class_counts["train"][name] for name in splits.label_names])


def _fresh_history(output_dir: str) -> str:
    """The per-epoch history file of a run; a new run (no backup to resume from) starts it empty."""
    path = os.path.join(output_dir, HISTORY_FILE)
    if not os.path.isdir(os.path.join(output_dir, BACKUP_DIR)):
        os.makedirs(output_dir, exist_ok=True)
        if os.path.exists(path):
            os.remove(path)
    return path


def _read_history(path: str, epochs: int) -> dict[str, list[float]]:
    """Every epoch's logs from `history.csv`, across resumed processes (the last row of an epoch wins)."""
    with open(path, newline="", encoding="utf-8") as history_file:
        rows = {int(row["epoch"]): row for row in csv.DictReader(history_file)}
    keys = sorted({key for row in rows.values() for key in row} - {"epoch"})
    return {key: [_float(rows.get(epoch, {}).get(key)) for epoch in range(epochs)] for key in keys}


def _float(text: str | None) -> float:
    """A logged number; NaN for an epoch or value the file does not hold (CSVLogger writes "NA")."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")

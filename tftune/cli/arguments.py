"""The recipe flags of `tftune train` and `tftune lr-find`, merged with their `--config` file into a `RecipeConfig`."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from tftune import distribute, lora, recipe
from tftune.cli.config_file import read_config_file


def parse_recipe_args(
    task: str | None, argv: Sequence[str] | None = None, *, description: str = ""
) -> recipe.RecipeConfig:
    """Recipe flags (and `--config FILE`, YAML or JSON) -> a checked `RecipeConfig`.

    Precedence: the task's defaults < the config file < flags given on the
    command line. With `task=None` the task comes from `--task` or the file.
    Every bad option (flag or file) is reported at once in one ValueError.

    Example:

    ```python
    config = tftune.cli.parse_recipe_args("text", ["--epochs", "2", "--schedule", "0:0,1:all"])
    config.epochs, config.schedule  # (2, '0:0,1:all')
    ```
    """
    parser = argparse.ArgumentParser(description=description)
    add_recipe_arguments(parser, task_flag=task is None)
    return config_from_arguments(parser.parse_args(argv), task)


def _number(text: str) -> int | float | str:
    """A numeric flag's value; text that is not a number is kept, so `RecipeConfig` reports it with the rest."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def add_recipe_arguments(parser: argparse.ArgumentParser, *, task_flag: bool) -> None:
    """Add the recipe flags to `parser` (defaults stay unset, so a config file can supply them).

    Example:

    ```python
    import argparse
    parser = argparse.ArgumentParser()
    tftune.cli.add_recipe_arguments(parser, task_flag=True)
    parser.parse_args(["--task", "image", "--epochs", "4"]).epochs  # 4
    ```
    """
    parser.add_argument("--config", help="YAML or JSON file with the same options (flags override it)")
    if task_flag:
        parser.add_argument("--task", help="text or image classification")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        help="rotten_tomatoes, rotten_tomatoes_3class, mnist_digits, a tfds name, "
        "a CSV/TSV/JSONL file or an image folder",
    )
    data.add_argument("--data-dir", help="tfds data_dir (datasets must already be prepared there)")
    data.add_argument("--text-key", help="text (or tfds image) column / feature name (default: found from the data)")
    data.add_argument("--label-key", help="label column / feature name (default: found from the data)")
    data.add_argument(
        "--validation-fraction",
        type=_number,
        help="held-out fraction when the data has no validation split",
    )
    data.add_argument(
        "--max-examples",
        type=_number,
        help="use at most this many examples, seeded subset (text default 3000)",
    )
    data.add_argument("--augmentation", nargs="*", help="image augmentation on the training split: flip crop rotation")
    data.add_argument("--encoding", help="text files: their encoding (default utf-8; e.g. latin-1, cp1252)")
    data.add_argument(
        "--drop-missing-labels",
        action="store_true",
        default=None,
        help="leave out rows whose label is empty / NaN / None (default: an error listing them)",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", help="backbone spec (see `tftune info`); default: the offline default of the task")
    model.add_argument("--weights", help="'pretrained', 'none' for random init, or a .weights.h5 path")
    model.add_argument("--sequence-length", type=_number, help="text: tokens per example (default 64)")
    model.add_argument(
        "--image-size",
        type=_number,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="image: model input size (default 32 32)",
    )
    model.add_argument(
        "--pooling",
        help="text: cls, mean or max (default: what the checkpoint was trained with, else cls)",
    )
    model.add_argument("--tpu", help="Cloud TPU name or grpc:// address for --strategy tpu / auto (default: $TPU_NAME)")
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=_number, help="default 3")
    training.add_argument(
        "--batch-size",
        type=_number,
        help="per replica (text default 16, image 32); the global batch is this times the replicas",
    )
    defaults = ", ".join(f"{modality} {rate:g}" for modality, rate in recipe.LEARNING_RATES.items())
    training.add_argument(
        "--learning-rate", type=_number,
        help=f"peak rate of every group once backbone groups train (default: {defaults}; "
        f"with --lora-rank {lora.LEARNING_RATE:g})",
    )
    training.add_argument(
        "--head-learning-rate",
        type=_number,
        help="peak rate of the new head while the backbone is frozen (default 1e-2; 'none': --learning-rate)",
    )
    training.add_argument(
        "--class-weight",
        help="'balanced' weighs each class by n / (classes * n_class); default none",
    )
    training.add_argument(
        "--layer-decay",
        type=_number,
        help="discriminative rates: group k from the top gets lr * decay**k (ULMFiT: 0.385)",
    )
    training.add_argument("--schedule", help=f"unfreezing schedule (default auto). {recipe.schedule_help()}")
    training.add_argument(
        "--warmup-steps",
        type=_number,
        help="linear warm-up steps at the start of each unfreezing stage (default 10)",
    )
    training.add_argument("--strategy", help=f"{', '.join(distribute.STRATEGIES)} (default auto)")
    training.add_argument(
        "--precision",
        help="auto (default: mixed_float16 on GPU, mixed_bfloat16 on TPU and for text on CPUs with AMX-BF16 / "
        "AVX512-BF16, else float32), float32, mixed_float16, mixed_bfloat16",
    )
    training.add_argument("--seed", type=_number, help="default 0")
    training.add_argument(
        "--lora-rank", type=_number,
        help="train LoRA adapters of this rank on the backbone's attention layers (and the head) instead of every "
        "weight; default off",
    )
    training.add_argument(
        "--lora-alpha", type=_number, help="LoRA scale alpha (adapters add alpha / rank * A @ B; default: the rank)"
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-dir",
        help="model.keras, reports, checkpoints and TensorBoard logs (default: runs/<name>)",
    )
    output.add_argument("--export-dir", help="SavedModel root for TF Serving (default: saved_models)")
    output.add_argument("--model-name", help="name under the export dir (default: <dataset>_<task>)")


def config_from_arguments(arguments: argparse.Namespace, task: str | None) -> recipe.RecipeConfig:
    """Merge a parsed command line with its `--config` file into a checked `RecipeConfig`.

    Example:

    ```python
    import argparse
    parser = argparse.ArgumentParser()
    tftune.cli.add_recipe_arguments(parser, task_flag=False)
    tftune.cli.config_from_arguments(parser.parse_args(["--weights", "none"]), "image").weights  # None
    ```
    """
    options = read_config_file(arguments.config) if arguments.config else {}
    fields = {field.name for field in dataclasses.fields(recipe.RecipeConfig)} - {"task"}
    flags = {key: value for key, value in vars(arguments).items() if key in fields and value is not None}
    for key in ("weights", "head_learning_rate", "class_weight"):
        if flags.get(key) == "none":
            flags[key] = None
    task = task or getattr(arguments, "task", None) or options.get("task")
    options.pop("task", None)
    if task is None:
        raise ValueError("No task given: pass --task text|image or put `task:` in the config file.")
    return recipe.RecipeConfig.for_task(task, **{**options, **flags})


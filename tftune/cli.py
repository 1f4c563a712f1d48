"""The `tftune` command line: `tftune info` and the stages of the flow (train, evaluate, export, predict).

Example:

```shell
tftune train --task text --dataset train.csv --output-dir runs/sms
tftune evaluate runs/sms test.csv --output-dir runs/sms/test
```
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence

import yaml

from tftune import _backend, distribute, lora, lr_finder, recipe
from tftune._validation import directory_error, raise_errors
from tftune.data import DatasetUnavailableError
from tftune.families import BackboneUnavailableError
from tftune.logs import show_logs

# What a user can cause and fix: reported as one line, exit status 2, no traceback.
_USER_ERRORS = (ValueError, OSError, BackboneUnavailableError, DatasetUnavailableError)
# Python keyword arguments whose CLI flag is not `--<keyword with dashes>`, per command. Every other
# keyword an error message names (`label_key=`, `batch_size must ...`) is shown as its flag (`--label-key`).
_KEYWORD_FLAGS = {
    "train": {"name": "--model-name", "base_dir": "--export-dir", "image_key": "--text-key"},
    "lr-find": {"name": "--model-name", "base_dir": "--export-dir", "image_key": "--text-key"},
    "export": {"warmup": "--no-warmup", "verify": "--no-verify"},
}


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


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping and reads `5e-5` as a number.

    YAML 1.1 (PyYAML) reads a float only with a dot (`5.0e-5`); YAML 1.2 and
    JSON read `5e-5` as a number too, and so does a tftune config file.
    """

    def construct_mapping(self, node, deep=False):
        first_lines = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice, on lines {first_lines[key]} and {line}: keep one",
                    key_node.start_mark,
                )
            first_lines.setdefault(key, line)
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


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
        help="auto (default: mixed_float16 on GPU, mixed_bfloat16 on TPU, float32 on CPU), "
        "float32, mixed_float16, mixed_bfloat16",
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
    options = _read_config_file(arguments.config) if arguments.config else {}
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


def _read_config_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file {path!r} does not exist.")
    if not path.endswith((".yaml", ".yml", ".json")):
        raise ValueError(f"Config file {path!r} must end in .yaml, .yml or .json.")
    with open(path, encoding="utf-8") as config_file:
        text = config_file.read()
    if path.endswith(".json"):
        try:
            options = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Config file {path!r} is not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}."
            ) from None
    else:
        try:
            options = yaml.load(text, Loader=_ConfigLoader) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"Config file {path!r} is not valid YAML: {_yaml_problem(error, text)}.") from None
    if not isinstance(options, Mapping):
        raise ValueError(f"Config file {path!r} must hold a mapping of option: value; got {type(options).__name__}.")
    return {str(key).replace("-", "_"): value for key, value in options.items()}


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """The parser's problem at its line and column, quoting that line with `<here>` where the parser stopped.

    When the parser names where the construct it was reading began (`context`,
    e.g. the key missing its ':' a line earlier), that place is given too.
    """
    lines = text.splitlines()

    def place(mark) -> str:
        line = lines[mark.line] if mark.line < len(lines) else ""
        pointed = f"{line[:mark.column]}<here>{line[mark.column:]}".strip()
        return f"line {mark.line + 1}, column {mark.column + 1} ({pointed!r})"

    problem_mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    message = f"{place(problem_mark)}: {problem}" if problem_mark is not None else problem
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None and context_mark.line != getattr(problem_mark, "line", None):
        message += f", {context} at {place(context_mark)}"
    return message


def _info(arguments: argparse.Namespace) -> int:
    import keras
    import keras_hub
    import tensorflow as tf

    import tftune

    print(f"tftune      {tftune.__version__}")
    print(f"tensorflow  {tf.__version__}")
    print(f"keras       {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"keras-hub   {keras_hub.__version__}")
    print("devices:")
    for device in tf.config.list_logical_devices():
        print(f"  {device.device_type:4s} {device.name}")
    if arguments.backbone is None:
        print("backbone families (`tftune info SPEC` shows one backbone's family and layer groups):")
        for family in tftune.families.FAMILIES:
            _print_family(family.describe(), family.presets())
        return 0
    family = tftune.families.get_family(arguments.backbone)
    _print_family(family.describe(), family.presets())
    local = tftune.families.read_local_directory(arguments.backbone) if os.path.isdir(arguments.backbone) else None
    backbone = family.load_backbone(arguments.backbone, local, pretrained=False)
    print(f"layer groups of {arguments.backbone} (from the input up; the classifier adds 'head'):")
    for group in family.layer_groups(backbone):
        print(f"  {group.name:<20} {group.count_params():>12,} parameters")
    return 0


def _print_family(description: dict, presets: list[str]) -> None:
    print(f"  {description['title']} ({description['family']}, {description['modality']})")
    for form in description["spec_forms"]:
        print(f"    spec: {form}")
    if presets:
        print(f"    presets: {', '.join(presets)}")
    if "tokenizer" in description:
        ops = ", ".join(description["tf_text_ops"])
        serving = description["min_tf_serving"]
        print(f"    tokenizer: {description['tokenizer']} (TF Text ops {ops}; TF Serving >= {serving})")
    print(f"    LoRA targets: {', '.join(description['lora_targets'] or []) or 'none (LoRA refused)'}")
    for limit in description["limits"]:
        print(f"    limit: {limit}")


def _train(arguments: argparse.Namespace) -> int:
    recipe.run_recipe(config_from_arguments(arguments, None))
    return 0


def _lr_find(arguments: argparse.Namespace) -> int:
    sweep = recipe.sweep_learning_rate(
        config_from_arguments(arguments, None),
        stage=arguments.stage,
        steps=arguments.steps,
        min_learning_rate=arguments.min_learning_rate,
        max_learning_rate=arguments.max_learning_rate,
    )
    print(sweep.summary())
    flag = "--head-learning-rate" if arguments.stage == "head" else "--learning-rate"
    print(f"Train with: {flag} {sweep.suggested_learning_rate:.2g}")
    return 0


def _evaluated_model(path: str):
    """What `tftune evaluate` runs: a .keras file or a run directory (its model.keras), or an exported SavedModel."""
    from tftune import export

    if os.path.isdir(path) and not any(entry.endswith(".keras") for entry in os.listdir(path)):
        return export.load_serving_model(path)
    return export.load_keras_model(path)


def _evaluate(arguments: argparse.Namespace) -> int:
    from tftune import report

    raise_errors(None if arguments.output_dir is None else directory_error("output_dir", arguments.output_dir))
    model = _evaluated_model(arguments.model_path)
    data = recipe.evaluation_data(
        model, arguments.data, split=arguments.split, data_dir=arguments.data_dir, batch_size=arguments.batch_size
    )
    title = f"tftune evaluate {arguments.model_path} on {arguments.data}"
    if arguments.output_dir:
        metrics = report.write_report(arguments.output_dir, model, data, model.labels, title=title).metrics
    else:
        metrics = report.evaluate_classifier(model, data, model.labels)
    baseline = metrics["majority_baseline"]
    print(
        f"accuracy {metrics['accuracy']:.4f}  majority-class baseline {baseline['accuracy']:.4f} "
        f"(always {baseline['label']!r})  macro-F1 {metrics['macro_f1']:.4f}  examples {metrics['examples']}"
    )
    print("recall  " + "  ".join(f"{name} {scores['recall']:.3f}" for name, scores in metrics["per_class"].items()))
    if arguments.output_dir:
        print(f"report: {os.path.join(arguments.output_dir, 'report.md')}")
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from tftune import export

    if arguments.format == "saved_model":
        result = export.export_from_file(
            arguments.model_path,
            arguments.base_dir,
            arguments.name,
            arguments.version,
            overwrite=arguments.overwrite,
            top_k=arguments.top_k,
            warmup=not arguments.no_warmup,
            verify=not arguments.no_verify,
        )
        print(f"models.config: {export.write_models_config(arguments.base_dir)}")
        print(result.serving_instructions())
        return 0
    model = export.load_keras_model(arguments.model_path)
    validation_data = None
    if arguments.dataset:
        validation_data = recipe.evaluation_data(
            model, arguments.dataset, split=arguments.split, data_dir=arguments.data_dir
        )
    result = export.export_model(
        model,
        arguments.base_dir,
        arguments.name,
        arguments.version,
        format=arguments.format,
        quantize=arguments.quantize,
        validation_data=validation_data,
        accuracy_tolerance=arguments.accuracy_tolerance,
        force=arguments.force,
        overwrite=arguments.overwrite,
    )
    print(result.summary())
    return 0


def _predict(arguments: argparse.Namespace) -> int:
    from tftune import export

    for prediction in export.predict_from_saved_model(arguments.saved_model_dir, arguments.inputs, arguments.signature):
        print(prediction)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tftune", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = subcommands.add_parser(
        "info", help="versions, devices and every backbone family; with SPEC, that backbone's family and layer groups"
    )
    info.add_argument("backbone", nargs="?", metavar="SPEC", help="a backbone spec (preset name or local folder)")
    info.set_defaults(run=_info)

    train = subcommands.add_parser(
        "train",
        help="run a recipe from a config file and/or flags (data -> fine-tune -> report -> model.keras -> export)",
    )
    add_recipe_arguments(train, task_flag=True)
    train.set_defaults(run=_train)

    lr_find = subcommands.add_parser(
        "lr-find", help="learning-rate range test on the run's data and model (weights untouched), plot + suggestion"
    )
    add_recipe_arguments(lr_find, task_flag=True)
    sweep = lr_find.add_argument_group("sweep")
    sweep.add_argument(
        "--stage",
        choices=("head", "all"),
        default="head",
        help="head: the head alone (backbone frozen, for --head-learning-rate); all: every group (for --learning-rate)",
    )
    sweep.add_argument("--steps", type=int, default=lr_finder.DEFAULT_STEPS,
                       help=f"batches in the sweep (default {lr_finder.DEFAULT_STEPS})")
    sweep.add_argument("--min-learning-rate", type=float, default=lr_finder.DEFAULT_MIN_LEARNING_RATE)
    sweep.add_argument("--max-learning-rate", type=float, default=lr_finder.DEFAULT_MAX_LEARNING_RATE)
    lr_find.set_defaults(run=_lr_find)

    evaluate = subcommands.add_parser(
        "evaluate", help="evaluate a .keras model, a run directory or an exported SavedModel on a dataset"
    )
    evaluate.add_argument(
        "model_path", help="a .keras file, a run directory (its model.keras) or saved_models/<name>[/<version>]"
    )
    evaluate.add_argument(
        "data",
        help="rotten_tomatoes, mnist_digits, a tfds name, a CSV/TSV/JSONL file or an image folder",
    )
    evaluate.add_argument("--data-dir", default=None, help="tfds data_dir")
    evaluate.add_argument(
        "--split",
        default=None,
        help="tfds split to evaluate (default: the dataset's validation split)",
    )
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--output-dir", default=None, help="also write metrics.json, report.md and plots here")
    evaluate.set_defaults(run=_evaluate)

    export = subcommands.add_parser(
        "export",
        help="export a .keras model (or the newest in a checkpoint dir) as a TF Serving SavedModel, LiteRT or ONNX",
    )
    export.add_argument("model_path", help="a .keras file, or a directory of .keras checkpoints")
    export.add_argument("--base-dir", default="saved_models", help="export root (default: saved_models)")
    export.add_argument("--name", default=None, help="model name (default: the Keras model's name)")
    export.add_argument("--version", type=int, default=None, help="version number (default: next free one)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument("--top-k", type=int, default=None, help="also output the k most likely labels")
    export.add_argument("--no-warmup", action="store_true", help="skip TF Serving warm-up requests")
    export.add_argument("--no-verify", action="store_true", help="skip the reload check in a TensorFlow-only process")
    formats = export.add_argument_group(
        "LiteRT / ONNX (verified in their runtime: pip install 'tftune[litert]' / 'tftune[onnx]')"
    )
    formats.add_argument(
        "--format",
        choices=("saved_model", "litert", "onnx"),
        default="saved_model",
        help="saved_model (TF Serving, default), litert "
        "(<base-dir>/<name>-litert[-<quantize>]/<version>/model.tflite) or onnx",
    )
    formats.add_argument(
        "--quantize",
        choices=("float16", "int8"),
        default=None,
        help="litert / onnx: float16 weights, or dynamic-range int8 (needs --dataset or --force)",
    )
    formats.add_argument(
        "--dataset",
        default=None,
        help="validation data for parity and accuracy before / after, as `tftune evaluate` takes it",
    )
    formats.add_argument("--data-dir", default=None, help="tfds data_dir")
    formats.add_argument("--split", default=None, help="tfds split (default: the dataset's validation split)")
    formats.add_argument(
        "--accuracy-tolerance",
        type=float,
        default=0.01,
        help="largest accuracy drop allowed, a fraction (default 0.01: 1 point)",
    )
    formats.add_argument(
        "--force",
        action="store_true",
        help="publish even when accuracy drops more than --accuracy-tolerance",
    )
    export.set_defaults(run=_export)

    predict = subcommands.add_parser("predict", help="run an exported SavedModel on raw texts or image files")
    predict.add_argument(
        "saved_model_dir",
        help="saved_models/<name> (newest version) or saved_models/<name>/<version>",
    )
    predict.add_argument("inputs", nargs="+", help="texts for a text model, JPEG/PNG paths for an image model")
    predict.add_argument("--signature", default="serving_default")
    predict.set_defaults(run=_predict)
    for command in (info, train, lr_find, evaluate, export, predict):
        command.add_argument(
            "--verbose", action="store_true",
            help=f"also print what TensorFlow logged while loading (set {_backend.VERBOSE_ENV}=1 to see it live)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tftune` console script: errors a user can fix end it with one line and exit status 2.

    The line names CLI flags (`--label-key`), not the Python keywords the library's messages name.
    """
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.verbose:
        sys.stderr.write("".join(_backend.STARTUP_LOG))
    try:
        with _logs_shown():
            return arguments.run(arguments)
    except _USER_ERRORS as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        parser.exit(2, f"tftune {arguments.command}: error: {flag_names(message, arguments)}\n")


# Arguments of the parsed command line that are not flags.
_NOT_FLAGS = ("command", "run", "model_path", "data", "saved_model_dir", "inputs")


def flag_names(message: str, arguments: argparse.Namespace) -> str:
    """`message` with each Python keyword of the command's options written as its CLI flag.

    `label_key=...` becomes `--label-key ...`, `overwrite=True` becomes
    `--overwrite`, `seed must be` becomes `--seed must be`; keywords whose
    flag differs (`name=` of `tftune train` is `--model-name`) come from
    `_KEYWORD_FLAGS`. Quoted text is left alone.

    Example:

    ```python
    import argparse
    arguments = argparse.Namespace(command="train", seed=None, label_key=None)
    tftune.cli.flag_names("seed must be an integer; pass label_key=... or name=...", arguments)
    # '--seed must be an integer; pass --label-key ... or --model-name ...'
    ```
    """
    aliases = _KEYWORD_FLAGS.get(arguments.command, {})
    keywords = {key for key in vars(arguments) if key not in _NOT_FLAGS} | set(aliases)
    flags = {keyword: aliases.get(keyword, "--" + keyword.replace("_", "-")) for keyword in keywords}
    keyword_pattern = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    pattern = re.compile(
        r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""  # quoted values (paths, a file's lines): the user's own text
        rf"|(?<![\w./-])({keyword_pattern})(=(?:True|False)\b|=| must\b| applies\b|)(?![\w-])"
    )

    def replace(match: re.Match) -> str:
        quoted, keyword, after = match.groups()
        if quoted:
            return quoted
        if after in ("=True", "=False"):
            return flags[keyword]
        if after == "=":
            return flags[keyword] + " "
        if after or "_" in keyword or message[match.end() : match.end() + 2] in (" '", ' "'):
            return flags[keyword] + after
        return keyword  # a plain word ("the seed", "two epochs") that is not used as an option name here

    return pattern.sub(replace, message)


@contextlib.contextmanager
def _logs_shown():
    """`show_logs()` while a command runs; then the "tftune" logger as it was (`main` may run in-process)."""
    logger = logging.getLogger("tftune")
    level, propagate, handlers = logger.level, logger.propagate, list(logger.handlers)
    show_logs()
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


if __name__ == "__main__":
    sys.exit(main())

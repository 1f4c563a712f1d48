"""The `tftune` command line: `tftune info` and the stages of the flow (train, evaluate, export, predict).

This module holds the parser of every command, `main` (the `tftune` console
script) and the one-line errors, written with the flags' names.

Example:

```shell
tftune train --task text --dataset train.csv --output-dir runs/sms
tftune evaluate runs/sms test.csv --output-dir runs/sms/test
```
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Sequence

from tftune import _backend, lr_finder
from tftune.cli.arguments import add_recipe_arguments
from tftune.cli.commands import run_evaluate, run_export, run_info, run_lr_find, run_predict, run_train
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tftune", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = subcommands.add_parser(
        "info", help="versions, devices and every backbone family; with SPEC, that backbone's family and layer groups"
    )
    info.add_argument("backbone", nargs="?", metavar="SPEC", help="a backbone spec (preset name or local folder)")
    info.set_defaults(run=run_info)

    train = subcommands.add_parser(
        "train",
        help="run a recipe from a config file and/or flags (data -> fine-tune -> report -> model.keras -> export)",
    )
    add_recipe_arguments(train, task_flag=True)
    train.set_defaults(run=run_train)

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
    lr_find.set_defaults(run=run_lr_find)

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
    evaluate.set_defaults(run=run_evaluate)

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
        choices=("float16", "int8", "int8_full"),
        default=None,
        help="litert / onnx: float16 weights, or dynamic-range int8 (needs --dataset or --force); litert image models: "
        "int8_full, full-integer (also needs --representative-dataset)",
    )
    formats.add_argument(
        "--representative-dataset",
        default=None,
        help="int8_full: training examples that calibrate the int8 activations (a file or folder read whole, or a "
        "tfds name: its train split)",
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
    export.set_defaults(run=run_export)

    predict = subcommands.add_parser("predict", help="run an exported SavedModel on raw texts or image files")
    predict.add_argument(
        "saved_model_dir",
        help="saved_models/<name> (newest version) or saved_models/<name>/<version>",
    )
    predict.add_argument("inputs", nargs="+", help="texts for a text model, JPEG/PNG paths for an image model")
    predict.add_argument("--signature", default="serving_default")
    predict.set_defaults(run=run_predict)
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


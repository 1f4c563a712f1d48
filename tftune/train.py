"""One-call fine-tuning: build under a strategy, compile for unfreezing, fit with fault tolerance, evaluate."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from tftune import distribute
from tftune._keras_private import AtomicBackupAndRestore
from tftune._validation import integer_error, number_error, raise_errors
from tftune.builders import ModelSpec
from tftune.lora import LoraCheckpoint, enable_lora, lora_errors
from tftune.unfreeze import GradualUnfreezing, compile_for_unfreezing

_logger = logging.getLogger(__name__)

@dataclasses.dataclass
class FitResult:
    """What `tftune.fit` returns: the trained model, its History dict, the final evaluation and the strategy."""

    model: keras.Model
    history: dict
    evaluation: dict
    strategy: tf.distribute.Strategy


def fit(
    model: keras.Model | ModelSpec | Mapping,
    train_data: tf.data.Dataset | Callable[[keras.Model], tf.data.Dataset],
    validation_data: tf.data.Dataset | Callable[[keras.Model], tf.data.Dataset] | None = None,
    *,
    epochs: int,
    strategy: str | tf.distribute.Strategy = "auto",
    precision: str = "auto",
    batch_size: int | None = None,
    batch_size_is_global: bool = False,
    unfreezing: GradualUnfreezing | None = None,
    optimizer: str | keras.optimizers.Optimizer = "adamw",
    learning_rate: float = 2e-5,
    head_learning_rate: float | None = None,
    layer_decay: float | None = None,
    warmup_steps: int = 0,
    class_weight: str | Mapping | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    early_stopping_patience: int | None = None,
    tensorboard: bool = True,
    jit_compile: bool | str = "auto",
    synchronize_batchnorm: bool = True,
    steps_per_epoch: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    lora_rank: int | None = None,
    lora_alpha: float | None = None,
) -> FitResult:
    """Fine-tune a classifier under a tf.distribute strategy; return the model, history and final evaluation.

    - `model`: a `ModelSpec` (or a dict of its fields), built here inside
      `strategy.scope()` under the precision policy; or a model already built
      inside the scope of the same strategy (a model built outside the scope
      of a distributed strategy is rejected).
    - `train_data` / `validation_data`: tf.data pipelines of
      `(features, int labels)`, or functions of the built model returning one
      (e.g. to map `model.preprocessor`). With `batch_size` they hold single
      examples and are batched here: `batch_size` is per replica unless
      `batch_size_is_global=True` (see `tftune.global_batch_size`); without
      it they are already batched with the global batch size.
    - Compiled by `tftune.compile_for_unfreezing(optimizer, learning_rate,
      head_learning_rate, layer_decay, warmup_steps, total_steps=epochs *
      steps)`; trained with `unfreezing` (default `GradualUnfreezing()`: head
      only, then one more group per epoch, each stage warming up again).
    - `class_weight`: `"balanced"` weighs each training example by
      `n / (classes * n_class)` (labels counted in one pass over
      `train_data`), or a dict `{class index or label name: weight}`. The
      weights become per-example sample weights in the training pipeline, so
      they work under every strategy; validation stays unweighted.
    - With `checkpoint_dir`: `BackupAndRestore` in `backup/` (rerun the same
      call after a crash and it resumes at the interrupted epoch, in its
      unfreezing stage; every checkpoint is written to a new file and then
      renamed into place, so a kill during a write leaves the previous one),
      the best weights (lowest `val_loss`, or `loss` without validation
      data) in `best.weights.h5` (their value in
      `best.json`: after a resume they are replaced only by an epoch better
      than every epoch before the interruption), TensorBoard logs in
      `logs/` (`tensorboard=False` to skip them; they need the `tensorboard`
      package). On several workers only the chief writes there; the others
      write to `checkpoint_dir/worker_<index>/`, so a shared directory is
      safe. `early_stopping_patience` adds `EarlyStopping`.
    - With 2+ replicas and `synchronize_batchnorm=True`, BatchNormalization
      uses the statistics of the global batch (see
      `tftune.synchronize_batch_normalization`): N replicas train like one
      replica at the same global batch and keep identical moving statistics.
    - `strategy="multi_worker"` runs one copy of the same call on every
      worker, each with its `TF_CONFIG`; pass `batch_size` (or batches of the
      global batch size): every worker reads its share of each global batch.
    - `lora_rank`: train LoRA adapters of that rank (scaled by `lora_alpha /
      lora_rank`) on the layers the backbone's family targets instead of whole
      groups: base kernels stay frozen (bit-identical), the head trains fully,
      the unfreezing schedule decides which groups' adapters train. With
      `checkpoint_dir`, `LoraCheckpoint` keeps adapters and pristine kernels
      across a crash and resume (see `tftune.enable_lora`).
    - The evaluation is of the final weights, on `validation_data` (the last
      epoch's validation pass) or `train_data` without it.

    Example:

    ```python
    images = np.random.RandomState(0).uniform(0, 255, size=(12, 32, 32, 3)).astype("float32")
    examples = tf.data.Dataset.from_tensor_slices((images, [0, 1, 2] * 4))
    result = tftune.fit(
        tftune.ModelSpec("image", "resnet50", 3, options={"image_size": (32, 32), "weights": None}),
        examples.take(8), examples.skip(8), epochs=1, batch_size=4,
    )
    result.evaluation["accuracy"]
    ```
    """
    raise_errors(integer_error("epochs", epochs, minimum=1), *lora_errors(lora_rank, lora_alpha))
    if tensorboard and checkpoint_dir is not None and importlib.util.find_spec("tensorboard") is None:
        raise ValueError(
            "tensorboard=True writes TensorBoard logs under checkpoint_dir, but the tensorboard package is not "
            "installed. pip install tensorboard, or pass tensorboard=False."
        )
    strategy = distribute.get_strategy(strategy)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and not isinstance(
        strategy, distribute.KerasMultiWorkerMirroredStrategy
    ):
        raise ValueError(
            "Keras 3's model.fit fails under a plain tf.distribute.MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585). Pass strategy='multi_worker' or a tftune.KerasMultiWorkerMirroredStrategy()."
        )
    model = _model_in_scope(model, strategy, precision)
    if lora_rank is not None:
        with strategy.scope():
            enable_lora(model, lora_rank, lora_alpha)
    if synchronize_batchnorm and strategy.num_replicas_in_sync > 1:
        distribute.synchronize_batch_normalization(model)
    train_data = _resolve(train_data, model, "train_data")
    if class_weight is not None:
        train_data = _with_sample_weights(train_data, _class_weight_vector(class_weight, model, train_data))
    train_data = _pipeline(train_data, model, strategy, batch_size, batch_size_is_global, "train_data")
    validation_data = _pipeline(validation_data, model, strategy, batch_size, batch_size_is_global, "validation_data")
    steps = steps_per_epoch or _finite_cardinality(train_data)
    compile_for_unfreezing(
        model,
        optimizer,
        learning_rate,
        head_learning_rate=head_learning_rate,
        layer_decay=layer_decay,
        warmup_steps=warmup_steps,
        total_steps=epochs * steps if steps else None,
        jit_compile=jit_compile,
    )
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # tf.data pipelines shuffle themselves; Keras would only warn that it ignores this.
        callbacks=_callbacks(
            unfreezing, _worker_directory(checkpoint_dir, strategy), tensorboard, early_stopping_patience,
            validation_data, callbacks, lora=lora_rank is not None,
        ),
        verbose=verbose,
    )
    # The last epoch's validation pass already measured the final weights, unless a
    # user callback may have changed them after it (e.g. restore_best_weights).
    last_validation = {key[4:]: values[-1] for key, values in history.history.items() if key.startswith("val_")}
    if last_validation and not callbacks:
        evaluation = last_validation
    else:
        evaluation = model.evaluate(validation_data or train_data, return_dict=True, verbose=0)
    return FitResult(model, history.history, evaluation, strategy)


def _model_in_scope(model, strategy: tf.distribute.Strategy, precision: str) -> keras.Model:
    if isinstance(model, Mapping):
        model = ModelSpec(**model)
    if isinstance(model, ModelSpec):
        policy = distribute.precision_policy(precision, strategy)
        with strategy.scope(), distribute.precision_scope(policy):
            return model.build()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, a tftune.ModelSpec or a dict of its fields; got {model!r}.")
    if precision != "auto" and distribute.precision_policy(precision, strategy) != model.dtype_policy.name:
        raise ValueError(
            f"precision={precision!r} but the model was built with the {model.dtype_policy.name!r} policy. "
            f"Pass a ModelSpec so tftune builds it under the policy, or precision='auto' to keep the model's."
        )
    outside = [v.path for v in model.weights if not strategy.extended.variable_created_in_scope(v.value)]
    if outside and strategy is not tf.distribute.get_strategy():
        raise ValueError(
            f"The model's variables ({outside[0]}, ... {len(outside)} of {len(model.weights)}) were created "
            f"outside the scope of the {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s) "
            f"it would train under. Build it inside `with strategy.scope():`, or pass a tftune.ModelSpec "
            f"and let tftune.fit build it."
        )
    return model


def balanced_class_weights(class_counts: Sequence[int] | Mapping) -> dict[int, float]:
    """Per-class weights `n / (classes * n_class)` (scikit-learn's "balanced") from the training class counts.

    Example:

    ```python
    tftune.balanced_class_weights([870, 130])  # {0: 0.5747..., 1: 3.846...}
    ```
    """
    counts = list(class_counts.values()) if isinstance(class_counts, Mapping) else list(class_counts)
    empty = [index for index, count in enumerate(counts) if not count]
    if empty:
        raise ValueError(
            f"Balanced class weights need every class in the training data; classes {empty} have no example "
            f"(counts {counts}). Add examples of them or pass explicit class_weight."
        )
    total = sum(counts)
    return {index: total / (len(counts) * count) for index, count in enumerate(counts)}


def _class_weight_vector(class_weight, model: keras.Model, train_data: tf.data.Dataset) -> tf.Tensor:
    """One weight per class index from "balanced" or a {index or label name: weight} dict; errors before training."""
    num_classes = int(model.output_shape[-1])
    labels = list(getattr(model, "labels", None) or [str(index) for index in range(num_classes)])
    if class_weight == "balanced":
        label_batches = train_data.map(lambda *example: tf.reshape(example[1], [-1]))
        counts = np.zeros(num_classes, dtype="int64")
        for batch in label_batches.as_numpy_iterator():
            counts += np.bincount(batch, minlength=num_classes)[:num_classes]
        weights = balanced_class_weights(counts.tolist())
    elif isinstance(class_weight, Mapping):
        weights = {}
        for key, weight in class_weight.items():
            index = labels.index(key) if key in labels and not isinstance(key, int) else key
            raise_errors(
                integer_error(f"class_weight key {key!r} (a class index or label name)", index, minimum=0,
                              maximum=num_classes - 1),
                number_error(f"class_weight[{key!r}]", weight, minimum=0, exclusive=True),
            )
            weights[index] = float(weight)
    else:
        raise ValueError(
            f"class_weight must be 'balanced', a dict {{class index or label name: weight}} or None; got "
            f"{class_weight!r}."
        )
    return tf.constant([weights.get(index, 1.0) for index in range(num_classes)], dtype="float32")


def _with_sample_weights(data: tf.data.Dataset, weights: tf.Tensor) -> tf.data.Dataset:
    if len(data.element_spec) != 2:
        raise ValueError(
            "class_weight needs train_data of (features, labels) pairs; this one already has sample weights. "
            "Fold the class weights into them, or drop class_weight."
        )
    return data.map(lambda features, labels: (features, labels, tf.gather(weights, labels)))


def _resolve(data, model, name) -> tf.data.Dataset | None:
    """The pipeline `data` stands for: a dataset, or a function of the model returning one."""
    if data is None:
        return None
    if callable(data) and not isinstance(data, tf.data.Dataset):
        data = data(model)
    if not isinstance(data, tf.data.Dataset):
        raise ValueError(f"{name} must be a tf.data.Dataset or a function of the model returning one; got {data!r}.")
    return data


def _pipeline(data, model, strategy, batch_size, batch_size_is_global, name) -> tf.data.Dataset | None:
    data = _resolve(data, model, name)
    if data is None:
        return None
    global_batch = (
        None
        if batch_size is None
        else distribute.global_batch_size(batch_size, strategy, per_replica=not batch_size_is_global)
    )
    return distribute.distribute_dataset(data, strategy, global_batch_size=global_batch)


def _finite_cardinality(dataset: tf.data.Dataset) -> int | None:
    cardinality = int(dataset.cardinality())
    return cardinality if cardinality > 0 else None


def _worker_directory(checkpoint_dir, strategy: tf.distribute.Strategy) -> str | None:
    """`checkpoint_dir` for the chief (or the only worker), `checkpoint_dir/worker_<index>` for the other workers."""
    if checkpoint_dir is None:
        return None
    directory = os.fspath(checkpoint_dir)
    if strategy.extended.should_checkpoint:
        return directory
    return os.path.join(directory, f"worker_{strategy.cluster_resolver.task_id}")


def _callbacks(unfreezing, directory, tensorboard, patience, validation_data, extra, lora: bool) -> list:
    monitor = "val_loss" if validation_data is not None else "loss"
    callbacks = [unfreezing if unfreezing is not None else GradualUnfreezing()]
    if directory is not None:
        backup = os.path.join(directory, "backup")
        resuming = os.path.isdir(backup)
        callbacks.append(_BestWeightsCheckpoint(directory, monitor, resuming))
        if lora:  # before the backup: adapters are saved before each backup, restored after it
            callbacks.append(LoraCheckpoint(os.path.join(directory, "lora")))
        callbacks.append(AtomicBackupAndRestore(backup))
        if resuming:
            callbacks.append(_ResumeNotice(callbacks[0], backup))
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(directory, "logs")))
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=False))
    return callbacks + list(extra)


class _ResumeNotice(keras.callbacks.Callback):
    """One line when a fit resumes from its backup: the epoch it resumes at and the unfreezing stage it is in."""

    def __init__(self, unfreezing: GradualUnfreezing, backup: str):
        super().__init__()
        self._unfreezing, self._backup, self._said = unfreezing, backup, False

    def on_epoch_begin(self, epoch, logs=None):
        if self._said or epoch == 0:  # epoch 0: the backup held no finished epoch, the fit starts afresh
            return
        self._said = True
        unfreezing = self._unfreezing
        position = epoch if unfreezing.unit == "epoch" else epoch * self.params["steps"]
        boundaries = unfreezing.boundaries()
        stage = 1 + sum(boundary <= position for boundary in boundaries)
        groups = unfreezing.stages_entered[-1]["groups"] if unfreezing.stages_entered else []
        _logger.info(
            "Resuming from epoch %d of %d, stage %d of %d (%s trainable): restored from %s",
            epoch + 1, self.params["epochs"], stage, len(boundaries) + 1, ", ".join(groups), self._backup,
        )


class _BestWeightsCheckpoint(keras.callbacks.ModelCheckpoint):
    """The best weights in `best.weights.h5` and their `monitor` value in `best.json`.

    A run resumed from its backup starts from the recorded best, so an epoch
    after the restart replaces the weights only when it beats every epoch
    before the interruption (a plain `ModelCheckpoint` starts again from
    infinity and overwrites them with the first epoch after the restart).
    """

    def __init__(self, directory: str, monitor: str, resuming: bool):
        self._record_path = os.path.join(directory, "best.json")
        self._weights_path = os.path.join(directory, "best.weights.h5")
        record = {}
        if resuming and os.path.exists(self._record_path):
            with open(self._record_path) as record_file:
                record = json.load(record_file)
        super().__init__(
            os.path.join(directory, "best.partial.weights.h5"),  # renamed to best.weights.h5 once complete
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=record.get("best") if record.get("monitor") == monitor else None,
        )

    def on_epoch_end(self, epoch, logs=None):
        best = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != best:
            os.replace(self.filepath, self._weights_path)
            _write_atomically(
                self._record_path, json.dumps({"monitor": self.monitor, "best": float(self.best), "epoch": epoch})
            )


def _write_atomically(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as staging:
        staging.write(text)
    os.replace(path + ".tmp", path)

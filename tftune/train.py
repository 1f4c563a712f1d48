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
from tftune._validation import boolean_error, integer_error, raise_errors
from tftune.builders import ModelSpec
from tftune.lora import LoraCheckpoint, enable_lora
from tftune.options import DistributionOptions, LoraOptions, OptimizerOptions, class_weight_errors
from tftune.precision import precision_policy, precision_scope
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
    unfreezing: GradualUnfreezing | None = None,
    optimization: OptimizerOptions | Mapping | None = None,
    distribution: DistributionOptions | Mapping | None = None,
    lora: LoraOptions | Mapping | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    early_stopping_patience: int | None = None,
    class_weight: str | Mapping | None = None,
    tensorboard: bool = True,
    steps_per_epoch: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> FitResult:
    """Fine-tune a classifier under a tf.distribute strategy; return the model, history and final evaluation.

    Every argument is checked before any data is read or model built; the
    option groups (`tftune.OptimizerOptions`, `tftune.DistributionOptions`,
    `tftune.LoraOptions`, or a dict of their fields) check theirs when made;
    None means a group's defaults (no LoRA).

    - `model`: a `ModelSpec` (or a dict of its fields), built here inside
      the strategy's scope under the precision policy; or a model already
      built inside the scope of the same strategy (a model built outside the
      scope of a distributed strategy is rejected).
    - `train_data` / `validation_data`: tf.data pipelines of
      `(features, int labels)`, or functions of the built model returning one
      (e.g. to map `model.preprocessor`). With `distribution.batch_size` they
      hold single examples and are batched here (per replica unless
      `batch_size_is_global=True`, see `tftune.global_batch_size`); without
      it they are already batched with the global batch size.
    - `unfreezing`: the schedule (default `GradualUnfreezing()`: head only,
      then one more group per epoch, each stage warming up again).
    - `optimization`: compiled by `tftune.compile_for_unfreezing` with its
      optimizer and rates, `total_steps=epochs * steps`.
    - `distribution`: the strategy (`strategy="multi_worker"` runs one copy
      of the same call on every worker, each with its `TF_CONFIG`, and every
      worker reads its share of each global batch), the precision, the batch
      size, XLA; with 2+ replicas and `synchronize_batchnorm`,
      BatchNormalization uses the statistics of the global batch: N replicas
      train like one replica at the same global batch.
    - `lora`: train LoRA adapters on the layers the backbone's family
      targets instead of whole groups: base kernels stay frozen
      (bit-identical), the head trains fully, the unfreezing schedule decides
      which groups' adapters train. With `checkpoint_dir`, `LoraCheckpoint`
      keeps adapters and pristine kernels across a crash and resume.
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
    - `class_weight`: `"balanced"` weighs each training example by
      `n / (classes * n_class)` (labels counted in one pass over
      `train_data`), or a dict `{class index or label name: weight}`. The
      weights become per-example sample weights in the training pipeline, so
      they work under every strategy; validation stays unweighted.
    - The evaluation is of the final weights, on `validation_data` (the last
      epoch's validation pass) or `train_data` without it.

    Example:

    ```python
    texts, labels = ["a fine film", "a dull film", "a film"] * 4, [0, 1, 2] * 4
    examples = lambda model: tf.data.Dataset.from_tensor_slices((model.preprocessor(texts), labels))
    result = tftune.fit(
        tftune.ModelSpec("text", text_backbone, 3, options={"sequence_length": 16}),
        lambda model: examples(model).take(8), lambda model: examples(model).skip(8), epochs=1,
        optimization=tftune.OptimizerOptions(learning_rate=1e-3, warmup_steps=1),
        distribution=tftune.DistributionOptions(strategy="cpu", batch_size=4),
    )
    sorted(result.evaluation)  # ['accuracy', 'loss']
    ```
    """
    optimization = _option_group(optimization, OptimizerOptions, "optimization")
    distribution = _option_group(distribution, DistributionOptions, "distribution")
    lora = None if lora is None else _option_group(lora, LoraOptions, "lora")
    raise_errors(
        integer_error("epochs", epochs, minimum=1),
        None if early_stopping_patience is None else integer_error(
            "early_stopping_patience", early_stopping_patience, minimum=0
        ),
        None if steps_per_epoch is None else integer_error("steps_per_epoch", steps_per_epoch, minimum=1),
        *class_weight_errors(class_weight),
        boolean_error("tensorboard", tensorboard),
        None if unfreezing is None or isinstance(unfreezing, GradualUnfreezing) else (
            f"unfreezing must be a tftune.GradualUnfreezing or None (its default); got {unfreezing!r}."
        ),
    )
    if tensorboard and checkpoint_dir is not None and importlib.util.find_spec("tensorboard") is None:
        raise ValueError(
            "tensorboard=True writes TensorBoard logs under checkpoint_dir, but the tensorboard package is not "
            "installed. pip install tensorboard, or pass tensorboard=False."
        )
    strategy = distribute.get_strategy(distribution.strategy, tpu=distribution.tpu)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and not isinstance(
        strategy, distribute.KerasMultiWorkerMirroredStrategy
    ):
        raise ValueError(
            "Keras 3's model.fit fails under a plain tf.distribute.MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585). Pass strategy='multi_worker' or a tftune.KerasMultiWorkerMirroredStrategy()."
        )
    model = _model_in_scope(model, strategy, distribution.precision)
    if lora is not None:
        with strategy.scope():
            enable_lora(model, lora.rank, lora.alpha)
    if distribution.synchronize_batchnorm and strategy.num_replicas_in_sync > 1:
        distribute.synchronize_batch_normalization(model)
    train_data = _resolve(train_data, model, "train_data")
    if class_weight is not None:
        train_data = _with_sample_weights(train_data, _class_weight_vector(class_weight, model, train_data))
    train_data = _pipeline(train_data, model, strategy, distribution, "train_data")
    validation_data = _pipeline(validation_data, model, strategy, distribution, "validation_data")
    steps = steps_per_epoch or _finite_cardinality(train_data)
    compile_for_unfreezing(
        model,
        optimization.optimizer,
        optimization.learning_rate,
        head_learning_rate=optimization.head_learning_rate,
        layer_decay=optimization.layer_decay,
        warmup_steps=optimization.warmup_steps,
        total_steps=epochs * steps if steps else None,
        jit_compile=distribution.jit_compile,
    )
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # tf.data pipelines shuffle themselves; Keras would only warn that it ignores this.
        callbacks=_callbacks(
            unfreezing, _worker_directory(checkpoint_dir, strategy), tensorboard, early_stopping_patience,
            validation_data, callbacks, lora=lora is not None,
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


def _option_group(value, group: type, name: str):
    """`value` as the option group `group`: the group itself, or made (and checked) from a dict of its fields."""
    if value is None:
        return group()
    if isinstance(value, group):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {field.name for field in dataclasses.fields(group)})
        raise_errors(
            f"{name} has no option {unknown}; {group.__name__} has {[f.name for f in dataclasses.fields(group)]}."
            if unknown else None
        )
        return group(**value)
    raise ValueError(f"{name} must be a tftune.{group.__name__} or a dict of its fields; got {value!r}.")


def _model_in_scope(model, strategy: tf.distribute.Strategy, precision: str) -> keras.Model:
    if isinstance(model, Mapping):
        model = ModelSpec(**model)
    if isinstance(model, ModelSpec):
        policy = precision_policy(precision, strategy, model.modality)
        with strategy.scope(), precision_scope(policy):
            return model.build()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, a tftune.ModelSpec or a dict of its fields; got {model!r}.")
    if precision != "auto" and precision_policy(precision, strategy) != model.dtype_policy.name:
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
    """One weight per class index from "balanced" or a {index or label name: weight} dict; errors before training.

    The keys are checked here, against the model's labels; the rest by `tftune.options.class_weight_errors`.
    """
    num_classes = int(model.output_shape[-1])
    labels = list(getattr(model, "labels", None) or [str(index) for index in range(num_classes)])
    if class_weight == "balanced":
        label_batches = train_data.map(lambda *example: tf.reshape(example[1], [-1]))
        counts = np.zeros(num_classes, dtype="int64")
        for batch in label_batches.as_numpy_iterator():
            counts += np.bincount(batch, minlength=num_classes)[:num_classes]
        weights = balanced_class_weights(counts.tolist())
    else:
        weights = {}
        for key, weight in class_weight.items():
            index = labels.index(key) if key in labels and not isinstance(key, int) else key
            raise_errors(
                integer_error(f"class_weight key {key!r} (a class index or label name)", index, minimum=0,
                              maximum=num_classes - 1)
            )
            weights[index] = float(weight)
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


def _pipeline(data, model, strategy, distribution: DistributionOptions, name) -> tf.data.Dataset | None:
    data = _resolve(data, model, name)
    if data is None:
        return None
    global_batch = (
        None
        if distribution.batch_size is None
        else distribute.global_batch_size(
            distribution.batch_size, strategy, per_replica=not distribution.batch_size_is_global
        )
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
        # Made now, race-free: ModelCheckpoint checks then creates it, which fails when another worker creates
        # the shared checkpoint_dir (as the parent of its worker_<index>/) between the two.
        os.makedirs(directory, exist_ok=True)
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

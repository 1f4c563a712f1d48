"""Evaluation reports: metrics.json, report.md, curves.png and confusion_matrix.png for a trained classifier.

Metrics are computed with NumPy from the model's predicted probabilities,
next to the majority-class baseline; a model that does not beat it, or a
class it hardly ever finds, is warned about in report.md and on the console
(the "tftune" logger). Plots are drawn with matplotlib (Agg backend, no
display needed).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from tftune import _plotting
from tftune.precision import describe_precision
from tftune.saving import float32_copy

_logger = logging.getLogger(__name__)

_EPSILON = 1e-7
_ANNOTATE_MAX_CLASSES = 20
# A class the model finds less often than this is called out in the report.
LOW_RECALL = 0.2


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """What `write_report` wrote: the metrics it computed and the paths of the files.

    Example:

    ```python
    import tempfile
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    tokens = model.preprocessor(["a dull film", "a fine film"] * 4)
    data = tf.data.Dataset.from_tensor_slices((tokens, np.arange(8) % 2)).batch(4)
    report = tftune.write_report(tempfile.mkdtemp(), model, data)
    report.metrics["macro_f1"], report.paths["report_md"]
    ```
    """

    metrics: dict
    paths: dict[str, str]


def classification_metrics(labels, probabilities, label_names: Sequence[str]) -> dict:
    """Accuracy, loss, confusion matrix, per-class precision / recall / F1 and the majority baseline.

    `labels` are integer class indices `[N]`, `probabilities` `[N, classes]`.
    `loss` is the mean sparse categorical cross-entropy. A class that is never
    predicted (or never present) gets precision (recall) 0. `macro_f1` is the
    unweighted mean of the per-class F1 scores. `majority_baseline` holds the
    accuracy and macro-F1 of always answering the most frequent class of
    `labels`; `warnings` says when accuracy does not beat it, and which
    classes have recall below `LOW_RECALL` (0.2).

    Example:

    ```python
    metrics = tftune.classification_metrics([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], ["no", "yes"])
    metrics["accuracy"], metrics["per_class"]["yes"]["recall"]  # 0.667, 0.5
    metrics["majority_baseline"]  # {'label': 'yes', 'accuracy': 0.667, 'macro_f1': 0.4}
    metrics["warnings"]  # ['accuracy 0.667 is not better than always answering the majority class ...']
    ```
    """
    labels = np.asarray(labels, dtype="int64").reshape(-1)
    probabilities = np.asarray(probabilities, dtype="float64")
    classes = len(label_names)
    if probabilities.ndim != 2 or probabilities.shape != (len(labels), classes):
        raise ValueError(
            f"probabilities must be [examples, classes] = [{len(labels)}, {classes}]; got shape {probabilities.shape}."
        )
    if len(labels) == 0:
        raise ValueError("Cannot compute metrics on zero examples; the evaluation data is empty.")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(
            f"labels must index label_names (0..{classes - 1}); got values {sorted(set(labels.tolist()))[:10]}."
        )
    scores = _scores(labels, probabilities.argmax(axis=1), classes)
    majority = int(np.bincount(labels, minlength=classes).argmax())
    baseline = _scores(labels, np.full_like(labels, majority), classes)
    picked = probabilities[np.arange(len(labels)), labels]
    metrics = {
        "examples": int(len(labels)),
        "accuracy": scores["accuracy"],
        "loss": float(-np.log(np.clip(picked, _EPSILON, 1.0)).mean()),
        "macro_f1": scores["macro_f1"],
        "majority_baseline": {
            "label": str(label_names[majority]),
            "accuracy": baseline["accuracy"],
            "macro_f1": baseline["macro_f1"],
        },
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(
                label_names, scores["precision"], scores["recall"], scores["f1"], scores["support"], strict=True
            )
        },
        "confusion_matrix": scores["confusion"].tolist(),
    }
    return {**metrics, "warnings": _warnings(metrics)}


def _scores(labels: np.ndarray, predictions: np.ndarray, classes: int) -> dict:
    confusion = np.zeros((classes, classes), dtype="int64")
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion).astype("float64")
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros(classes), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(classes), where=(precision + recall) > 0)
    return {
        "accuracy": float(true_positives.sum() / len(labels)),
        "macro_f1": float(f1.mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "confusion": confusion,
    }


def _warnings(metrics: dict) -> list[str]:
    baseline = metrics["majority_baseline"]
    warnings = []
    if metrics["accuracy"] <= baseline["accuracy"]:
        warnings.append(
            f"accuracy {metrics['accuracy']:.3f} is not better than always answering the majority class "
            f"{baseline['label']!r} ({baseline['accuracy']:.3f}): the model has learned no more than the class "
            f"balance. Train longer or at a higher learning rate, or give the rare classes more examples."
        )
    for name, scores in metrics["per_class"].items():
        if scores["support"] and scores["recall"] < LOW_RECALL:
            found = round(scores["recall"] * scores["support"])
            warnings.append(
                f"class {name!r} has recall {scores['recall']:.3f} (below {LOW_RECALL}): the model finds "
                f"{found} of its {scores['support']} examples."
            )
    return warnings


def evaluate_classifier(model, dataset: tf.data.Dataset, label_names: Sequence[str] | None = None) -> dict:
    """`classification_metrics` of `model` on a batched `(inputs, labels)` dataset in a fixed order.

    `model` is a Keras classifier, run with `model.predict` (its progress
    bar, and correct under a tf.distribute strategy), or a served model from
    `tftune.load_serving_model`, run batch by batch with
    `predict_probabilities` on the raw inputs (text strings, or float
    images 0..255). Labels come from a second pass over the dataset, which
    must therefore not be shuffled. `label_names` defaults to
    `model.labels`. The metrics' warnings are also logged.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16)
    tokens = model.preprocessor(["a dull film", "a fine film"] * 4)
    data = tf.data.Dataset.from_tensor_slices((tokens, np.arange(8) % 2)).batch(4)
    metrics = tftune.evaluate_classifier(model, data)
    metrics["majority_baseline"]["accuracy"]  # 0.5: four reviews of each class
    ```
    """
    label_names = list(label_names if label_names is not None else model.labels)
    labels = list(dataset.map(lambda inputs, labels: labels).as_numpy_iterator())
    if not labels:
        raise ValueError("The evaluation dataset yielded no batches; check the validation split.")
    _logger.info("Evaluating on %d examples", sum(len(batch) for batch in labels))
    inputs = dataset.map(lambda inputs, labels: inputs)
    if isinstance(model, keras.Model):
        probabilities = model.predict(inputs, verbose=1)
    else:
        probabilities = np.concatenate(
            [np.asarray(model.predict_probabilities(_raw_inputs(batch))) for batch in inputs.as_numpy_iterator()]
        )
    metrics = classification_metrics(np.concatenate(labels), probabilities, label_names)
    for warning in metrics["warnings"]:
        _logger.warning("Warning: %s", warning)
    return metrics


def _raw_inputs(batch: np.ndarray):
    """A batch of raw serving inputs: strings (tf.data gives text as bytes objects), or the float images as they are."""
    return [item.decode("utf-8") for item in batch] if batch.dtype == object else batch


def write_report(
    output_dir: str | os.PathLike,
    model: keras.Model,
    validation_data: tf.data.Dataset,
    label_names: Sequence[str] | None = None,
    *,
    history=None,
    unfreezing_boundaries: Sequence[int] = (),
    unfreezing_stages: Sequence[Mapping] = (),
    config: Mapping | None = None,
    wall_time: float | None = None,
    examples_per_second: float | None = None,
    title: str = "tftune run",
) -> EvaluationReport:
    """Evaluate `model` on `validation_data` and write metrics.json, report.md, curves.png, confusion_matrix.png.

    `history` is the `keras.callbacks.History` that `fit` returned, or its
    `.history` dict (`{"loss": [...], "val_accuracy": [...], ...}`).
    `unfreezing_boundaries` are the epochs (0-based) at which a new stage of
    gradual unfreezing started; they split the history into stages (a table
    in report.md when there are two or more) and are drawn on the curves.
    `unfreezing_stages` is `GradualUnfreezing.stages_entered` (each stage's
    first epoch and step, trainable groups and parameters, boundaries inside
    an epoch included), listed in report.md. `config` is stored as given (it must be JSON
    serializable); `wall_time` (seconds) and `examples_per_second` describe
    training. The model's precision (dtype policy) is given with why it was
    chosen (`config["precision"]`, what was asked for: see
    `tftune.precision.describe_precision`); a mixed-precision model is
    evaluated as it is saved and exported, in float32 (`float32_copy`).
    Non-finite numbers are written as `null`.

    Example:

    ```python
    import tempfile
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    tokens = model.preprocessor(["a dull film", "a fine film"] * 4)
    data = tf.data.Dataset.from_tensor_slices((tokens, np.arange(8) % 2)).batch(4)
    history = {"loss": [0.9, 0.7, 0.6], "val_loss": [0.8, 0.7, 0.7], "accuracy": [0.5, 0.6, 0.7]}
    report = tftune.write_report(tempfile.mkdtemp(), model, data, history=history, unfreezing_boundaries=[1, 2],
                                 config={"epochs": 3}, wall_time=120.0, title="reviews")
    report.paths["curves_png"], [stage["first_epoch"] for stage in report.metrics["stages"]]  # ..., [0, 1, 2]
    ```
    """
    os.makedirs(output_dir, exist_ok=True)
    label_names = list(label_names if label_names is not None else model.labels)
    history = _history_dict(history)
    epochs = max((len(values) for values in history.values()), default=0)
    boundaries = _check_boundaries(unfreezing_boundaries, epochs)
    unfreezing_stages = _check_unfreezing_stages(unfreezing_stages)
    # A mixed-precision model is evaluated as it is saved and exported: in float32.
    evaluated = float32_copy(model) if isinstance(model, keras.Model) else model
    evaluation = evaluate_classifier(evaluated, validation_data, label_names)
    metrics = {
        **evaluation,
        "label_names": label_names,
        "history": history,
        "stages": _stages(history, boundaries, epochs),
        "unfreezing_boundaries": boundaries,
        "unfreezing_stages": unfreezing_stages,
        "wall_time_seconds": wall_time,
        "examples_per_second": examples_per_second,
        # A Keras model's dtype policy and why; a served SavedModel (`tftune evaluate` on an export) has none.
        "precision": describe_precision(
            model.dtype_policy.name, (config or {}).get("precision"), model.modality
        )
        if isinstance(model, keras.Model)
        else "a served SavedModel (float32 probabilities)",
        "config": dict(config or {}),
    }
    paths = {
        "metrics_json": os.path.join(output_dir, "metrics.json"),
        "report_md": os.path.join(output_dir, "report.md"),
        "curves_png": os.path.join(output_dir, "curves.png"),
        "confusion_matrix_png": os.path.join(output_dir, "confusion_matrix.png"),
    }
    with open(paths["metrics_json"], "w", encoding="utf-8") as file:
        json.dump(_finite(metrics), file, indent=2, allow_nan=False, default=str)
    _plot_curves(history, boundaries, paths["curves_png"], title)
    confusion = np.asarray(evaluation["confusion_matrix"])
    _plot_confusion_matrix(confusion, label_names, paths["confusion_matrix_png"], title)
    with open(paths["report_md"], "w", encoding="utf-8") as file:
        file.write(_markdown(metrics, title, paths))
    return EvaluationReport(_finite(metrics), paths)


def _history_dict(history) -> dict[str, list[float]]:
    if history is None:
        return {}
    if isinstance(history, keras.callbacks.History):
        history = history.history
    if not isinstance(history, Mapping):
        raise ValueError(
            f"history must be a keras History, a dict of per-epoch lists or None; got {type(history).__name__}."
        )
    return {str(key): [float(value) for value in np.asarray(values).reshape(-1)] for key, values in history.items()}


def _check_boundaries(boundaries, epochs: int) -> list[int]:
    checked = sorted({int(epoch) for epoch in boundaries})
    if any(epoch <= 0 or epoch >= max(epochs, 1) for epoch in checked) and epochs:
        raise ValueError(
            f"unfreezing_boundaries must be epochs strictly between 0 and the {epochs} trained epochs "
            f"(the first epoch of each new stage); got {list(boundaries)}."
        )
    return checked


_STAGE_KEYS = ("epoch", "step", "groups", "trainable_params")


def _check_unfreezing_stages(stages: Sequence[Mapping]) -> list[dict]:
    for stage in stages:
        if not isinstance(stage, Mapping) or set(_STAGE_KEYS) - set(stage):
            raise ValueError(
                f"unfreezing_stages must be GradualUnfreezing.stages_entered: mappings with keys "
                f"{', '.join(_STAGE_KEYS)}; got {stage!r}."
            )
    return [{key: stage[key] for key in _STAGE_KEYS} for stage in stages]


def _stages(history: dict, boundaries: list[int], epochs: int) -> list[dict]:
    edges = [0, *boundaries, epochs]
    return [
        {
            "stage": index,
            "first_epoch": start,
            "last_epoch": end - 1,
            "history": {key: values[start:end] for key, values in history.items()},
        }
        for index, (start, end) in enumerate(zip(edges, edges[1:], strict=False))
        if end > start
    ]


def _finite(value):
    """The same structure with NaN / inf replaced by None (strict JSON)."""
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _plot_curves(history: dict, boundaries: list[int], path: str, title: str) -> None:
    pyplot = _plotting.pyplot()
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if history.get(key):
                epochs = np.arange(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], style, label="validation" if key.startswith("val_") else "train")
        for position, epoch in enumerate(boundaries):
            axis.axvline(epoch + 0.5, color="grey", linestyle=":", label="unfreezing step" if position == 0 else None)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
        else:
            axis.text(0.5, 0.5, f"no {metric} history", ha="center", va="center", transform=axis.transAxes)
        axis.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _plot_confusion_matrix(confusion: np.ndarray, label_names: list[str], path: str, title: str) -> None:
    pyplot = _plotting.pyplot()
    classes = len(label_names)
    side = min(4 + 0.45 * classes, 24)
    figure, axis = pyplot.subplots(figsize=(side + 1.5, side))
    rows = confusion.sum(axis=1, keepdims=True)
    fractions = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    image = axis.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axis, label="fraction of the true class")
    rotate = classes > 5 and max(len(name) for name in label_names) > 2
    axis.set_xticks(range(classes), label_names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    axis.set_yticks(range(classes), label_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if classes <= _ANNOTATE_MAX_CLASSES:
        for row in range(classes):
            for column in range(classes):
                axis.text(
                    column,
                    row,
                    str(confusion[row, column]),
                    ha="center",
                    va="center",
                    color="white" if fractions[row, column] > 0.5 else "black",
                )
    axis.set_title(f"{title}: confusion matrix")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _number(value, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _markdown(metrics: dict, title: str, paths: dict) -> str:
    baseline = metrics["majority_baseline"]
    recalls = ", ".join(f"{name} {_number(scores['recall'], 3)}" for name, scores in metrics["per_class"].items())
    lines = [f"# {title}", ""]
    if metrics["warnings"]:
        lines += [*(f"> **Warning:** {warning}" for warning in metrics["warnings"]), ""]
    lines += [
        "| metric | value |",
        "|---|---|",
        f"| evaluated examples | {metrics['examples']} |",
        f"| accuracy | {_number(metrics['accuracy'])} |",
        f"| majority-class baseline accuracy (always {baseline['label']!r}) | {_number(baseline['accuracy'])} |",
        f"| macro-F1 | {_number(metrics['macro_f1'])} |",
        f"| majority-class baseline macro-F1 | {_number(baseline['macro_f1'])} |",
        f"| recall per class | {recalls} |",
        f"| loss | {_number(metrics['loss'])} |",
        f"| wall time (s) | {_number(metrics['wall_time_seconds'], 1)} |",
        f"| training examples/s | {_number(metrics['examples_per_second'], 1)} |",
        f"| precision | {metrics['precision']} |",
        "",
        "## Per class",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, scores in metrics["per_class"].items():
        lines.append(
            f"| {name} | {_number(scores['precision'], 3)} | {_number(scores['recall'], 3)} | "
            f"{_number(scores['f1'], 3)} | {scores['support']} |"
        )
    if len(metrics["stages"]) > 1:  # one stage (no boundary at an epoch's start) would only repeat the last epoch
        lines += [
            "",
            "## Stages (gradual unfreezing)",
            "",
            "| stage | epochs | final loss | final val. accuracy |",
            "|---|---|---|---|",
        ]
        for stage in metrics["stages"]:
            final = {key: values[-1] if values else None for key, values in stage["history"].items()}
            lines.append(
                f"| {stage['stage']} | {stage['first_epoch'] + 1}-{stage['last_epoch'] + 1} | "
                f"{_number(final.get('loss'))} | {_number(final.get('val_accuracy'))} |"
            )
    if metrics["unfreezing_stages"]:
        lines += [
            "",
            "## Unfreezing",
            "",
            "| from | trainable groups (from the top) | trainable parameters |",
            "|---|---|---|",
        ]
        for stage in metrics["unfreezing_stages"]:
            lines.append(
                f"| epoch {stage['epoch'] + 1}, step {stage['step'] + 1} | {', '.join(stage['groups'])} | "
                f"{stage['trainable_params']:,} |"
            )
    lines += [
        "",
        "## Curves",
        "",
        f"![loss and accuracy per epoch]({os.path.basename(paths['curves_png'])})",
        "",
        f"![confusion matrix]({os.path.basename(paths['confusion_matrix_png'])})",
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(_finite(metrics["config"]), indent=2, sort_keys=True, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)

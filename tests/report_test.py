"""Evaluation metrics (NumPy) and report files for a real (small) image classifier."""

import json
import math
import os

import keras
import matplotlib.image
import numpy as np
import pytest

import tftune
from tftune import data, distribute, report


def test_classification_metrics_match_hand_computed_values():
    labels = [0, 0, 1, 1, 1, 2]
    probabilities = [
        [0.8, 0.1, 0.1],  # 0 -> 0
        [0.3, 0.6, 0.1],  # 0 -> 1
        [0.1, 0.7, 0.2],  # 1 -> 1
        [0.2, 0.5, 0.3],  # 1 -> 1
        [0.5, 0.2, 0.3],  # 1 -> 0
        [0.1, 0.2, 0.7],  # 2 -> 2
    ]
    metrics = report.classification_metrics(labels, probabilities, ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert metrics["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert metrics["per_class"]["b"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3}
    )
    assert metrics["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1})
    assert metrics["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    expected_loss = -np.mean(np.log([0.8, 0.3, 0.7, 0.5, 0.2, 0.7]))
    assert metrics["loss"] == pytest.approx(expected_loss)
    keras_loss = keras.losses.SparseCategoricalCrossentropy()(np.array(labels), np.array(probabilities))
    assert metrics["loss"] == pytest.approx(float(keras_loss), rel=1e-5)
    # Always answering "b" (3 of 6) scores 0.5 accuracy and F1 2/3 on "b" only.
    assert metrics["majority_baseline"] == pytest.approx({"label": "b", "accuracy": 0.5, "macro_f1": (2 / 3) / 3})
    assert metrics["warnings"] == []
    never_predicted = report.classification_metrics([0, 1], [[0.9, 0.1], [0.8, 0.2]], ["x", "y"])
    assert never_predicted["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    with pytest.raises(ValueError, match=r"probabilities must be \[examples, classes\] = \[2, 3\]"):
        report.classification_metrics([0, 1], [[0.9, 0.1], [0.8, 0.2]], ["x", "y", "z"])


@pytest.fixture(scope="module")
def trained_digits(small_resnet_preset):
    keras.utils.set_random_seed(0)
    digits = data.load_mnist_digits()
    subset = digits.subset(np.arange(0, 5000, 25))  # 200 digits, 20 per class
    splits = data.load_image_splits(subset, validation_fraction=0.25)
    prepared = data.image_pipelines(splits, (32, 32), batch_size=25)
    model = tftune.build_image_classifier(small_resnet_preset, 10, image_size=(32, 32), labels=prepared.label_names)
    # Adam 3e-3: 0.64 validation accuracy after 3 epochs (1e-3 reached only 0.28, too close to chance for a floor).
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(prepared.train, validation_data=prepared.validation, epochs=3, verbose=0)
    return model, prepared, history


def test_write_report_files_with_finite_in_range_values(trained_digits, tmp_path):
    model, prepared, history = trained_digits
    config = {"backbone": "small resnet", "epochs": 3, "batch_size": 25, "schedule": [1, 2]}
    result = report.write_report(
        tmp_path / "run",
        model,
        prepared.validation,
        prepared.label_names,
        history=history,
        unfreezing_boundaries=[1, 2],
        unfreezing_stages=[{"epoch": 0, "step": 0, "groups": ["head"], "trainable_params": 650},
                           {"epoch": 0, "step": 5, "groups": ["head", "stage_4"], "trainable_params": 9100}],
        config=config,
        wall_time=12.5,
        examples_per_second=48.0,
        title="digits",
    )
    assert set(result.paths) == {"metrics_json", "report_md", "curves_png", "confusion_matrix_png"}
    assert all(os.path.getsize(path) > 0 for path in result.paths.values())
    with open(result.paths["metrics_json"], encoding="utf-8") as file:
        metrics = json.load(file, parse_constant=lambda constant: pytest.fail(f"non-JSON constant {constant}"))
    assert metrics == result.metrics
    assert metrics["examples"] == prepared.validation_size == 50
    # Trained for real: chance is 0.1 (also the majority baseline: 10 balanced classes); measured 0.64.
    assert metrics["accuracy"] > 0.4 and metrics["macro_f1"] > 0.3
    assert metrics["majority_baseline"]["accuracy"] == pytest.approx(0.1)
    assert math.isfinite(metrics["loss"]) and metrics["loss"] >= 0.0
    assert set(metrics["per_class"]) == set(prepared.label_names)
    for scores in metrics["per_class"].values():
        assert all(0.0 <= scores[key] <= 1.0 for key in ("precision", "recall", "f1")) and scores["support"] == 5
    assert np.asarray(metrics["confusion_matrix"]).sum() == 50
    # Our accuracy / loss agree with Keras' own evaluation of the same data.
    keras_loss, keras_accuracy = model.evaluate(prepared.validation, verbose=0)
    assert metrics["accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)
    assert metrics["loss"] == pytest.approx(keras_loss, rel=1e-4)
    assert [(stage["first_epoch"], stage["last_epoch"]) for stage in metrics["stages"]] == [(0, 0), (1, 1), (2, 2)]
    assert metrics["stages"][2]["history"]["loss"] == [history.history["loss"][2]]
    assert metrics["config"] == config
    assert metrics["wall_time_seconds"] == 12.5 and metrics["examples_per_second"] == 48.0
    markdown = open(result.paths["report_md"], encoding="utf-8").read()
    assert f"| accuracy | {metrics['accuracy']:.4f} |" in markdown
    assert "| majority-class baseline accuracy (always '0') | 0.1000 |" in markdown
    recalls = ", ".join(f"{name} {scores['recall']:.3f}" for name, scores in metrics["per_class"].items())
    assert f"| recall per class | {recalls} |" in markdown
    assert "![confusion matrix](confusion_matrix.png)" in markdown
    assert "| 2 | 3-3 |" in markdown and "## Stages (gradual unfreezing)" in markdown
    assert "| epoch 1, step 1 | head | 650 |\n| epoch 1, step 6 | head, stage_4 | 9,100 |" in markdown
    assert '"backbone": "small resnet"' in markdown
    for key in ("curves_png", "confusion_matrix_png"):
        pixels = matplotlib.image.imread(result.paths[key])
        assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 300
        assert pixels[..., :3].std() > 0.05  # something was drawn


def test_imbalanced_data_warns_when_the_majority_class_is_not_beaten_and_a_class_is_never_found():
    labels = [0] * 13 + [1] * 2
    probabilities = [[0.3, 0.7]] * 4 + [[0.8, 0.2]] * 11  # finds neither rare example, mislabels 4 common ones
    metrics = report.classification_metrics(labels, probabilities, ["ham", "spam"])
    assert metrics["accuracy"] == pytest.approx(9 / 15)
    assert metrics["majority_baseline"]["label"] == "ham"
    assert metrics["majority_baseline"]["accuracy"] == pytest.approx(13 / 15)
    assert metrics["warnings"] == [
        "accuracy 0.600 is not better than always answering the majority class 'ham' (0.867): the model has "
        "learned no more than the class balance. Train longer or at a higher learning rate, or give the rare "
        "classes more examples.",
        "class 'spam' has recall 0.000 (below 0.2): the model finds 0 of its 2 examples.",
    ]
    better = report.classification_metrics(labels, [[0.9, 0.1]] * 13 + [[0.4, 0.6]] * 2, ["ham", "spam"])
    assert better["accuracy"] == 1.0 and better["warnings"] == []


def test_report_md_and_console_show_the_warnings(trained_digits, tmp_path, caplog):
    model, prepared, _ = trained_digits
    # Only 7s: the majority baseline is 1.0, which no model beats.
    sevens = prepared.validation.unbatch().filter(lambda image, label: label == 7).batch(8)
    with caplog.at_level("WARNING", logger="tftune"):
        result = report.write_report(tmp_path, model, sevens, prepared.label_names)
    assert result.metrics["majority_baseline"] == {"label": "7", "accuracy": 1.0, "macro_f1": pytest.approx(0.1)}
    # tftune's warnings only: TensorFlow's own (e.g. a retracing warning, after other tests' predictions)
    # may be there too.
    logged = [record.getMessage() for record in caplog.records
              if record.levelname == "WARNING" and record.name.startswith("tftune")]
    assert logged == [f"Warning: {warning}" for warning in result.metrics["warnings"]]
    assert "not better than always answering the majority class '7' (1.000)" in logged[0]
    markdown = open(result.paths["report_md"], encoding="utf-8").read()
    assert markdown.count("> **Warning:**") == len(logged)
    assert "| majority-class baseline accuracy (always '7') | 1.0000 |" in markdown


def test_report_accepts_history_dicts_and_writes_null_for_non_finite(trained_digits, tmp_path):
    model, prepared, _ = trained_digits
    history = {"loss": [1.0, float("nan")], "accuracy": [0.5, 0.6]}
    result = report.write_report(tmp_path, model, prepared.validation, history=history)
    assert result.metrics["history"]["loss"] == [1.0, None]
    assert result.metrics["label_names"] == model.labels and len(result.metrics["stages"]) == 1
    assert json.loads(open(result.paths["metrics_json"], encoding="utf-8").read())["history"]["loss"][1] is None
    assert "## Stages" not in open(result.paths["report_md"], encoding="utf-8").read()  # one stage: no table
    with pytest.raises(ValueError, match=r"unfreezing_boundaries must be epochs strictly between 0 and the 2"):
        report.write_report(tmp_path, model, prepared.validation, history=history, unfreezing_boundaries=[2])
    with pytest.raises(
        ValueError, match=r"unfreezing_stages must be GradualUnfreezing.stages_entered: .* \{'epoch': 1\}"
    ):
        report.write_report(tmp_path, model, prepared.validation, unfreezing_stages=[{"epoch": 1}])
    with pytest.raises(ValueError, match="history must be a keras History"):
        report.write_report(tmp_path, model, prepared.validation, history=[1.0, 2.0])


def test_evaluation_under_mirrored_strategy_counts_every_example_once(trained_digits):
    model, prepared, _ = trained_digits
    strategy = distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = type(model).from_config(model.get_config())
    mirrored.set_weights(model.get_weights())
    single = report.evaluate_classifier(model, prepared.validation)
    replicated = report.evaluate_classifier(mirrored, prepared.validation)
    assert replicated["examples"] == single["examples"] == 50
    assert replicated["confusion_matrix"] == single["confusion_matrix"]
    assert replicated["loss"] == pytest.approx(single["loss"], rel=1e-5)

"""The recipes in recipes/ run end to end: tiny real runs of each script, checked through what they leave behind."""

import importlib.util
import json
import os

import keras
import pytest
import tensorflow as tf

import tftune

RECIPES = os.path.join(os.path.dirname(__file__), os.pardir, "recipes")
TINY_TEXT_RUN = ["--max-examples", "64", "--sequence-length", "16", "--epochs", "2"]


def _run_recipe(script: str, argv: list[str], capsys) -> str:
    """Run `recipes/<script>.py`'s main(argv) in this process; return what it printed."""
    spec = importlib.util.spec_from_file_location(script, os.path.join(RECIPES, f"{script}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)
    return capsys.readouterr().out


def _check_run(tmp_path, printed: str, name: str, dataset: str, predict_input: str):
    """model.keras reloads, the export is published as version 1, metrics.json is of that model; the commands."""
    output_dir, export_dir = tmp_path / "run", tmp_path / "saved_models"
    model_path = output_dir / "model.keras"
    assert f"tftune evaluate {model_path} {dataset} --output-dir {output_dir / 'evaluation'}\n" in printed
    assert f"tftune export {model_path} --base-dir {export_dir} --name {name}\n" in printed
    assert f"tftune predict {export_dir / name} {predict_input}\n" in printed
    assert os.listdir(export_dir / name) == ["1"]
    assert (export_dir / name / "1" / "saved_model.pb").is_file()
    for report_file in ("report.md", "curves.png", "confusion_matrix.png"):
        assert (output_dir / report_file).stat().st_size > 0, report_file
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == dataset and metrics["config"]["model_name"] == name
    return keras.models.load_model(model_path), metrics, export_dir / name


def _check_served_like_keras(model, saved_model_dir, inputs, model_inputs):
    """The exported SavedModel gives the reloaded Keras model's labels and probabilities."""
    expected = model.predict(model_inputs, verbose=0)
    served = tftune.predict_from_saved_model(saved_model_dir, inputs)
    assert [prediction.label for prediction in served] == [model.labels[index] for index in expected.argmax(axis=1)]
    assert [prediction.probability for prediction in served] == pytest.approx(expected.max(axis=1), abs=1e-4)


@pytest.mark.slow
def test_bert_recipes_train_save_report_and_export(tiny_bert_preset, tmp_path, capsys):
    """The 3-class script runs the BERT recipe (bert_text_classification.main) with --variant three_class."""
    printed = _run_recipe(
        "bert_three_class_text_classification",
        [*TINY_TEXT_RUN, "--backbone", tiny_bert_preset, "--output-dir", str(tmp_path / "run"),
         "--export-dir", str(tmp_path / "saved_models")],
        capsys,
    )
    name = "rotten_tomatoes_3class_text"
    model, metrics, saved_model_dir = _check_run(tmp_path, printed, name, "rotten_tomatoes_3class", "'a fine film'")
    assert isinstance(model, tftune.TextClassifier) and model.labels == ["rotten", "fresh", "plot"]
    assert sorted(metrics["per_class"]) == sorted(model.labels) and metrics["examples"] == 6
    assert metrics["config"]["backbone"] == tiny_bert_preset and metrics["config"]["variant"] == "three_class"
    assert model.sequence_length == 16 and metrics["config"]["unfreezing_schedule"] == "head_first"
    # precision "auto" trains text in bfloat16 on a CPU with bfloat16 instructions (this one and CI's have AMX);
    # what the run saves, evaluates and exports computes in float32.
    bfloat16_cpu = tftune.precision.cpu_bfloat16_flags(tftune.precision.read_cpuinfo())
    assert metrics["precision"].startswith("mixed_bfloat16 (auto: a text model" if bfloat16_cpu else "float32 (auto")
    assert model.dtype_policy.name == "float32"
    # "head_first": the head alone for half of the first epoch, so every weight trains by the end of each epoch.
    assert metrics["history"]["trainable_params"] == [model.count_params()] * 2
    # metrics.json describes the saved model: re-evaluating it on the same validation split gives the same numbers.
    splits = tftune.load_text_splits(tftune.load_rotten_tomatoes("three_class"), max_examples=64, verbose=False)
    again = tftune.evaluate_classifier(model, tftune.text_pipelines(splits, model.preprocessor, 16).validation)
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    assert again["loss"] == pytest.approx(metrics["loss"], rel=1e-4)
    texts = ["a fine, moving film", "a detective hunts a killer in 1920s paris"]
    _check_served_like_keras(model, saved_model_dir, texts, model.preprocessor(texts))


@pytest.mark.slow
def test_resnet_recipe_learns_digits_saves_reports_and_exports(small_resnet_preset, tmp_path, capsys):
    printed = _run_recipe(
        "resnet_image_classification",
        ["--backbone", small_resnet_preset, "--max-examples", "500", "--epochs", "2", "--output-dir",
         str(tmp_path / "run"), "--export-dir", str(tmp_path / "saved_models"), "--model-name", "digits"],
        capsys,
    )
    digit_path = tmp_path / "run" / "digit.png"
    model, metrics, saved_model_dir = _check_run(tmp_path, printed, "digits", "mnist_digits", str(digit_path))
    assert isinstance(model, tftune.ImageClassifier) and model.image_size == (32, 32)
    assert model.labels == [str(digit) for digit in range(10)] and metrics["examples"] == 51
    # Random init, 2 epochs on 449 digits: well above the 0.1 of guessing (0.53 when written), and so is the reload.
    assert metrics["accuracy"] > 0.3
    splits = tftune.load_image_splits(tftune.load_mnist_digits(), max_examples=500, verbose=False)
    again = tftune.evaluate_classifier(model, tftune.image_pipelines(splits, model.image_size, 32).validation)
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    digit = tf.cast(tf.io.decode_png(tf.io.read_file(str(digit_path)), channels=3), "float32")
    # The pixels training gives the model: resized like its Resizing layer, rounded to whole values.
    as_trained = tftune.families.resize_image(digit, model.image_size, model.resizing)
    _check_served_like_keras(model, saved_model_dir, [str(digit_path)], as_trained[None])

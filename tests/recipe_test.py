import importlib.util
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import yaml

import tftune
from tftune import cli
from tftune.recipe import RecipeConfig, parse_recipe_args, unfreezing_schedule

RECIPES = os.path.join(os.path.dirname(__file__), os.pardir, "recipes")


def _recipe(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(RECIPES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_file_and_flags_give_the_same_config(tmp_path):
    options = {"epochs": 2, "batch_size": 8, "schedule": "0:0,1:all", "layer_decay": 0.5, "image_size": [48, 40]}
    yaml_path, json_path = tmp_path / "run.yaml", tmp_path / "run.json"
    yaml_path.write_text(yaml.safe_dump({"task": "image", **options}))
    json_path.write_text(json.dumps({"task": "image", **options}))
    flags = ["--epochs", "2", "--batch-size", "8", "--schedule", "0:0,1:all", "--layer-decay", "0.5", "--image-size", "48", "40"]
    from_flags = parse_recipe_args("image", flags)
    assert parse_recipe_args("image", ["--config", str(yaml_path)]) == from_flags
    assert parse_recipe_args(None, ["--config", str(json_path)]) == from_flags
    assert from_flags.image_size == (48, 40) and from_flags.dataset == "mnist_digits"
    # Flags override the file.
    assert parse_recipe_args("image", ["--config", str(yaml_path), "--epochs", "5"]).epochs == 5
    # An explicit None (flag `none`, YAML null) overrides a task default instead of being dropped.
    null_path = tmp_path / "null.yaml"
    null_path.write_text("weights: null\nmax_examples: null\n")
    from_null = parse_recipe_args("text", ["--config", str(null_path)])
    assert from_null.weights is None and from_null.max_examples is None
    assert parse_recipe_args("text", ["--weights", "none"]).weights is None


@pytest.mark.parametrize(
    "options, message",
    [
        ({"schedule": "sometimes"}, "schedule must be one of .* got 'sometimes'"),
        ({"epochs": 0}, "epochs must be a positive integer; got 0"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer; got 2.5"),
        ({"epochs": 1, "schedule": "gradual"}, "needs epochs >= 2"),
        ({"learning_rate": 3.0}, r"learning_rate must be in \(0, 1\); got 3.0"),
        ({"colour": "blue"}, r"Unknown recipe options \['colour'\]"),
    ],
)
def test_bad_options_are_rejected_before_any_work(options, message):
    with pytest.raises(ValueError, match=message):
        RecipeConfig.for_task("text", **options)


def test_config_file_with_an_unknown_option(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: text\nepoch: 3\n")
    with pytest.raises(ValueError, match=r"Unknown recipe options \['epoch'\]"):
        parse_recipe_args(None, ["--config", str(path)])


def test_unfreezing_schedules():
    assert unfreezing_schedule("gradual", epochs=3, backbone_groups=8) == {0: 0, 1: 4, 2: "all"}
    assert unfreezing_schedule("head_only", epochs=3, backbone_groups=8) == {0: 0}
    assert dict(unfreezing_schedule("0:0,2:3,4:all", epochs=5, backbone_groups=8)) == {0: 0, 2: 3, 4: "all"}
    assert unfreezing_schedule("ulmfit", epochs=3, backbone_groups=8) is None
    # "auto" trains everything when the backbone has no pretrained weights.
    assert RecipeConfig.for_task("image")._resolved_schedule() == "all"
    assert RecipeConfig.for_task("text")._resolved_schedule() == "gradual"


def _assert_run_outputs(output_dir, export_dir, model_name, label_names):
    for name in ("metrics.json", "report.md", "curves.png", "confusion_matrix.png"):
        assert os.path.getsize(os.path.join(output_dir, name)) > 0, name
    metrics = json.loads(open(os.path.join(output_dir, "metrics.json")).read())
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert math.isfinite(metrics["loss"]) and metrics["loss"] > 0
    assert sorted(metrics["per_class"]) == sorted(label_names)
    assert os.listdir(os.path.join(export_dir, model_name)) == ["1"]
    return metrics


def test_bert_recipe_end_to_end(tmp_path):
    output_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    _recipe("bert_three_class_text_classification").main(
        ["--max-examples", "60", "--sequence-length", "16", "--epochs", "2", "--batch-size", "8",
         "--output-dir", output_dir, "--export-dir", export_dir, "--model-name", "reviews"]
    )
    metrics = _assert_run_outputs(output_dir, export_dir, "reviews", ["rotten", "fresh", "plot"])
    assert metrics["config"]["dataset"] == "rotten_tomatoes_3class"
    predictions = tftune.predict_from_saved_model(os.path.join(export_dir, "reviews"), ["a fine film", "dull"])
    assert [prediction.label in ("rotten", "fresh", "plot") for prediction in predictions] == [True, True]
    assert all(0 < prediction.probability <= 1 for prediction in predictions)


def test_resnet_recipe_end_to_end_through_the_cli(small_resnet_preset, tmp_path):
    output_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    config_path = tmp_path / "digits.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {"task": "image", "backbone": small_resnet_preset, "max_examples": 200, "epochs": 2, "batch_size": 16,
             "schedule": "0:2,1:all", "augmentation": ["flip"], "output_dir": output_dir, "export_dir": export_dir,
             "model_name": "digits"}
        )
    )
    assert cli.main(["train", "--config", str(config_path)]) == 0
    _assert_run_outputs(output_dir, export_dir, "digits", [str(digit) for digit in range(10)])
    digit = tftune.load_mnist_digits().images[0].astype("uint8")
    image_path = tmp_path / "digit.png"
    image_path.write_bytes(tf.io.encode_png(digit).numpy())
    (prediction,) = tftune.predict_from_saved_model(os.path.join(export_dir, "digits"), [str(image_path)])
    assert prediction.label in [str(d) for d in range(10)] and np.isfinite(prediction.probability)

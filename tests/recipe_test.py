"""The recipe engine: RecipeConfig checks, unfreezing schedules, next commands, and real end-to-end runs."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

import tftune
from tftune import cli
from tftune.recipe import RecipeConfig, next_commands, run_recipe, unfreezing_schedule


@pytest.mark.parametrize(
    "options, message",
    [
        ({"schedule": "sometimes"}, "schedule must be one of .* got 'sometimes'"),
        ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1; got 2.5"),
        ({"epochs": 1, "schedule": "gradual"}, "needs epochs >= 2"),
        ({"learning_rate": 3.0}, r"learning_rate must be a number in \(0, 1\); got 3.0"),
        ({"image_size": (16, 16)}, r"image_size must be \(height, width\), two integers >= 32"),
        ({"augmentation": ["flip", "blur"]}, "augmentation must be one of 'flip', 'crop', 'rotation'; got 'blur'"),
        ({"strategy": "cluster"}, "strategy must be one of 'auto', 'cpu'"),
        ({"colour": "blue"}, r"Unknown recipe options \['colour'\]"),
    ],
)
def test_bad_options_are_rejected_before_any_work(options, message):
    with pytest.raises(ValueError, match=message):
        RecipeConfig.for_task("text", **options)


def test_every_bad_option_is_listed_in_one_error():
    with pytest.raises(ValueError) as error:
        RecipeConfig.for_task(
            "text", learning_rate=5, validation_fraction=1.5, sequence_length=0, precision="float8", seed=-1
        )
    lines = str(error.value).splitlines()
    assert lines[0] == "5 invalid options:"
    assert [line.split()[1] for line in lines[1:]] == [
        "learning_rate", "validation_fraction", "sequence_length", "precision", "seed"
    ]
    with pytest.raises(ValueError, match="task must be one of 'text', 'image'; got 'audio'"):
        RecipeConfig.for_task("audio")


def test_unfreezing_schedules():
    assert unfreezing_schedule("gradual", epochs=3, backbone_groups=8) == {0: 0, 1: 4, 2: "all"}
    assert unfreezing_schedule("head_only", epochs=3, backbone_groups=8) == {0: 0}
    assert dict(unfreezing_schedule("0:0,2:3,4:all", epochs=5, backbone_groups=8)) == {0: 0, 2: 3, 4: "all"}
    assert unfreezing_schedule("ulmfit", epochs=3, backbone_groups=8) is None
    # "auto" trains everything when the backbone has no pretrained weights.
    assert RecipeConfig.for_task("image")._resolved_schedule() == "all"
    assert RecipeConfig.for_task("text")._resolved_schedule() == "gradual"


def test_next_commands_name_held_out_data_of_the_training_kind(tmp_path):
    config = RecipeConfig.for_task("text", dataset="data/sms.CSV", output_dir="runs/sms", model_name="sms")
    assert next_commands(config, "runs/sms/model.keras", "saved_models/sms/1") == (
        "tftune evaluate runs/sms/model.keras test.csv --output-dir runs/sms/evaluation",
        "tftune export runs/sms/model.keras --base-dir saved_models --name sms",
        "tftune predict saved_models/sms 'a fine film'",
    )
    photos = tmp_path / "my photos"
    photos.mkdir()
    config = RecipeConfig.for_task("image", dataset=str(photos), output_dir=str(tmp_path / "run"))
    evaluate, export, predict = next_commands(config, str(tmp_path / "run" / "model.keras"), "exports/pets/3")
    assert evaluate.split()[3] == "test/" and export.endswith("--base-dir exports --name pets")
    assert predict == "tftune predict exports/pets image.jpg"
    config = RecipeConfig.for_task("text", dataset="glue/sst2", data_dir="/data/tfds")
    assert next_commands(config, "m.keras", "saved_models/x/1")[0] == (
        "tftune evaluate m.keras glue/sst2 --data-dir /data/tfds --output-dir runs/glue_sst2_text/evaluation"
    )


def _assert_run_outputs(output_dir, export_dir, model_name, label_names):
    for name in ("metrics.json", "report.md", "curves.png", "confusion_matrix.png", "history.csv"):
        assert os.path.getsize(os.path.join(output_dir, name)) > 0, name
    metrics = json.loads(open(os.path.join(output_dir, "metrics.json")).read())
    assert math.isfinite(metrics["loss"]) and metrics["loss"] > 0
    assert sorted(metrics["per_class"]) == sorted(label_names)
    assert os.listdir(os.path.join(export_dir, model_name)) == ["1"]
    model = keras.models.load_model(os.path.join(output_dir, "model.keras"))
    assert model.labels == list(label_names)
    return metrics, model


@pytest.mark.slow
def test_text_recipe_end_to_end_learns_three_classes(tmp_path):
    output_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    config = cli.parse_recipe_args(
        "text",
        ["--dataset", "rotten_tomatoes_3class", "--max-examples", "300", "--sequence-length", "16", "--epochs", "2",
         "--batch-size", "8", "--output-dir", output_dir, "--export-dir", export_dir, "--model-name", "reviews"],
    )
    result = run_recipe(config)
    metrics, model = _assert_run_outputs(output_dir, export_dir, "reviews", ["rotten", "fresh", "plot"])
    assert metrics["config"]["dataset"] == "rotten_tomatoes_3class"
    assert result.metrics["accuracy"] == metrics["accuracy"]
    # Above the majority class (the demo data is imbalanced: 'fresh' is 53%).
    assert metrics["accuracy"] > metrics["majority_baseline"]["accuracy"]
    assert [stage["first_epoch"] for stage in metrics["stages"]] == [0, 1]  # "gradual" over 2 epochs
    # The saved model is the final one: it predicts what the trained model predicts.
    texts = ["a fine film", "dull and long", "a man travels to paris"]
    np.testing.assert_allclose(
        model.predict(model.preprocessor(texts), verbose=0),
        result.model.predict(result.model.preprocessor(texts), verbose=0),
        atol=1e-6,
    )
    predictions = tftune.predict_from_saved_model(result.export.path, texts)
    assert [prediction.label in ("rotten", "fresh", "plot") for prediction in predictions] == [True] * 3


@pytest.mark.slow
def test_resnet_recipe_end_to_end_through_the_cli(small_resnet_preset, tmp_path):
    output_dir, export_dir = str(tmp_path / "run"), str(tmp_path / "saved_models")
    config_path = tmp_path / "digits.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {"task": "image", "backbone": small_resnet_preset, "max_examples": 300, "epochs": 2, "batch_size": 16,
             "schedule": "0:2,1:all", "augmentation": ["flip"], "output_dir": output_dir, "export_dir": export_dir,
             "model_name": "digits"}
        )
    )
    assert cli.main(["train", "--config", str(config_path)]) == 0
    metrics, _ = _assert_run_outputs(output_dir, export_dir, "digits", [str(digit) for digit in range(10)])
    assert metrics["accuracy"] > 0.2  # ten classes: chance is 0.1
    digit = tftune.load_mnist_digits().images[0].astype("uint8")
    image_path = tmp_path / "digit.png"
    image_path.write_bytes(tf.io.encode_png(digit).numpy())
    (prediction,) = tftune.predict_from_saved_model(os.path.join(export_dir, "digits"), [str(image_path)])
    assert prediction.label in [str(d) for d in range(10)] and np.isfinite(prediction.probability)

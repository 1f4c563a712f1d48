"""The recipe engine: RecipeConfig checks, unfreezing schedules, next commands, and real end-to-end runs."""

import keras
import numpy as np
import pytest

import tftune
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
    assert unfreezing_schedule("head_first") == "head_first"
    assert unfreezing_schedule("gradual") == "spread"
    assert unfreezing_schedule("head_only") == {0: 0}
    assert dict(unfreezing_schedule("0:0,2:3,4:all")) == {0: 0, 2: 3, 4: "all"}
    assert unfreezing_schedule("ulmfit") is None
    # "auto": what benchmarks/quality.py measured best at equal epochs. Pretrained weights, BERT or ResNet: the
    # head alone for half of the first epoch, then every group; without pretrained weights, every group from the start.
    assert RecipeConfig.for_task("text").resolved_schedule() == "head_first"
    assert RecipeConfig.for_task("text", weights=None).resolved_schedule() == "all"
    assert RecipeConfig.for_task("image").resolved_schedule() == "all"
    assert RecipeConfig.for_task("text", schedule="gradual").resolved_schedule() == "gradual"
    # A pretrained ResNet: head first too, and BatchNorm in inference mode.
    pretrained_image = RecipeConfig.for_task("image", weights="pretrained")
    assert pretrained_image.resolved_schedule() == "head_first" and pretrained_image.resolved_keep_batchnorm_frozen()
    # The callback a recipe trains with carries both.
    unfreezing = pretrained_image.unfreezing()
    assert unfreezing.get_config()["schedule"] == "head_first" and unfreezing.keep_batchnorm_frozen
    random_image = RecipeConfig.for_task("image").unfreezing()
    assert random_image.get_config()["schedule"] == [[0, "all"]] and not random_image.keep_batchnorm_frozen


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


@pytest.mark.slow
def test_gradual_recipe_run_spreads_the_groups_and_writes_every_file(small_resnet_preset, tmp_path):
    config = RecipeConfig.for_task(
        "image", backbone=small_resnet_preset, max_examples=40, epochs=3, batch_size=8, schedule="gradual",
        output_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "saved_models"), model_name="digits",
    )
    result = run_recipe(config)
    # The small ResNet has 5 backbone groups (stem, 4 stages): gradual over 3 epochs is head, 2 groups, all.
    assert result.metrics["config"]["unfreezing_schedule"] == "spread"
    trainable = result.metrics["history"]["trainable_params"]
    assert trainable[0] < trainable[1] < trainable[2]
    assert [stage["first_epoch"] for stage in result.metrics["stages"]] == [0, 1, 2]
    assert [stage["trainable_params"] for stage in result.metrics["unfreezing_stages"]] == trainable
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert f"| epoch 1, step 1 | head | {int(trainable[0]):,} |" in markdown
    assert f"| epoch 3, step 1 | head, stage_4, stage_3, stage_2, stage_1, stem | {int(trainable[2]):,} |" in markdown
    for name in ("metrics.json", "report.md", "curves.png", "confusion_matrix.png", "history.csv", "model.keras"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    assert result.model_path == str(tmp_path / "run" / "model.keras")
    # model.keras holds the final weights: the returned model's.
    saved = keras.models.load_model(result.model_path)
    images = tftune.load_mnist_digits().images[:4]
    np.testing.assert_allclose(saved.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-6)
    assert result.export.path == str(tmp_path / "saved_models" / "digits" / "1")
    assert result.next_commands[-1] == f"tftune predict {tmp_path / 'saved_models' / 'digits'} image.jpg"

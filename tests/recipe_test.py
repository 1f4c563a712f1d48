"""The recipe engine: RecipeConfig checks, unfreezing schedules, next commands, and real end-to-end runs."""

import logging

import keras
import numpy as np
import pytest

import tftune
from tftune import classifiers, recipe, unfreeze
from tftune.recipe import RecipeConfig, check_steps, next_commands, run_recipe, unfreezing_schedule


@pytest.mark.parametrize(
    "options, message",
    [
        ({"schedule": "sometimes"}, "schedule must be one of .* got 'sometimes'"),
        ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1; got 2.5"),
        ({"epochs": 1, "schedule": "spread"}, "needs epochs >= 2"),
        ({"schedule": "gradual"}, "schedule must be one of auto, head_first, spread, head_only, all or"),
        ({"epochs": 3, "schedule": "0:0,3:all"}, r"starts a stage at epoch 3, but epochs=3 trains epochs 0..2"),
        ({"layer_decay": 0}, r"layer_decay must be in \(0, 1\]"),
        ({"seed": 2**40}, "seed must be an integer in \\[0, 4294967295\\]; got 1099511627776"),
        ({"max_examples": 3}, "max_examples must be an integer >= 4; got 3"),
        ({"image_size": (4096, 4096)}, r"two integers in \[32, 2048\]"),
        ({"sequence_length": 100000}, r"sequence_length must be an integer in \[1, 8192\]"),
        ({"encoding": "klingon"}, "encoding must be a Python codec name"),
        ({"model_name": "my model/v2"}, "model_name 'my model/v2' is not a valid model name"),
        ({"learning_rate": 3.0}, r"learning_rate must be a number in \(0, 1\); got 3.0"),
        ({"image_size": (16, 16)}, r"image_size must be \(height, width\), two integers in \[32, 2048\]"),
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


def test_one_schedule_vocabulary():
    # The recipe names are GradualUnfreezing's names ("head_first", "spread") and its fixed schedules.
    assert set(recipe.SCHEDULES) == {"auto", unfreeze.HEAD_FIRST, unfreeze.SPREAD, "head_only", unfreeze.ALL}
    for name in (unfreeze.HEAD_FIRST, unfreeze.SPREAD):
        assert unfreezing_schedule(name) == name
        assert unfreeze.GradualUnfreezing(unfreezing_schedule(name)).get_config()["schedule"] == name
    assert unfreezing_schedule("head_only") == {0: 0}
    assert unfreezing_schedule("all") == {0: "all"}
    assert dict(unfreezing_schedule("0:0,2:3,4:all")) == {0: 0, 2: 3, 4: "all"}
    # "auto" is decided in one function; the CLI help prints from it.
    assert recipe.auto_schedule("pretrained") == "head_first" and recipe.auto_schedule(None) == "all"
    assert recipe.schedule_help().startswith("auto: head_first with pretrained weights, all without; head_first: ")
    assert all(f"{name}: " in recipe.schedule_help() for name in recipe.SCHEDULES)
    # "auto": what benchmarks/quality.py measured best at equal epochs. Pretrained weights, BERT or ResNet: the
    # head alone for half of the first epoch, then every group; without pretrained weights, every group from the start.
    assert RecipeConfig.for_task("text").resolved_schedule() == "head_first"
    assert RecipeConfig.for_task("text", weights=None).resolved_schedule() == "all"
    assert RecipeConfig.for_task("image").resolved_schedule() == "all"
    assert RecipeConfig.for_task("text", schedule="spread").resolved_schedule() == "spread"
    # A pretrained ResNet: head first too, and BatchNorm in inference mode.
    pretrained_image = RecipeConfig.for_task("image", weights="pretrained")
    assert pretrained_image.resolved_schedule() == "head_first" and pretrained_image.resolved_keep_batchnorm_frozen()
    # The callback a recipe trains with carries both.
    unfreezing = pretrained_image.unfreezing()
    assert unfreezing.get_config()["schedule"] == "head_first" and unfreezing.keep_batchnorm_frozen
    random_image = RecipeConfig.for_task("image").unfreezing()
    assert random_image.get_config()["schedule"] == [[0, "all"]] and not random_image.keep_batchnorm_frozen


def test_options_of_the_other_task_are_refused_naming_option_and_task():
    with pytest.raises(ValueError) as error:
        RecipeConfig.for_task("text", image_size=(64, 64), augmentation=("flip",))
    assert str(error.value).splitlines()[1:] == [
        "  - augmentation applies to image tasks only, and the task is 'text': remove it.",
        "  - image_size applies to image tasks only, and the task is 'text': remove it.",
    ]
    with pytest.raises(ValueError) as error:
        RecipeConfig.for_task("image", sequence_length=32, pooling="mean", encoding="latin-1")
    assert [line.split()[1] for line in str(error.value).splitlines()[1:]] == ["encoding", "pooling", "sequence_length"]
    assert "applies to text tasks only, and the task is 'image'" in str(error.value)
    # The defaults of the other task are not "given": a plain config of either task passes.
    RecipeConfig.for_task("image")
    RecipeConfig.for_task("text")


def test_weights_and_backbone_files_are_checked_before_any_work(tmp_path):
    not_weights = tmp_path / "notes.weights.h5"
    not_weights.write_text("not an HDF5 file")
    with pytest.raises(ValueError, match=r"weights '.*notes.weights.h5' is not a Keras .weights.h5 file"):
        RecipeConfig.for_task("image", weights=str(not_weights))
    with pytest.raises(ValueError, match=r"weights must be 'pretrained', none .* got '.*missing.weights.h5'\."):
        RecipeConfig.for_task("image", weights=str(tmp_path / "missing.weights.h5"))
    real = tmp_path / "real.weights.h5"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save_weights(str(real))
    assert RecipeConfig.for_task("image", weights=str(real)).weights == str(real)
    backbone = tmp_path / "bert"
    backbone.mkdir()
    (backbone / "config.json").write_text('{"hidden_size": 384,\n "num_layers": }')
    with pytest.raises(ValueError) as error:
        RecipeConfig.for_task("text", backbone=str(backbone))
    assert str(error.value) == (
        f"backbone {str(backbone)!r}: its config.json is not valid JSON (line 2, column 16: Expecting value). "
        f"Fix or re-download {str(backbone / 'config.json')!r}."
    )


def test_output_paths_and_the_model_name_are_checked_before_any_work(tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    with pytest.raises(ValueError) as error:
        RecipeConfig.for_task(
            "text", output_dir=str(a_file), export_dir=str(a_file / "exports"), model_name="my model/v2"
        )
    assert str(error.value).splitlines()[1:] == [
        "  - model_name 'my model/v2' is not a valid model name: use letters, digits, '_', '-' and '.', starting "
        "with a letter or digit, without '..' (for example 'reviews').",
        f"  - output_dir {str(a_file)!r} is a file; pass a directory (a new or an existing one).",
        f"  - export_dir {str(a_file / 'exports')!r} cannot be created: {str(a_file)!r} is a file; pass a directory "
        f"(a new or an existing one).",
    ]
    exports = tmp_path / "exports"
    (exports).mkdir()
    (exports / "reviews").write_text("")
    with pytest.raises(ValueError, match=r"export_dir \+ model_name '.*reviews' is a file"):
        RecipeConfig.for_task("text", export_dir=str(exports), model_name="reviews")
    # A dataset given by a path names the model after its file: a valid name, whatever the path.
    config = RecipeConfig.for_task("text", dataset="/abs/path/My Reviews (2024).csv", output_dir=str(tmp_path / "r"))
    assert config.resolved_model_name() == "My_Reviews_2024_text"
    assert RecipeConfig.for_task("image", dataset=str(tmp_path) + "/").resolved_model_name() == f"{tmp_path.name}_image"
    assert RecipeConfig.for_task("text", dataset="glue/sst2").resolved_model_name() == "glue_sst2_text"


def test_a_schedule_the_steps_cannot_reach_is_refused_with_the_numbers(caplog):
    one_epoch = RecipeConfig.for_task("text", epochs=1)
    with pytest.raises(ValueError) as error:
        check_steps(one_epoch, train_size=20, global_batch=32)
    assert str(error.value) == (
        "schedule 'head_first' unfreezes the backbone after step 1, but 1 epoch(s) of 20 training examples at a "
        "global batch of 32 are 1 step(s): the backbone would never train. Lower batch_size (to at most 10), raise "
        "epochs, or use schedule 'all' or 'head_only'."
    )
    check_steps(one_epoch, train_size=20, global_batch=10)  # 2 steps: the backbone trains from step 1
    with caplog.at_level(logging.WARNING, logger="tftune"):
        check_steps(RecipeConfig.for_task("text", epochs=2), train_size=20, global_batch=32)
    assert "The global batch (32) is larger than the 20 training examples: each epoch is one step of 20." in (
        caplog.text
    )
    check_steps(RecipeConfig.for_task("text", epochs=1, schedule="all"), train_size=20, global_batch=32)


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
        "image", backbone=small_resnet_preset, max_examples=40, epochs=3, batch_size=8, schedule="spread",
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


def test_the_learning_rate_is_the_given_one_else_loras_else_the_tasks():
    assert RecipeConfig.for_task("text").resolved_learning_rate() == 5e-5
    assert RecipeConfig.for_task("image").resolved_learning_rate() == 1e-3
    assert RecipeConfig.for_task("text", lora_rank=8).resolved_learning_rate() == tftune.lora.LEARNING_RATE
    assert RecipeConfig.for_task("image", lora_rank=8, learning_rate=1e-4).resolved_learning_rate() == 1e-4
    with pytest.raises(ValueError, match=r"lora_alpha=16 needs lora_rank too"):
        RecipeConfig.for_task("text", lora_alpha=16)
    with pytest.raises(ValueError, match=r"lora_rank must be"):
        RecipeConfig.for_task("text", lora_rank=0)


def test_batchnorm_stays_frozen_with_pretrained_weights_of_any_task():
    assert RecipeConfig.for_task("text").resolved_keep_batchnorm_frozen()
    assert RecipeConfig.for_task("image", weights="pretrained").resolved_keep_batchnorm_frozen()
    assert not RecipeConfig.for_task("image").resolved_keep_batchnorm_frozen()  # random init: statistics train


@pytest.mark.slow
def test_lora_recipe_writes_the_adapters_and_records_rank_alpha_and_rate(tiny_bert_preset, tmp_path, caplog):
    config = RecipeConfig.for_task(
        "text", backbone=tiny_bert_preset, max_examples=40, epochs=1, sequence_length=8, schedule="all",
        lora_rank=2, lora_alpha=4, output_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "saved_models"),
        precision="float32",  # the model.keras (float32) must equal the trained model within 1e-5
    )
    with caplog.at_level(logging.INFO, logger="tftune"):
        result = run_recipe(config)
    adapters = tmp_path / "run" / recipe.ADAPTERS_FILE
    assert f"LoRA adapters: {adapters}" in caplog.text
    recorded = result.metrics["config"]
    assert (recorded["lora_rank"], recorded["lora_alpha"], recorded["learning_rate"]) == (2, 4, 2e-3)
    # The adapters file (and the head) turn a fresh model on the same pretrained backbone into the trained one.
    fresh = recipe.model_spec(config, result.model.labels).build()
    head = classifiers.HEAD_LAYER
    fresh.get_layer(head).set_weights(result.model.get_layer(head).get_weights())
    tftune.load_adapters(fresh, str(adapters))
    # model.keras holds the adapters merged into the kernels: the same function.
    tokens = result.model.preprocessor(["a fine film"])
    merged = keras.models.load_model(result.model_path)
    np.testing.assert_allclose(merged.predict(tokens, verbose=0), result.model.predict(tokens, verbose=0), atol=1e-5)
    np.testing.assert_allclose(fresh.predict(tokens, verbose=0), result.model.predict(tokens, verbose=0), atol=1e-5)


def test_representative_data_of_a_demo_set_is_the_part_a_recipe_trains_on(small_resnet_preset):
    splits = recipe.load_splits(RecipeConfig.for_task("image"))
    model = tftune.build_image_classifier(small_resnet_preset, 10, image_size=(32, 32), labels=splits.label_names)
    calibration = np.concatenate([images for images, _ in tftune.representative_data(model, "mnist_digits")])
    assert len(calibration) == splits.train_size
    held_out = recipe.prepared_data(RecipeConfig.for_task("image"), model, splits).validation
    held_out_images = {image.tobytes() for images, _ in held_out for image in images.numpy()}
    assert len(held_out_images) > 0.9 * splits.validation_size
    assert not any(image.tobytes() in held_out_images for image in calibration)

"""tftune.fit's option groups: each rule checked once when a group is made, and the same rule for the recipe."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune.recipe import RecipeConfig
from tftune.unfreeze.optimizer import group_optimizers


def test_each_group_reports_every_bad_field_at_once_naming_the_group():
    with pytest.raises(ValueError) as error:
        tftune.OptimizerOptions("rmsprop", learning_rate=5, head_learning_rate=0, layer_decay=0, warmup_steps=-1)
    message = str(error.value)
    assert message.startswith("5 invalid options:")
    for expected in (
        "OptimizerOptions.optimizer: tftune supports the optimizers ['adam', 'adamw', 'sgd']",
        "OptimizerOptions.learning_rate must be a number in (0, 1); got 5.",
        "OptimizerOptions.head_learning_rate must be a number in (0, 1); got 0.",
        "OptimizerOptions.layer_decay must be in (0, 1]",
        "OptimizerOptions.warmup_steps must be an integer >= 0; got -1.",
    ):
        assert expected in message
    with pytest.raises(ValueError) as error:
        tftune.DistributionOptions(
            "cluster", tpu="", precision="float8", batch_size=0, batch_size_is_global=1, jit_compile="yes",
            synchronize_batchnorm=None,
        )
    assert str(error.value).startswith("7 invalid options:")
    with pytest.raises(ValueError, match=r"^LoraOptions.rank must be an integer >= 1; got 2.5"):
        tftune.LoraOptions(rank=2.5)


def test_a_keras_optimizer_is_accepted_unless_a_setting_would_act_per_group():
    assert tftune.OptimizerOptions(keras.optimizers.SGD(momentum=0.9)).optimizer.momentum == 0.9
    with pytest.raises(ValueError, match=r"so \['global_clipnorm'\] would act per group"):
        tftune.OptimizerOptions(keras.optimizers.AdamW(global_clipnorm=1.0))


def test_fit_refuses_bad_arguments_before_reading_data_or_building_the_model():
    spec = tftune.ModelSpec("image", "no_such_backbone_folder", 2)  # building it would fail on the backbone

    def train_data(model):
        raise AssertionError("the data was read")

    with pytest.raises(ValueError) as error:
        tftune.fit(spec, train_data, epochs=0, early_stopping_patience=-1, steps_per_epoch=0,
                   class_weight={0: -1.0}, tensorboard="yes", unfreezing={0: "all"})
    assert str(error.value).startswith("6 invalid options:")
    names = ("epochs", "early_stopping_patience", "steps_per_epoch", "class_weight[0]", "tensorboard", "unfreezing")
    for name in names:
        assert f"  - {name} must be" in str(error.value)
    with pytest.raises(ValueError, match=r"^OptimizerOptions.layer_decay must be in \(0, 1\]"):
        tftune.fit(spec, train_data, epochs=1, optimization={"layer_decay": 0})
    with pytest.raises(ValueError, match=r"distribution has no option \['learning_rate'\]; DistributionOptions has"):
        tftune.fit(spec, train_data, epochs=1, distribution={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"optimization must be a tftune.OptimizerOptions or a dict of its fields"):
        tftune.fit(spec, train_data, epochs=1, optimization=1e-3)


def test_the_recipe_checks_its_flat_options_with_the_groups_rules():
    for options, flat, grouped in [
        ({"layer_decay": 0}, "layer_decay", tftune.OptimizerOptions.errors("OptimizerOptions.", layer_decay=0)),
        ({"precision": "float8"}, "precision", tftune.DistributionOptions.errors("", precision="float8")),
        ({"lora_rank": 0}, "lora_rank", tftune.LoraOptions.errors("LoraOptions.", rank=0)),
    ]:
        with pytest.raises(ValueError) as error:
            RecipeConfig.for_task("text", **options)
        # The same sentence as the group's, with the recipe's (and CLI flag's) name.
        expected = grouped[0].replace("OptimizerOptions.", "").replace("LoraOptions.rank", "lora_rank")
        assert str(error.value) == expected and expected.startswith(flat)
    with pytest.raises(ValueError, match=r"^class_weight\['fresh'\] must be a number > 0; got 0"):
        RecipeConfig.for_task("text", class_weight={"fresh": 0})
    config = RecipeConfig.for_task("image", layer_decay=0.5, warmup_steps=3, lora_rank=None)
    assert config.optimizer_options() == tftune.OptimizerOptions(
        learning_rate=1e-3, head_learning_rate=1e-2, layer_decay=0.5, warmup_steps=3
    )
    assert config.lora_options() is None
    assert RecipeConfig.for_task("text", lora_rank=4).lora_options() == tftune.LoraOptions(rank=4)


def test_dict_groups_train_like_the_dataclasses(small_resnet_preset):
    images = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(8) % 2))
    spec = tftune.ModelSpec("image", small_resnet_preset, 2, {"image_size": (32, 32), "weights": None})
    result = tftune.fit(
        spec, data, epochs=1, optimization={"optimizer": "sgd", "learning_rate": 1e-3},
        distribution={"strategy": "cpu", "batch_size": 4}, unfreezing=tftune.GradualUnfreezing({0: 0}, verbose=0),
        verbose=0,
    )
    assert len(result.history["loss"]) == 1 and result.strategy.num_replicas_in_sync == 1
    assert {type(optimizer).__name__ for optimizer in group_optimizers(result.model).values()} == {"SGD"}

import keras
import keras_hub
import numpy as np

from tftune.families import mobilenetv5
from tftune.families.testing import FamilyCase, run_family_test
from tftune.unfreeze import compile_for_unfreezing


def tiny_mobilenetv5(directory: str) -> None:
    keras_hub.models.MobileNetV5Backbone(
        stackwise_block_types=[["er"], ["uir", "mqa"]],
        stackwise_num_blocks=[1, 2],
        stackwise_num_filters=[[8], [16, 16]],
        stackwise_strides=[[2], [2, 1]],
        stackwise_act_layers=[["relu"], ["relu", "relu"]],
        stackwise_exp_ratios=[[2.0], [2.0, 2.0]],
        stackwise_se_ratios=[[0.0], [0.0, 0.0]],
        stackwise_dw_kernel_sizes=[[0], [3, 3]],
        stackwise_dw_start_kernel_sizes=[[0], [3, 0]],
        stackwise_dw_end_kernel_sizes=[[0], [0, 0]],
        stackwise_exp_kernel_sizes=[[3], [0, 0]],
        stackwise_pw_kernel_sizes=[[1], [0, 0]],
        stackwise_num_heads=[[0], [0, 2]],
        stackwise_key_dims=[[0], [0, 4]],
        stackwise_value_dims=[[0], [0, 4]],
        stackwise_kv_strides=[[0], [0, 1]],
        stackwise_use_cpe=[[False], [False, False]],
        stem_size=8,
        num_features=16,
        msfa_output_resolution=4,
    ).save_to_preset(directory)
    keras_hub.layers.MobileNetV5ImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


# Every block is auto-named; the harness builds the model twice, and the second build's names differ.
CASE = FamilyCase(
    family=mobilenetv5.FAMILY,
    make_preset=tiny_mobilenetv5,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    assert [len(group.layers) for group in model.layer_groups[:-1]] == [1, 1, 3]  # msfa joins the last stage


def test_a_compiled_model_reloads_its_optimizer_state(tmp_path):
    # load_model rebuilds the auto-named blocks under other names: the optimizer's routes and state must follow.
    model = CASE.build(CASE.preset(str(tmp_path / "preset")))
    compile_for_unfreezing(model, "adam", 1e-3)
    for index, variable in enumerate(model.optimizer.variables):  # state that tells every variable apart
        variable.assign(np.full(variable.shape, index + 1, variable.dtype))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [weight.path for weight in loaded.weights] != [weight.path for weight in model.weights]
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=restored.path)

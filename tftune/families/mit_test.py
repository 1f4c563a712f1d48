import keras_hub

from tftune.families import mit
from tftune.families.testing import FamilyCase, run_family_test


def tiny_mit(directory: str) -> None:
    keras_hub.models.MiTBackbone(
        layerwise_depths=[1, 1],
        num_layers=2,
        layerwise_num_heads=[1, 2],
        layerwise_sr_ratios=[2, 1],
        max_drop_path_rate=0.0,
        layerwise_patch_sizes=[3, 3],
        layerwise_strides=[4, 2],
        hidden_dims=[4, 8],
        image_shape=(32, 32, 3),
    ).save_to_preset(directory)
    keras_hub.layers.MiTImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


# The harness builds the model twice: the stages' auto-named LayerNorms get other names the second time.
CASE = FamilyCase(family=mit.FAMILY, make_preset=tiny_mit, groups=("stage_1", "stage_2"))


def test_family(tmp_path):
    model = run_family_test(CASE, tmp_path)
    first_stage = [layer.name for layer in model.layer_groups[0].layers]
    assert first_stage[:2] == ["patch_and_embed_0", "hierarchical_encoder_0_0"]

import keras_hub

from tftune.families import cspnet
from tftune.families.testing import FamilyCase, run_family_test


def tiny_cspnet(directory: str) -> None:
    keras_hub.models.CSPNetBackbone(
        stem_filters=8,
        stem_kernel_size=3,
        stem_strides=4,
        stem_pooling="max",
        stackwise_depth=[1, 1],
        stackwise_strides=[1, 2],
        stackwise_num_filters=[16, 32],
        block_type="bottleneck_block",
        stage_type="csp",
        bottle_ratio=[0.5],
        expand_ratio=[2.0],
        cross_linear=True,
    ).save_to_preset(directory)
    keras_hub.layers.CSPNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(directory)


CASE = FamilyCase(
    family=cspnet.FAMILY,
    make_preset=tiny_cspnet,
    groups=("stem", "stage_1", "stage_2"),
    options={"image_size": (32, 32)},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)

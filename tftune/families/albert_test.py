import json
import os

import keras_hub

from tftune.families import albert, get_family, resolve_backbone
from tftune.families.testing import FamilyCase, run_family_test, tiny_sentencepiece_proto


def tiny_tokenizer() -> keras_hub.models.AlbertTokenizer:
    return keras_hub.models.AlbertTokenizer(proto=tiny_sentencepiece_proto())


def tiny_backbone(num_layers: int = 2, num_groups: int = 1) -> keras_hub.models.AlbertBackbone:
    return keras_hub.models.AlbertBackbone(
        vocabulary_size=tiny_tokenizer().vocabulary_size(),
        num_layers=num_layers,
        num_heads=2,
        embedding_dim=4,
        hidden_dim=8,
        intermediate_dim=16,
        num_groups=num_groups,
        max_sequence_length=16,
    )


def tiny_albert(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    tiny_tokenizer().save_to_preset(directory)


CASE = FamilyCase(
    family=albert.FAMILY,
    make_preset=tiny_albert,
    groups=("embeddings", "shared_encoder_0", "pooler"),
    options={"sequence_length": 8, "pooling": "cls"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_one_group_per_shared_layer_group_whatever_the_depth_a_stated_limit():
    cases = ((3, 1, ["shared_encoder_0"]), (4, 2, ["shared_encoder_0", "shared_encoder_1"]))
    for num_layers, num_groups, encoders in cases:
        groups = albert.FAMILY.layer_groups(tiny_backbone(num_layers, num_groups))
        assert [group.name for group in groups] == ["embeddings", *encoders, "pooler"]
        assert all(len(group.layers) == 1 for group in groups if group.name in encoders)
    assert any("shared" in limit and "one depth at a time" in limit for limit in albert.FAMILY.limits)


def test_lora_targets_adapt_the_shared_layer_only():
    backbone = tiny_backbone(num_layers=3)
    backbone.enable_lora(2, target_layer_names=list(albert.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2


def test_transformers_folder(tmp_path):
    config = {
        "architectures": ["AlbertModel"],
        "model_type": "albert",
        "vocab_size": tiny_tokenizer().vocabulary_size(),
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "embedding_size": 4,
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_groups": 1,
        "inner_group_num": 1,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": 16,
        "type_vocab_size": 2,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "spiece.model").write_bytes(tiny_sentencepiece_proto())
    assert get_family(os.fspath(tmp_path)) is albert.FAMILY
    resolved = resolve_backbone(tmp_path, weights=None, sequence_length=8)
    assert [group.name for group in resolved.layer_groups] == ["embeddings", "shared_encoder_0", "pooler"]
    assert resolved.preprocessor(["a fine film"])["token_ids"].shape == (1, 8)

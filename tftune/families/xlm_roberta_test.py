import json
import os

import keras_hub

from tftune.families import get_family, resolve_backbone, roberta, xlm_roberta
from tftune.families.testing import FamilyCase, run_family_test, tiny_sentencepiece_proto


def tiny_tokenizer() -> keras_hub.models.XLMRobertaTokenizer:
    return keras_hub.models.XLMRobertaTokenizer(proto=tiny_sentencepiece_proto())


def tiny_backbone() -> keras_hub.models.XLMRobertaBackbone:
    return keras_hub.models.XLMRobertaBackbone(
        vocabulary_size=tiny_tokenizer().vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def tiny_xlm_roberta(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    tiny_tokenizer().save_to_preset(directory)


CASE = FamilyCase(
    family=xlm_roberta.FAMILY,
    make_preset=tiny_xlm_roberta,
    groups=("embeddings", "encoder_0", "encoder_1"),
    options={"sequence_length": 8, "pooling": "max"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_lora_targets_adapt_query_and_value_of_every_layer():
    backbone = tiny_backbone()
    backbone.enable_lora(2, target_layer_names=list(xlm_roberta.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2 * 2


def test_not_mistaken_for_roberta(tmp_path):
    # XLMRobertaBackbone subclasses RobertaBackbone: presets, saved folders and built backbones still tell them apart.
    tiny_xlm_roberta(os.fspath(tmp_path))
    assert get_family(os.fspath(tmp_path)) is xlm_roberta.FAMILY
    assert xlm_roberta.FAMILY.owns(tiny_backbone()) and not roberta.FAMILY.owns(tiny_backbone())
    assert set(xlm_roberta.FAMILY.presets()).isdisjoint(roberta.FAMILY.presets())


def test_transformers_folder(tmp_path):
    config = {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": tiny_tokenizer().vocabulary_size(),
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "hidden_size": 8,
        "intermediate_size": 16,
        "max_position_embeddings": 18,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "sentencepiece.bpe.model").write_bytes(tiny_sentencepiece_proto())
    assert get_family(os.fspath(tmp_path)) is xlm_roberta.FAMILY
    resolved = resolve_backbone(tmp_path, weights=None, sequence_length=8)
    assert type(resolved.model) is keras_hub.models.XLMRobertaBackbone
    assert resolved.preprocessor(["a fine film"])["token_ids"].shape == (1, 8)

import json
import os

import keras_hub

from tftune.families import get_family, resolve_backbone, roberta
from tftune.families.testing import FamilyCase, run_family_test

# A byte-level BPE vocabulary: the special tokens, printable ASCII, "Ġ" (a space's byte), and a few merged pieces.
MERGES = ["Ġ f", "i n", "Ġf in", "Ġ t", "h e", "Ġt he", "Ġ a"]
VOCABULARY = {
    token: index
    for index, token in enumerate(
        ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *(chr(code) for code in range(33, 127)), "Ġ"]
        + [merge.replace(" ", "") for merge in MERGES]
    )
}


def tiny_backbone() -> keras_hub.models.RobertaBackbone:
    return keras_hub.models.RobertaBackbone(
        vocabulary_size=len(VOCABULARY),
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def tiny_roberta(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    keras_hub.models.RobertaTokenizer(vocabulary=VOCABULARY, merges=MERGES).save_to_preset(directory)


CASE = FamilyCase(
    family=roberta.FAMILY,
    make_preset=tiny_roberta,
    groups=("embeddings", "encoder_0", "encoder_1"),
    options={"sequence_length": 8, "pooling": "mean"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_lora_targets_adapt_query_and_value_of_every_layer():
    backbone = tiny_backbone()
    backbone.enable_lora(2, target_layer_names=list(roberta.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2 * 2


def test_presets_leave_out_xlm_roberta():
    # keras-hub's RobertaBackbone.presets also lists its subclass XLMRobertaBackbone's presets.
    assert roberta.FAMILY.presets() == ["roberta_base_en", "roberta_large_en"]
    assert get_family("xlm_roberta_base_multi").name == "xlm_roberta"


def test_transformers_folder(tmp_path):
    config = {
        "architectures": ["RobertaModel"],
        "model_type": "roberta",
        "vocab_size": len(VOCABULARY),
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "hidden_size": 8,
        "intermediate_size": 16,
        "hidden_dropout_prob": 0.1,
        "max_position_embeddings": 18,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "vocab.json").write_text(json.dumps(VOCABULARY))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    assert get_family(os.fspath(tmp_path)) is roberta.FAMILY
    resolved = resolve_backbone(tmp_path, weights=None, sequence_length=8)
    assert type(resolved.model) is keras_hub.models.RobertaBackbone
    assert resolved.max_sequence_length == 16  # HF's 18 positions less RoBERTa's 2 reserved rows
    assert resolved.preprocessor(["a fine film"])["token_ids"].shape == (1, 8)

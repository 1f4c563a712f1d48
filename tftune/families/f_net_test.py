import os

import keras_hub

from tftune.builders import build_text_classifier
from tftune.families import f_net
from tftune.families.testing import FamilyCase, run_family_test, tiny_sentencepiece_proto


def tiny_tokenizer() -> keras_hub.models.FNetTokenizer:
    return keras_hub.models.FNetTokenizer(proto=tiny_sentencepiece_proto())


def tiny_backbone() -> keras_hub.models.FNetBackbone:
    return keras_hub.models.FNetBackbone(
        vocabulary_size=tiny_tokenizer().vocabulary_size(),
        num_layers=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def tiny_f_net(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    tiny_tokenizer().save_to_preset(directory)


CASE = FamilyCase(
    family=f_net.FAMILY,
    make_preset=tiny_f_net,
    groups=("embeddings", "encoder_0", "encoder_1", "pooler"),
    options={"sequence_length": 8, "pooling": "cls"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_token_pooling_leaves_out_the_pad_id_without_a_padding_mask(tmp_path):
    tiny_f_net(os.fspath(tmp_path))
    model = build_text_classifier(tmp_path, num_classes=2, sequence_length=8, pooling="mean")
    assert model.input_names == ("token_ids", "segment_ids")
    pad_token_id = tiny_tokenizer().pad_token_id
    assert pad_token_id != 0 and model.get_layer("mean_pooling").pad_token_id == pad_token_id
    assert "pooler" not in [group.name for group in model.layer_groups]


def test_no_lora_target_a_stated_limit():
    # keras-hub's default LoRA names match no FNet layer: enable_lora would freeze the whole backbone, adapting nothing.
    backbone = tiny_backbone()
    backbone.enable_lora(2)
    assert backbone.trainable_weights == []
    assert f_net.FAMILY.lora_targets == ()
    assert any("no attention" in limit and "LoRA" in limit for limit in f_net.FAMILY.limits)

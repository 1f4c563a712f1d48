import keras_hub
import tensorflow as tf

from tftune.families import deberta_v3
from tftune.families.testing import FamilyCase, run_family_test, tiny_sentencepiece_proto


def tiny_tokenizer() -> keras_hub.models.DebertaV3Tokenizer:
    return keras_hub.models.DebertaV3Tokenizer(proto=tiny_sentencepiece_proto())


def tiny_backbone() -> keras_hub.models.DebertaV3Backbone:
    return keras_hub.models.DebertaV3Backbone(
        vocabulary_size=tiny_tokenizer().vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
        bucket_size=4,
    )


def tiny_deberta_v3(directory: str) -> None:
    tiny_backbone().save_to_preset(directory)
    tiny_tokenizer().save_to_preset(directory)


CASE = FamilyCase(
    family=deberta_v3.FAMILY,
    make_preset=tiny_deberta_v3,
    groups=("embeddings", "encoder_0", "encoder_1"),
    options={"sequence_length": 8, "pooling": "mean"},
)


def test_family(tmp_path):
    run_family_test(CASE, tmp_path)


def test_lora_targets_adapt_query_and_value_of_every_layer():
    backbone = tiny_backbone()
    backbone.enable_lora(2, target_layer_names=list(deberta_v3.FAMILY.lora_targets))
    assert len([weight for weight in backbone.trainable_weights if "lora_kernel_a" in weight.path]) == 2 * 2


def test_shared_rel_embedding_is_in_the_embeddings_group_and_a_stated_limit():
    backbone = tiny_backbone()
    shared = backbone.get_layer("rel_embedding")
    encoders = [layer for layer in backbone.layers if layer.name.startswith("disentangled_attention_encoder_layer_")]
    assert len(encoders) == 2
    for encoder in encoders:  # every layer reads the one table
        assert any(tensor is shared.output for tensor in tf.nest.flatten(encoder.input))
    groups = {group.name: group.layers for group in deberta_v3.FAMILY.layer_groups(backbone)}
    assert any(layer is shared for layer in groups["embeddings"])
    assert any("rel_embedding" in limit and "every encoder layer" in limit for limit in deberta_v3.FAMILY.limits)

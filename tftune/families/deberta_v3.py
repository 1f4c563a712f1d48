"""DeBERTa-v3: keras-hub presets (keras-hub has no Hugging Face converter for `deberta-v2`).

Groups: `embeddings` (token embedding, its norm, and the relative-position
table `rel_embedding` that every encoder layer reads), then `encoder_0` ...
`encoder_{N-1}`. No pooler, no `segment_ids` input.

Example:

```python
family = tftune.families.get_family("deberta_v3_small_en")
family.limits  # ('rel_embedding, the relative-position table, is shared by every encoder layer: ...',)
```
"""

import keras_hub

from tftune.families.text import SENTENCEPIECE, TextFamily


class DebertaV3Family(TextFamily):
    name = "deberta_v3"
    title = "DeBERTa-v3"
    backbone_class = keras_hub.models.DebertaV3Backbone
    tokenizer_class = keras_hub.models.DebertaV3Tokenizer
    preprocessor_class = keras_hub.models.DebertaV3TextClassifierPreprocessor
    tokenizer_kind = SENTENCEPIECE
    group_rules = (
        (r"^(token_embedding|embeddings_|rel_embedding$)", "embeddings", 0),
        (r"^disentangled_attention_encoder_layer_(\d+)$", "encoder_{index}", 0),
    )
    lora_targets = ("query", "value")
    limits = (
        "rel_embedding, the relative-position table, is shared by every encoder layer: it is in the embeddings "
        "group, so it stays frozen until gradual unfreezing opens the bottom group, although every layer reads it.",
    )


FAMILY = DebertaV3Family()

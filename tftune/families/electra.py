"""ELECTRA: keras-hub presets (discriminators and generators); tftune puts its own head on the backbone.

keras-hub 0.32 ships no `ElectraTextClassifier`; its generic
`TextClassifierPreprocessor` with an `ElectraTokenizer` packs [CLS] / [SEP]
as BERT does. Groups: `embeddings` (with `embeddings_projection`),
`encoder_0` ... `encoder_{N-1}`, `pooler` (`pooled_dense` on [CLS], used by
"cls" pooling only). No Hugging Face converter exists for `electra`.

Example:

```python
family = tftune.families.get_family("electra_small_discriminator_uncased_en")
family.preprocessor_class.__name__  # 'TextClassifierPreprocessor'
```
"""

import keras_hub

from tftune.families.text import POOLER, WORDPIECE, TextFamily


class ElectraFamily(TextFamily):
    name = "electra"
    title = "ELECTRA"
    backbone_class = keras_hub.models.ElectraBackbone
    tokenizer_class = keras_hub.models.ElectraTokenizer
    preprocessor_class = keras_hub.models.TextClassifierPreprocessor
    tokenizer_kind = WORDPIECE
    group_rules = (
        (r"^(token_embedding|position_embedding|segment_embedding|embeddings_)", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
        (r"^pooled_dense$", POOLER, 0),
    )
    pooler_layer = "pooled_dense"
    lora_targets = ("query", "value")


FAMILY = ElectraFamily()

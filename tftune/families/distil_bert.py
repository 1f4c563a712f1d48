"""DistilBERT: keras-hub presets and Hugging Face `distilbert` folders.

Groups: `embeddings`, `encoder_0` ... `encoder_{N-1}`. The backbone has no
pooler (its inputs are `token_ids` and `padding_mask`, no `segment_ids`), so
"cls" pooling takes the first token's vector.

Example:

```python
family = tftune.families.get_family("distil_bert_base_en_uncased")
family.title, family.transformers_files  # ('DistilBERT', ('vocab.txt', 'tokenizer_config.json'))
```
"""

import keras_hub

from tftune.families.text import WORDPIECE, TextFamily


class DistilBertFamily(TextFamily):
    name = "distil_bert"
    title = "DistilBERT"
    backbone_class = keras_hub.models.DistilBertBackbone
    tokenizer_class = keras_hub.models.DistilBertTokenizer
    preprocessor_class = keras_hub.models.DistilBertTextClassifierPreprocessor
    tokenizer_kind = WORDPIECE
    transformers_model_types = ("distilbert",)
    # keras-hub's converter reads `do_lower_case` from tokenizer_config.json and fails without the file.
    transformers_files = ("vocab.txt", "tokenizer_config.json")
    group_rules = (
        (r"^(token_and_position_embedding|embeddings_)", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
    )
    lora_targets = ("query", "value")


FAMILY = DistilBertFamily()

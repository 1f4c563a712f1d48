"""BERT: every BERT-architecture checkpoint (BERT, MiniLM, BGE, E5, ...), keras-hub presets and Hugging Face folders.

Groups: `embeddings`, `encoder_0` ... `encoder_{N-1}`, `pooler` (BERT's
`pooled_dense` on [CLS], used by "cls" pooling only).

Example:

```python
resolved = tftune.resolve_backbone(text_backbone, sequence_length=16)
names = [group.name for group in resolved.layer_groups]
names[0], names[-2] == f"encoder_{resolved.model.num_layers - 1}", names[-1]  # ('embeddings', True, 'pooler')
```
"""

import keras_hub

from tftune.families.text import POOLER, WORDPIECE, TextFamily


class BertFamily(TextFamily):
    name = "bert"
    title = "BERT"
    backbone_class = keras_hub.models.BertBackbone
    tokenizer_class = keras_hub.models.BertTokenizer
    preprocessor_class = keras_hub.models.BertTextClassifierPreprocessor
    tokenizer_kind = WORDPIECE
    transformers_model_types = ("bert",)
    transformers_files = ("vocab.txt",)
    group_rules = (
        (r"^(token_embedding|position_embedding|segment_embedding|embeddings_)", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
        (r"^pooled_dense$", POOLER, 0),
    )
    pooler_layer = "pooled_dense"
    lora_targets = ("query", "value")


FAMILY = BertFamily()

"""ALBERT: keras-hub presets and Hugging Face `albert` folders (SentencePiece).

ALBERT runs the same transformer layer(s) at every depth, so its groups are
`embeddings`, one `shared_encoder_{g}` per shared layer group (one in every
released checkpoint: `num_groups=1`) and `pooler` (`pooled_dense` on [CLS],
used by "cls" pooling only).

Example:

```python
import keras_hub

backbone = keras_hub.models.AlbertBackbone(
    vocabulary_size=50, num_layers=4, num_heads=2, embedding_dim=4, hidden_dim=8, intermediate_dim=16
)
[group.name for group in tftune.families.get_family("albert").layer_groups(backbone)]
# ['embeddings', 'shared_encoder_0', 'pooler']
```
"""

import keras_hub

from tftune.families.text import POOLER, SENTENCEPIECE, TextFamily


class AlbertFamily(TextFamily):
    name = "albert"
    title = "ALBERT"
    backbone_class = keras_hub.models.AlbertBackbone
    tokenizer_class = keras_hub.models.AlbertTokenizer
    preprocessor_class = keras_hub.models.AlbertTextClassifierPreprocessor
    tokenizer_kind = SENTENCEPIECE
    transformers_model_types = ("albert",)
    transformers_files = ("spiece.model",)
    group_rules = (
        (r"^(token_embedding|position_embedding|segment_embedding|embeddings_|embedding_projection$)", "embeddings", 0),
        (r"^group_(\d+)_inner_layer_\d+$", "shared_encoder_{index}", 0),
        (r"^pooled_dense$", POOLER, 0),
    )
    pooler_layer = "pooled_dense"
    lora_targets = ("query", "value")
    limits = (
        "ALBERT runs one shared transformer layer group at every depth: the encoder is one group "
        "(shared_encoder_0; one per num_groups), so gradual unfreezing cannot open it one depth at a time, "
        "and LoRA adapts the shared layers only.",
    )


FAMILY = AlbertFamily()

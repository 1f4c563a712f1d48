"""FNet: keras-hub presets (no Hugging Face converter); Fourier token mixing instead of attention.

Groups: `embeddings` (with `embedding_projection`), `encoder_0` ...
`encoder_{N-1}` (the `f_net_layer_i` blocks), `pooler` (`pooled_dense` on
[CLS], used by "cls" pooling only). The inputs are `token_ids` and
`segment_ids`: there is no `padding_mask`, so "mean" / "max" pooling leave
out the tokens equal to the tokenizer's pad id.

Example:

```python
family = tftune.families.get_family("f_net_base_en")
family.lora_targets, family.limits  # ((), ('FNet has no attention ...',))
```
"""

import keras_hub

from tftune.families.text import POOLER, SENTENCEPIECE, TextFamily


class FNetFamily(TextFamily):
    name = "f_net"
    title = "FNet"
    backbone_class = keras_hub.models.FNetBackbone
    tokenizer_class = keras_hub.models.FNetTokenizer
    preprocessor_class = keras_hub.models.FNetTextClassifierPreprocessor
    tokenizer_kind = SENTENCEPIECE
    group_rules = (
        (r"^(token_embedding|position_embedding|segment_embedding|embeddings_|embedding_projection$)", "embeddings", 0),
        (r"^f_net_layer_(\d+)$", "encoder_{index}", 0),
        (r"^pooled_dense$", POOLER, 0),
    )
    pooler_layer = "pooled_dense"
    limits = (
        "FNet has no attention, so LoRA has no query / value projection to adapt (keras-hub's enable_lora "
        "would adapt nothing and freeze the whole backbone); fine-tune it by unfreezing groups instead.",
    )


FAMILY = FNetFamily()

"""RoFormer-v2: local keras-hub presets (keras-hub 0.32 ships no RoFormer-v2 preset and no Hugging Face converter).

Groups: `embeddings`, `encoder_0` ... `encoder_{N-1}`. Positions are rotary,
so the backbone has no sequence-length limit. The inputs are `token_ids` and
`segment_ids`: the backbone masks padding as `token_ids != 0` itself, and
"mean" / "max" pooling leave out the tokens equal to the pad id.

Example:

```python
family = tftune.families.get_family("roformer_v2")
family.lora_targets, family.presets()  # (('q_dense_layer', 'v_dense_layer'), [])
```
"""

import keras_hub

from tftune.families.text import WORDPIECE, TextFamily


class RoformerV2Family(TextFamily):
    name = "roformer_v2"
    title = "RoFormer-v2"
    backbone_class = keras_hub.models.RoformerV2Backbone
    tokenizer_class = keras_hub.models.RoformerV2Tokenizer
    preprocessor_class = keras_hub.models.RoformerV2TextClassifierPreprocessor
    tokenizer_kind = WORDPIECE
    group_rules = (
        (r"^(token_embedding|segment_embedding|embeddings_)", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
    )
    # keras-hub's default LoRA names (query / value) match nothing in RoFormer-v2's attention.
    lora_targets = ("q_dense_layer", "v_dense_layer")


FAMILY = RoformerV2Family()

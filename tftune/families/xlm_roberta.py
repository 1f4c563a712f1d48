"""XLM-RoBERTa: keras-hub presets (XLM-R, BGE-M3, multilingual E5) and Hugging Face `xlm-roberta` folders.

Groups: `embeddings`, `encoder_0` ... `encoder_{N-1}`, as RoBERTa (whose
backbone XLM-R's subclasses); the tokenizer is SentencePiece with fairseq's
id offset. No pooler, no `segment_ids` input.

Example:

```python
family = tftune.families.get_family("xlm_roberta_base_multi")
family.tokenizer_kind, family.transformers_files  # ('SentencePiece', ('sentencepiece.bpe.model',))
```
"""

import keras_hub

from tftune.families.text import SENTENCEPIECE, TextFamily


class XLMRobertaFamily(TextFamily):
    name = "xlm_roberta"
    title = "XLM-RoBERTa"
    backbone_class = keras_hub.models.XLMRobertaBackbone
    tokenizer_class = keras_hub.models.XLMRobertaTokenizer
    preprocessor_class = keras_hub.models.XLMRobertaTextClassifierPreprocessor
    tokenizer_kind = SENTENCEPIECE
    transformers_model_types = ("xlm-roberta",)
    transformers_files = ("sentencepiece.bpe.model",)
    group_rules = (
        (r"^embeddings", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
    )
    lora_targets = ("query", "value")


FAMILY = XLMRobertaFamily()

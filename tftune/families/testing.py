"""The shared family harness: what every backbone family must pass, on a tiny random-init config.

Like keras-hub's `TestCase.run_task_test`: a family's `*_test.py` describes
a tiny preset (`FamilyCase`) and calls `run_family_test`, which checks the
promises tftune makes for every family: the spec resolves to the family;
the layer groups cover every trainable weight exactly once and do not
depend on what was built before; frozen weights stay bit-identical during a
fit; `GradualUnfreezing` opens groups top-down inside one fit; a text model
trains under a 2-replica `MirroredStrategy` (numeric masks); and the
`.keras` file round-trips. The serving half (SavedModel export, TF-only
reload parity on raw inputs) runs once for every family together in
`tests/families_serving_test.py`.

The harness fits run eagerly (`run_eagerly=True`): what it checks is the
family's structure (groups, masks, saving), which tracing would not change,
and a tiny model steps eagerly in a fraction of a graph trace. The bool-mask
failure it guards against fails an eager 2-replica fit too (AddN); the graph
path is covered on real models by tests/unfreeze_test.py and train_test.py.

Example (a family's test module; `tftune/families/vgg_test.py` is a whole one):

```
CASE = FamilyCase(family=resnet.FAMILY, make_preset=tiny_resnet, groups=("stem", "stage_1", "stage_2"))

def test_family(tmp_path):
    run_family_test(CASE, tmp_path)
```
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import sentencepiece
import tensorflow as tf
from safetensors.numpy import save_file

from tftune.builders import build_classifier
from tftune.distribute import get_strategy
from tftune.families.base import Family
from tftune.families.registry import get_family
from tftune.families.text import TEXT
from tftune.lora import enable_lora, lora_layers
from tftune.recipe import save_model
from tftune.unfreeze import GradualUnfreezing, compile_for_unfreezing

NUM_CLASSES = 3
TEXTS = ("a fine film", "the worst thing i have seen this year", "", "ok")
# More text for the tiny SentencePiece model to learn pieces from.
SENTENCES = ("the quick brown fox jumps over the lazy dog", "what a waste of time", "i loved every minute of it")


@dataclasses.dataclass(frozen=True)
class FamilyCase:
    """A tiny preset of one family and what the harness should find in it.

    `make_preset(directory)` writes a random-init backbone (and its tokenizer
    or image converter) with `save_to_preset`; `groups` are the expected
    backbone group names; `options` go to the builder (`sequence_length`,
    `image_size`, `pooling`).
    """

    family: Family
    make_preset: Callable[[str], Any]
    groups: Sequence[str]
    options: dict = dataclasses.field(default_factory=dict)

    @property
    def is_text(self) -> bool:
        return self.family.modality is TEXT

    def preset(self, directory: str) -> str:
        if not os.path.isfile(os.path.join(directory, "config.json")):
            keras.utils.set_random_seed(0)
            self.make_preset(directory)
        return directory

    def build(self, preset: str) -> keras.Model:
        return build_classifier(preset, NUM_CLASSES, **self.options)

    def raw_examples(self) -> list:
        """Raw inputs: strings for text, uint8 images of two shapes (not square) for images."""
        if self.is_text:
            return list(TEXTS)
        random = np.random.RandomState(0)
        return [random.randint(0, 256, size=shape, dtype="uint8") for shape in ((40, 56, 3), (48, 36, 3))]

    def model_inputs(self, model: keras.Model):
        """A batch of four model inputs, as the training pipeline gives them."""
        if self.is_text:
            return model.preprocessor(tf.constant(TEXTS))
        random = np.random.RandomState(1)
        return random.uniform(0, 255, size=(4, *model.image_size, 3)).astype("float32")


def run_family_test(case: FamilyCase, directory: str | os.PathLike) -> keras.Model:
    """Run every family promise on `case`'s tiny preset in `directory`; return the trained model."""
    preset = case.preset(os.path.join(os.fspath(directory), "preset"))
    assert get_family(preset) is case.family, f"{preset} resolved to {get_family(preset).name}, not {case.family.name}"
    model = case.build(preset)
    _check_groups(case, model)
    _check_groups_do_not_depend_on_history(case, preset, model)
    _check_gradual_unfreezing(case, model)
    if case.is_text:
        _check_two_replica_fit(case, preset)
    _check_keras_round_trip(case, model, os.path.join(os.fspath(directory), "model.keras"))
    _check_lora_targets(case, preset)
    return model


def _check_groups(case: FamilyCase, model: keras.Model) -> None:
    names = [group.name for group in model.layer_groups]
    assert names == [*case.groups, "head"], f"groups {names}, expected {[*case.groups, 'head']}"
    grouped = [id(weight) for group in model.layer_groups for weight in group.weights if weight.trainable]
    assert len(grouped) == len(set(grouped)), "a weight belongs to two groups"
    trainable = {id(weight): weight.path for weight in model.trainable_weights}
    missing = [path for key, path in trainable.items() if key not in set(grouped)]
    assert not missing, f"trainable weights in no group: {missing[:5]}"
    assert all(group.weights for group in model.layer_groups), "an empty group"


def _check_groups_do_not_depend_on_history(case: FamilyCase, preset: str, model: keras.Model) -> None:
    # Auto-generated layer names change with what was built earlier in the process; groups must not.
    again = case.build(preset)
    assert [group.name for group in again.layer_groups] == [group.name for group in model.layer_groups]
    assert [group.count_params() for group in again.layer_groups] == [
        group.count_params() for group in model.layer_groups
    ]


def _check_gradual_unfreezing(case: FamilyCase, model: keras.Model) -> None:
    """Head alone at step 0 (backbone bit-identical), the top group joins at step 1, every group at step 2."""
    backbone_groups = model.layer_groups[:-1]
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            snapshots.append([[weight.numpy().copy() for weight in group.weights] for group in model.layer_groups])

        def on_train_end(self, logs=None):
            self.on_train_batch_begin(None)

    compile_for_unfreezing(model, "adam", 1e-2, run_eagerly=True)
    inputs = case.model_inputs(model)
    labels = np.array([0, 1, 2, 0])
    dataset = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    unfreezing = GradualUnfreezing({0: 0, 1: 1, 2: "all"}, unit="step", verbose=0)
    model.fit(dataset, epochs=1, steps_per_epoch=3, callbacks=[unfreezing, Snapshot()], verbose=0)
    before, after_head, after_top, after_all = snapshots

    def changed(later, earlier, index):
        return any(not np.array_equal(a, b) for a, b in zip(later[index], earlier[index], strict=True))

    head = len(model.layer_groups) - 1
    assert changed(after_head, before, head), "the head did not train in step 0"
    for index, group in enumerate(backbone_groups):
        assert not changed(after_head, before, index), f"group {group.name} changed while frozen (step 0)"
    assert changed(after_top, after_head, head - 1), f"top group {backbone_groups[-1].name} did not train in step 1"
    for index, group in enumerate(backbone_groups[:-1]):
        assert not changed(after_top, after_head, index), f"group {group.name} changed while frozen (step 1)"
    assert changed(after_all, after_top, 0), f"bottom group {backbone_groups[0].name} did not train in step 2"


def _check_two_replica_fit(case: FamilyCase, preset: str) -> None:
    # The process-wide strategy: a second MirroredStrategy over the same devices breaks the first all-reduce of
    # whichever trains later ("Shape mismatch in the collective instance") when several tests share a process.
    strategy = get_strategy("mirrored", devices=("/cpu:0", "/cpu:1"))
    assert strategy.num_replicas_in_sync == 2, "two logical CPUs are needed (conftest.py sets them)"
    with strategy.scope():
        model = case.build(preset)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    inputs = case.model_inputs(model)  # what the model's preprocessor gives the training pipeline
    assert all(tensor.dtype != tf.bool for tensor in tf.nest.flatten(inputs)), "a bool model input"
    history = model.fit(tf.data.Dataset.from_tensors((inputs, [0, 1, 2, 0])), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _check_keras_round_trip(case: FamilyCase, model: keras.Model, path: str) -> None:
    inputs = case.model_inputs(model)
    expected = model(inputs, training=False)
    save_model(model, path)  # the library's saving path (weights and labels, no optimizer state)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(inputs, training=False), expected, atol=1e-6)
    assert [group.name for group in loaded.layer_groups] == [group.name for group in model.layer_groups]
    if case.is_text:
        np.testing.assert_array_equal(loaded.preprocessor(tf.constant(TEXTS))["token_ids"], inputs["token_ids"])


def _check_lora_targets(case: FamilyCase, preset: str) -> None:
    """LoRA finds the family's targets (only adapters, adapted biases and the head train), or refuses by name."""
    model = case.build(preset)
    if not case.family.lora_targets:
        try:
            enable_lora(model, rank=2)
        except ValueError as error:
            assert case.family.title in str(error), str(error)
            return
        raise AssertionError(f"enable_lora on {case.family.title} (no targets) did not refuse")
    enable_lora(model, rank=2)
    adapted = lora_layers(model)
    assert adapted, f"no {case.family.title} layer named {case.family.lora_targets}"
    allowed = {id(variable) for layer in adapted for variable in (layer.lora_kernel_a, layer.lora_kernel_b)}
    allowed |= {id(layer.bias) for layer in adapted if getattr(layer, "bias", None) is not None}
    allowed |= {id(weight) for weight in model.layer_groups[-1].weights}
    trains = {id(weight): weight.path for weight in model.trainable_weights}
    assert set(trains) <= allowed, f"not adapters: {[path for key, path in trains.items() if key not in allowed][:5]}"
    assert allowed - {id(weight) for weight in model.layer_groups[-1].weights} <= set(trains), "an adapter is frozen"


@functools.cache
def tiny_sentencepiece_proto() -> bytes:
    """A tiny SentencePiece model (serialized proto) with the special pieces keras-hub's SentencePiece tokenizers need.

    Trained on a few sentences. It holds `<unk>`, `<s>`, `</s>` at ids 0-2
    (where a fairseq-style id offset expects them), `<pad>`, `[PAD]`, `[CLS]`,
    `[SEP]` and `[MASK]`.

    Example:

    ```python
    import keras_hub
    from tftune.families.testing import tiny_sentencepiece_proto

    keras_hub.tokenizers.SentencePieceTokenizer(proto=tiny_sentencepiece_proto())(["a fine film"])
    ```
    """
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([text for text in (*TEXTS, *SENTENCES) if text]),
        model_writer=proto,
        vocab_size=48,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]", "[PAD]"],
        minloglevel=2,
    )
    return proto.getvalue()


def tiny_transformers_bert(directory: str | os.PathLike, source: str | os.PathLike, *, seed: int = 0) -> str:
    """Write a 1-layer random-init twin of the Hugging Face BERT folder `source` (hidden size 16); return its path.

    The twin has `source`'s files (vocabulary, tokenizer and sentence-transformers
    settings) except `config.json` and `model.safetensors`, which describe a
    random 1-layer BERT with Hugging Face's weight names. keras-hub converts it
    exactly as it converts `source`, in a fraction of the time: for tests and
    examples of plumbing, not of transfer.

    Example:

    ```python
    import tempfile
    from tftune.families.testing import tiny_transformers_bert

    folder = tiny_transformers_bert(tempfile.mkdtemp(), text_backbone)
    tftune.resolve_backbone(folder).model.count_params()  # 499104
    ```
    """
    directory = os.fspath(directory)
    shutil.copytree(source, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors"))
    hidden, intermediate, positions, vocabulary_size = 16, 32, 512, 30522
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "vocab_size": vocabulary_size, "hidden_size": hidden, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": intermediate, "max_position_embeddings": positions, "type_vocab_size": 2,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
    }
    shapes = {
        "embeddings.word_embeddings.weight": (vocabulary_size, hidden),
        "embeddings.position_embeddings.weight": (positions, hidden),
        "embeddings.token_type_embeddings.weight": (2, hidden),
        **{f"encoder.layer.0.attention.self.{name}.weight": (hidden, hidden) for name in ("query", "key", "value")},
        "encoder.layer.0.attention.output.dense.weight": (hidden, hidden),
        "encoder.layer.0.intermediate.dense.weight": (intermediate, hidden),
        "encoder.layer.0.output.dense.weight": (hidden, intermediate),
        "pooler.dense.weight": (hidden, hidden),
    }
    random = np.random.RandomState(seed)
    tensors = {name: (0.02 * random.standard_normal(shape)).astype("float32") for name, shape in shapes.items()}
    for name, shape in list(shapes.items()):
        if not name.startswith("embeddings."):
            tensors[name.replace(".weight", ".bias")] = np.zeros(shape[0], "float32")
    norms = ("embeddings.LayerNorm", "encoder.layer.0.attention.output.LayerNorm", "encoder.layer.0.output.LayerNorm")
    for norm in norms:
        tensors[f"{norm}.weight"], tensors[f"{norm}.bias"] = np.ones(hidden, "float32"), np.zeros(hidden, "float32")
    save_file(tensors, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as config_file:
        json.dump(config, config_file)
    return directory

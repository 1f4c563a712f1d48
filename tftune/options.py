"""The option groups of `tftune.fit`: how it optimizes, how it distributes, LoRA; each field's rule lives here.

Each group is a frozen dataclass that checks its fields when it is made and
reports every problem in one `ValueError`. `RecipeConfig` keeps its flat
options (its YAML / CLI names) and checks them with the same rules
(`OptimizerOptions.errors(...)`), so a rule has one place for `tftune.fit`,
the recipes and the CLI.

```python
try:
    tftune.OptimizerOptions(learning_rate=5e-5, layer_decay=0)
except ValueError as error:
    message = str(error)
message  # 'OptimizerOptions.layer_decay must be in (0, 1] (ULMFiT uses 1/2.6 ~ 0.38) or unset for one rate; got 0.'
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import ClassVar

import keras
import tensorflow as tf

from tftune._validation import (
    boolean_error,
    choice_error,
    integer_error,
    layer_decay_error,
    number_error,
    raise_errors,
)
from tftune.distribute import STRATEGIES
from tftune.precision import PRECISIONS

# The optimizers a per-group rate is exact for: their update is proportional to the learning rate.
OPTIMIZERS = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}
# Optimizer settings that would act per layer group instead of over the whole model.
PER_GROUP_ONLY = ("global_clipnorm", "use_ema", "gradient_accumulation_steps")


def optimizer_error(name: str, value) -> str | None:
    """The problem with `value` as an optimizer to copy per layer group, or None: a name of `OPTIMIZERS` or one.

    An Adam / AdamW / SGD instance is copied with its settings, except
    those that would act per group (`PER_GROUP_ONLY`).
    """
    if isinstance(value, str) and value.lower() in OPTIMIZERS:
        return None
    if isinstance(value, tuple(OPTIMIZERS.values())) and not isinstance(
        value, (keras.optimizers.LossScaleOptimizer, keras.optimizers.MultiOptimizer)
    ):
        config = value.get_config()
        unsupported = [key for key in PER_GROUP_ONLY if config.get(key) not in (None, False)]
        if not unsupported:
            return None
        return (
            f"{name}: each layer group gets its own copy of the optimizer, so {unsupported} would act per group, "
            f"not over the model. Create the optimizer without them."
        )
    return (
        f"{name}: tftune supports the optimizers {sorted(OPTIMIZERS)} (names or keras instances), whose update is "
        f"proportional to the learning rate so a per-group rate is exact; got {value!r}."
    )


def learning_rate_error(name: str, value) -> str | None:
    """The problem with `value` as a peak learning rate, or None: a number in (0, 1)."""
    return number_error(name, value, minimum=0, maximum=1, exclusive=True)


def class_weight_errors(class_weight) -> list[str | None]:
    """The problems with `class_weight` as "balanced", None or `{class index or label name: weight > 0}`.

    The keys are checked against the model's labels once it is built.
    """
    if isinstance(class_weight, Mapping):
        return [
            number_error(f"class_weight[{key!r}]", weight, minimum=0, exclusive=True)
            for key, weight in class_weight.items()
        ]
    if class_weight is None or (isinstance(class_weight, str) and class_weight == "balanced"):
        return []
    return [
        f"class_weight must be 'balanced', a dict {{class index or label name: weight}} or None; got {class_weight!r}."
    ]


def _optional(rule: Callable[[str, object], str | None]) -> Callable[[str, object], str | None]:
    """`rule` for a field where None means unset (and is fine)."""
    return lambda name, value: None if value is None else rule(name, value)


def _strategy_error(name: str, value) -> str | None:
    return None if isinstance(value, tf.distribute.Strategy) else choice_error(name, value, STRATEGIES)


def _tpu_error(name: str, value) -> str | None:
    if isinstance(value, str) and value:
        return None
    return f"{name} must be a Cloud TPU name, a grpc:// address or 'local'; got {value!r}."


class _OptionGroup:
    """What the option groups share: one rule per field, all checked when a group is made."""

    # Field name -> its rule: a function of (the name to report, the value) returning the problem or None.
    RULES: ClassVar[dict[str, Callable[[str, object], str | None]]] = {}

    def __post_init__(self):
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        raise_errors(*self.errors(f"{type(self).__name__}.", **values))

    @classmethod
    def errors(cls, prefix: str = "", **values) -> list[str | None]:
        """The problem with each of `values` (keyed by field; None where fine), each named `prefix` + its field.

        What `RecipeConfig` checks its flat options with (`prefix` "lora_" for
        `lora_rank` / `lora_alpha`), for `tftune._validation.raise_errors`.
        """
        return [cls.RULES[field](prefix + field, value) for field, value in values.items()]


@dataclasses.dataclass(frozen=True)
class OptimizerOptions(_OptionGroup):
    """How `tftune.fit` compiles the per-group optimizer (`tftune.compile_for_unfreezing`).

    - `optimizer`: "adam", "adamw", "sgd" or a keras Adam / AdamW / SGD,
      copied once per layer group.
    - `learning_rate`: every group's peak rate once the backbone trains.
    - `head_learning_rate`: the head's rate while the whole backbone is
      frozen (a new head wants a larger one); None: `learning_rate`.
    - `layer_decay`: group k from the top trains at
      `learning_rate * layer_decay**k` (ULMFiT: 1/2.6); None: one rate.
    - `warmup_steps`: linear warm-up steps of each unfreezing stage; the
      rate then decays linearly to 0 at the end of the fit.

    Example:

    ```python
    options = tftune.OptimizerOptions(learning_rate=5e-5, head_learning_rate=1e-2, layer_decay=1 / 2.6)
    options.optimizer, options.warmup_steps  # ('adamw', 0)
    ```
    """

    optimizer: str | keras.optimizers.Optimizer = "adamw"
    learning_rate: float = 2e-5
    head_learning_rate: float | None = None
    layer_decay: float | None = None
    warmup_steps: int = 0

    RULES: ClassVar = {
        "optimizer": optimizer_error,
        "learning_rate": learning_rate_error,
        "head_learning_rate": _optional(learning_rate_error),
        "layer_decay": layer_decay_error,
        "warmup_steps": lambda name, value: integer_error(name, value, minimum=0),
    }


@dataclasses.dataclass(frozen=True)
class DistributionOptions(_OptionGroup):
    """Where and how `tftune.fit` trains: the tf.distribute strategy, its precision and the batch size.

    - `strategy`: a name of `tftune.get_strategy` ("auto", "cpu", "gpu",
      "mirrored", "multi_worker", "tpu") or a `tf.distribute.Strategy`;
      `tpu` names the TPU for "tpu" / "auto".
    - `precision`: "auto" (mixed on GPU / TPU, float32 on CPU), "float32",
      "mixed_float16" or "mixed_bfloat16" (see `tftune.precision_policy`).
    - `batch_size`: examples per replica (`batch_size_is_global=True`: per
      step over all replicas) that `fit` batches single examples into;
      None: the data comes batched with the global batch size.
    - `jit_compile`: XLA for the train step (Keras' "auto", True or False).
    - `synchronize_batchnorm`: with 2+ replicas, BatchNormalization uses
      the statistics of the global batch (`tftune.synchronize_batch_normalization`).

    Example:

    ```python
    options = tftune.DistributionOptions(strategy="mirrored", batch_size=16)
    options.precision, options.batch_size_is_global  # ('auto', False)
    ```
    """

    strategy: str | tf.distribute.Strategy = "auto"
    tpu: str | None = None
    precision: str = "auto"
    batch_size: int | None = None
    batch_size_is_global: bool = False
    jit_compile: bool | str = "auto"
    synchronize_batchnorm: bool = True

    RULES: ClassVar = {
        "strategy": _strategy_error,
        "tpu": _optional(_tpu_error),
        "precision": lambda name, value: choice_error(name, value, PRECISIONS),
        "batch_size": _optional(lambda name, value: integer_error(name, value, minimum=1)),
        "batch_size_is_global": boolean_error,
        "jit_compile": lambda name, value: choice_error(name, value, ("auto", True, False)),
        "synchronize_batchnorm": boolean_error,
    }


@dataclasses.dataclass(frozen=True)
class LoraOptions(_OptionGroup):
    """LoRA as `tftune.fit`'s training mode: adapters of rank `rank` train, the base kernels stay frozen.

    The adapters' update is scaled by `alpha / rank` (None: `alpha = rank`,
    as Keras does); they go on the layers the backbone's family targets
    (see `tftune.enable_lora`). LoRA wants a larger rate than full
    fine-tuning: `tftune.lora.LEARNING_RATE`.

    Example:

    ```python
    options = tftune.LoraOptions(rank=8, alpha=16)
    options.alpha / options.rank  # 2.0
    ```
    """

    rank: int = 8
    alpha: float | None = None

    RULES: ClassVar = {
        "rank": lambda name, value: integer_error(name, value, minimum=1),
        "alpha": _optional(lambda name, value: number_error(name, value, minimum=0, exclusive=True)),
    }

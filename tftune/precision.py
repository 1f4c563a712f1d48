"""Precision: the Keras dtype policy a run computes in, why it was chosen, and a scope to build models under it.

"auto" picks by the strategy's devices: mixed_float16 on GPU, mixed_bfloat16
on TPU, and on CPU mixed_bfloat16 for text models where the CPU has bfloat16
instructions (AMX-BF16 / AVX512-BF16), else float32. The choice and its reason
are logged and written to report.md.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import keras
import tensorflow as tf

from tftune.distribute import device_kind
from tftune.families import TEXT, Modality

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
_PRECISION_BY_DEVICE = {"TPU": "mixed_bfloat16", "GPU": "mixed_float16", "CPU": "float32"}
# The /proc/cpuinfo flags of the x86 instructions that oneDNN runs bfloat16 matmuls and convolutions with.
CPU_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# The modalities that "auto" trains in mixed_bfloat16 on such a CPU: measured faster (benchmarks/precision.py).
BFLOAT16_CPU_MODALITIES = (TEXT,)


def cpu_bfloat16_flags(cpuinfo: str) -> tuple[str, ...]:
    r"""The bfloat16 instruction sets (of `CPU_BFLOAT16_FLAGS`) that a `/proc/cpuinfo` text reports.

    A flag counts when every processor's `flags` line lists it.

    Example:

    ```python
    tftune.precision.cpu_bfloat16_flags("flags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n")
    # ("amx_bf16", "avx512_bf16")
    ```
    """
    processors = [
        set(value.split()) for key, _, value in (line.partition(":") for line in cpuinfo.splitlines())
        if key.strip() == "flags"
    ]
    return tuple(flag for flag in CPU_BFLOAT16_FLAGS if processors and all(flag in flags for flags in processors))


def read_cpuinfo() -> str:
    """The text of `/proc/cpuinfo`, or "" where there is none (any system but Linux).

    Example:

    ```python
    tftune.precision.cpu_bfloat16_flags(tftune.precision.read_cpuinfo())  # ("amx_bf16", "avx512_bf16") here
    ```
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            return cpuinfo.read()
    except OSError:
        return ""


def precision_policy(precision: str, strategy: tf.distribute.Strategy, modality: Modality | None = None) -> str:
    """The Keras dtype policy name for `precision` on the strategy's devices; logs it and why.

    "auto" gives "mixed_float16" on GPU and "mixed_bfloat16" on TPU. On CPU
    it gives "mixed_bfloat16" for text models (`modality=tftune.families.TEXT`) when the
    CPU reports AMX-BF16 or AVX512-BF16 (`cpu_bfloat16_flags` of
    `/proc/cpuinfo`), where benchmarks/precision.py measured MiniLM's
    training step 1.6x faster than float32 and benchmarks/quality.py the same
    accuracy; "float32" for image models (the image recipe's ResNet50V2 was
    not faster in bfloat16), for an unknown `modality` and on other CPUs.
    "float32", "mixed_float16" and "mixed_bfloat16" are returned as they are.
    Under a mixed policy tftune's heads and losses stay float32 (predictions
    and SavedModel outputs are float32 probabilities), and `compile` wraps
    the optimizer in a `LossScaleOptimizer` for mixed_float16.

    Example:

    ```python
    tftune.precision_policy("auto", tftune.get_strategy("cpu"), tftune.families.TEXT)  # "mixed_bfloat16" on AMX
    tftune.precision_policy("auto", tftune.get_strategy("cpu"), tftune.families.IMAGE)  # "float32"
    ```
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {precision!r}.")
    policy = precision
    if precision == "auto":
        device = device_kind(strategy)
        bfloat16_cpu = device == "CPU" and modality in BFLOAT16_CPU_MODALITIES and cpu_bfloat16_flags(read_cpuinfo())
        policy = "mixed_bfloat16" if bfloat16_cpu else _PRECISION_BY_DEVICE[device]
    logger.info("tftune precision: %s", describe_precision(policy, precision, modality))
    return policy


def describe_precision(policy: str, requested: str | None = "auto", modality: Modality | None = None) -> str:
    """`policy` and why it was chosen, for the run log and report.md: "float32 (precision='float32')".

    `requested` is the `precision` asked for ("auto" explains the automatic
    choice on this machine for a `modality` of model; None: the policy a given
    model was built with).

    Example:

    ```python
    tftune.precision.describe_precision("float32", "auto", tftune.families.IMAGE)
    # "float32 (auto: a CPU; bfloat16 is picked on AMX-BF16 / AVX512-BF16 CPUs for text models only, ...)"
    ```
    """
    if requested is None:
        return f"{policy} (the model's dtype policy)"
    if requested != "auto":
        return f"{policy} (precision={requested!r})"
    flags = cpu_bfloat16_flags(read_cpuinfo())
    if policy == "mixed_float16":
        why = "a GPU: float16 compute, float32 weights, loss scaling"
    elif policy == "mixed_bfloat16" and tf.config.list_logical_devices("TPU"):
        why = "a TPU: bfloat16 is its native compute type"
    elif policy == "mixed_bfloat16":
        why = (
            f"a {modality} model on a CPU that reports {', '.join(flags)}: MiniLM trained 1.6x faster per step than in "
            f"float32 with the same accuracy (benchmarks/precision.py, quality.py); precision='float32' to opt out"
        )
    elif not flags:
        why = "a CPU without AMX-BF16 / AVX512-BF16 (no amx_bf16 or avx512_bf16 in /proc/cpuinfo)"
    else:
        measured = "ResNet50V2 measured no faster in bfloat16"
        this = "no text model" if modality is None else f"an {modality} model ({measured})"
        why = f"a CPU; bfloat16 is picked on AMX-BF16 / AVX512-BF16 CPUs for text models only, and this is {this}"
    return f"{policy} (auto: {why})"


@contextlib.contextmanager
def precision_scope(policy: str) -> Iterator[str]:
    """Set Keras' global dtype policy for the models built inside; restore the previous one after.

    Example:

    ```python
    with tftune.precision_scope("mixed_bfloat16"):
        model = tftune.build_image_classifier(image_backbone, num_classes=3, weights=None)
    model.dtype_policy.name  # "mixed_bfloat16"
    ```
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)

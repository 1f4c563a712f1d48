"""Argument checks shared by every tftune module.

Each `*_error` function returns the problem with one value as a sentence
(naming the value, what is allowed), or None when the value is fine.
`raise_errors` raises one `ValueError` listing every problem found, so a
caller can check all of its options before reporting:

```python
raise_errors(
    integer_error("epochs", 0, minimum=1),
    number_error("learning_rate", 5, minimum=0, maximum=1, exclusive=True),
)
# ValueError: 2 invalid options:
#   - epochs must be an integer >= 1; got 0.
#   - learning_rate must be a number in (0, 1); got 5.
```
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterable, Sequence

# A ResNet halves the resolution five times: smaller inputs collapse to nothing.
MIN_IMAGE_SIZE = 32
# A ResNet50 batch of 32 at 2048x2048 already needs ~100 GB of activations to train: larger is a typo.
MAX_IMAGE_SIZE = 2048
# The longest position table of a BERT-family checkpoint (ModernBERT); the backbone's own limit is checked on load.
MAX_SEQUENCE_LENGTH = 8192
# NumPy's and TensorFlow's seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
# A held-out split of a two-class subset needs a training and a validation example of each class.
MIN_EXAMPLES = 4
# TF Serving model names: letters, digits, '_', '-' and '.', starting with a letter or digit (and no '..').
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def integer_error(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> str | None:
    """The problem with `value` as an integer option `name` in [minimum, maximum], or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not _within(value, minimum, maximum, False):
        return f"{name} must be an integer{_range_text(minimum, maximum, False)}; got {value!r}."
    return None


def number_error(
    name: str, value, *, minimum: float | None = None, maximum: float | None = None, exclusive: bool = False
) -> str | None:
    """The problem with `value` as a number option `name` in [minimum, maximum] (open with `exclusive`), or None."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value  # NaN
        or not _within(value, minimum, maximum, exclusive)
    ):
        return f"{name} must be a number{_range_text(minimum, maximum, exclusive)}; got {value!r}."
    return None


def boolean_error(name: str, value) -> str | None:
    """The problem with `value` as an on / off option `name`, or None: True or False."""
    if not isinstance(value, bool):
        return f"{name} must be True or False; got {value!r}."
    return None


def choice_error(name: str, value, choices: Sequence) -> str | None:
    """The problem with `value` as option `name` that must be one of `choices`, or None."""
    if value not in choices:
        return f"{name} must be one of {', '.join(repr(choice) for choice in choices)}; got {value!r}."
    return None


def image_size_error(name: str, value) -> str | None:
    """The problem with `value` as a (height, width) image size, or None: both integers in [32, 2048]."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Iterable)
        or len(tuple(value)) != 2
        or any(integer_error(name, side, minimum=MIN_IMAGE_SIZE, maximum=MAX_IMAGE_SIZE) for side in value)
    ):
        return (
            f"{name} must be (height, width), two integers in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}] (CNN backbones "
            f"downsample 32x; larger images do not fit in memory for training: resize them); got {value!r}."
        )
    return None


def sequence_length_error(name: str, value) -> str | None:
    """The problem with `value` as tokens per text example, or None: an integer in [1, 8192]."""
    return integer_error(name, value, minimum=1, maximum=MAX_SEQUENCE_LENGTH)


def seed_error(name: str, value) -> str | None:
    """The problem with `value` as a random seed, or None: an integer in [0, 2**32 - 1] (NumPy's range)."""
    return integer_error(name, value, minimum=0, maximum=MAX_SEED)


def max_examples_error(name: str, value) -> str | None:
    """The problem with `value` as a cap on the examples used, or None: unset, or an integer >= 4.

    Four is the least a held-out split of two classes can work with (a
    training and a validation example of each).
    """
    return None if value is None else integer_error(name, value, minimum=MIN_EXAMPLES)


def layer_decay_error(name: str, value) -> str | None:
    """The problem with `value` as a per-group learning-rate decay, or None: unset, or a number in (0, 1]."""
    if value is None or (number_error(name, value, maximum=1) is None and value > 0):
        return None
    return f"{name} must be in (0, 1] (ULMFiT uses 1/2.6 ~ 0.38) or unset for one rate; got {value!r}."


def encoding_error(name: str, value) -> str | None:
    """The problem with `value` as a text file encoding, or None: a Python codec name."""
    try:
        codecs.lookup(value)
    except (LookupError, TypeError):
        return f"{name} must be a Python codec name such as 'utf-8', 'latin-1' or 'cp1252'; got {value!r}."
    return None


def model_name_error(name: str, value) -> str | None:
    """The problem with `value` as a served model's name, or None: letters, digits, '_', '-', '.'; no '..'."""
    if isinstance(value, str) and _MODEL_NAME.fullmatch(value) and ".." not in value:
        return None
    return (
        f"{name} {value!r} is not a valid model name: use letters, digits, '_', '-' and '.', starting with a "
        f"letter or digit, without '..' (for example 'reviews')."
    )


def directory_error(name: str, path) -> str | None:
    """The problem with `path` as a directory to write into, or None.

    Fine when it is a writable directory, or does not exist yet and its
    nearest existing parent is a writable directory (it will be created).
    """
    try:
        path = os.path.abspath(os.fspath(path))
    except TypeError:
        return f"{name} must be a directory path; got {path!r}."
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        problem = "is a file" if existing == path else f"cannot be created: {existing!r} is a file"
        return f"{name} {path!r} {problem}; pass a directory (a new or an existing one)."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{name} {path!r} cannot be written: {existing!r} is not writable. Pass a writable directory."
    return None


def raise_errors(*errors: str | None) -> None:
    """Raise one ValueError listing every non-None problem in `errors`; do nothing if there is none."""
    problems = [error for error in errors if error]
    if len(problems) == 1:
        raise ValueError(problems[0])
    if problems:
        raise ValueError(f"{len(problems)} invalid options:\n" + "\n".join(f"  - {problem}" for problem in problems))


def _within(value, minimum, maximum, exclusive: bool) -> bool:
    if exclusive:
        return (minimum is None or value > minimum) and (maximum is None or value < maximum)
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _range_text(minimum, maximum, exclusive: bool) -> str:
    if minimum is not None and maximum is not None:
        low, high = ("(", ")") if exclusive else ("[", "]")
        return f" in {low}{_bound(minimum)}, {_bound(maximum)}{high}"
    if minimum is not None:
        return f" {'>' if exclusive else '>='} {_bound(minimum)}"
    if maximum is not None:
        return f" {'<' if exclusive else '<='} {_bound(maximum)}"
    return ""


def _bound(value) -> str:
    """An integer bound in full (4294967295, not 4.29497e+09); any other number short."""
    return str(value) if isinstance(value, int) else f"{value:g}"

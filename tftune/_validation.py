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

from collections.abc import Iterable, Sequence

# A ResNet halves the resolution five times: smaller inputs collapse to nothing.
MIN_IMAGE_SIZE = 32


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


def choice_error(name: str, value, choices: Sequence) -> str | None:
    """The problem with `value` as option `name` that must be one of `choices`, or None."""
    if value not in choices:
        return f"{name} must be one of {', '.join(repr(choice) for choice in choices)}; got {value!r}."
    return None


def image_size_error(name: str, value) -> str | None:
    """The problem with `value` as a (height, width) image size, or None: both integers >= MIN_IMAGE_SIZE."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Iterable)
        or len(tuple(value)) != 2
        or any(integer_error(name, side, minimum=MIN_IMAGE_SIZE) for side in value)
    ):
        return (
            f"{name} must be (height, width), two integers >= {MIN_IMAGE_SIZE} (a ResNet downsamples 32x); "
            f"got {value!r}."
        )
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
        return f" in {low}{minimum:g}, {maximum:g}{high}"
    if minimum is not None:
        return f" {'>' if exclusive else '>='} {minimum:g}"
    if maximum is not None:
        return f" {'<' if exclusive else '<='} {maximum:g}"
    return ""

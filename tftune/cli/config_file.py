"""The `--config FILE` of `tftune train` / `lr-find`: YAML or JSON options, with errors that quote the bad line."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

import yaml


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping and reads `5e-5` as a number.

    YAML 1.1 (PyYAML) reads a float only with a dot (`5.0e-5`); YAML 1.2 and
    JSON read `5e-5` as a number too, and so does a tftune config file.
    """

    def construct_mapping(self, node, deep=False):
        first_lines = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice, on lines {first_lines[key]} and {line}: keep one",
                    key_node.start_mark,
                )
            first_lines.setdefault(key, line)
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_config_file(path: str) -> dict:
    r"""The options of a `.yaml` / `.yml` / `.json` config file, keys with `_` for `-`; errors name the line.

    Example:

    ```python
    with open("run.yaml", "w") as config_file:
        config_file.write("epochs: 2\nlearning-rate: 5e-5\n")
    tftune.cli.config_file.read_config_file("run.yaml")  # {'epochs': 2, 'learning_rate': 5e-05}
    ```
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file {path!r} does not exist.")
    if not path.endswith((".yaml", ".yml", ".json")):
        raise ValueError(f"Config file {path!r} must end in .yaml, .yml or .json.")
    with open(path, encoding="utf-8") as config_file:
        text = config_file.read()
    if path.endswith(".json"):
        try:
            options = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Config file {path!r} is not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}."
            ) from None
    else:
        try:
            options = yaml.load(text, Loader=_ConfigLoader) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"Config file {path!r} is not valid YAML: {_yaml_problem(error, text)}.") from None
    if not isinstance(options, Mapping):
        raise ValueError(f"Config file {path!r} must hold a mapping of option: value; got {type(options).__name__}.")
    return {str(key).replace("-", "_"): value for key, value in options.items()}


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """The parser's problem at its line and column, quoting that line with `<here>` where the parser stopped.

    When the parser names where the construct it was reading began (`context`,
    e.g. the key missing its ':' a line earlier), that place is given too.
    """
    lines = text.splitlines()

    def place(mark) -> str:
        line = lines[mark.line] if mark.line < len(lines) else ""
        pointed = f"{line[:mark.column]}<here>{line[mark.column:]}".strip()
        return f"line {mark.line + 1}, column {mark.column + 1} ({pointed!r})"

    problem_mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    message = f"{place(problem_mark)}: {problem}" if problem_mark is not None else problem
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None and context_mark.line != getattr(problem_mark, "line", None):
        message += f", {context} at {place(context_mark)}"
    return message


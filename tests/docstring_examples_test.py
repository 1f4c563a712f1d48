"""Every ```python example in the docstrings of tftune's public names runs.

The examples are collected from the names re-exported by `tftune/__init__.py`
(functions, classes, and the public methods and properties those classes
define) and each one runs as its own test, in a fresh namespace holding only
`tftune`, `keras`, `np`, `tf` and `bert_dir`, from an empty current directory.
"""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune

_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _own_docstring(target) -> str:
    """The target's docstring, or "" when it only inherits one (from Keras, say)."""
    if isinstance(target, property):
        target = target.fget
    elif isinstance(target, (classmethod, staticmethod)):
        target = target.__func__
    if not getattr(target, "__doc__", None):
        return ""
    return inspect.getdoc(target) or ""


def _documented_targets():
    """(public name, object) pairs: each re-exported name, then its class's public members."""
    for name in sorted(vars(tftune)):
        public = getattr(tftune, name)
        if name.startswith("_") or inspect.ismodule(public):
            continue
        if not getattr(public, "__module__", "").startswith("tftune"):
            continue
        yield name, public
        if inspect.isclass(public):
            members = {}
            for klass in reversed(public.__mro__):
                if klass.__module__.startswith("tftune"):
                    members.update((attr, member) for attr, member in vars(klass).items() if not attr.startswith("_"))
            for attr in sorted(members):
                yield f"{name}.{attr}", members[attr]


def _examples():
    for name, target in _documented_targets():
        blocks = _PYTHON_BLOCK.findall(_own_docstring(target))
        for index, source in enumerate(blocks):
            yield pytest.param(name, source, id=name if len(blocks) == 1 else f"{name}[{index}]")


EXAMPLES = list(_examples())


def test_examples_are_collected():
    names = {example.values[0] for example in EXAMPLES}
    assert {"fit", "export_saved_model", "WarmupDecay", "RecipeConfig", "write_report"} <= names


@pytest.mark.slow
@pytest.mark.parametrize(("name", "source"), EXAMPLES)
def test_docstring_example_runs(name, source, bert_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"tftune": tftune, "keras": keras, "np": np, "tf": tf, "bert_dir": bert_dir}
    try:
        exec(compile(source, f"<docstring example of tftune.{name}>", "exec"), namespace)
    finally:
        # Without the full gc.collect() of every example (0.2 s each here); Python's own gc still runs.
        keras.backend.clear_session(free_memory=False)

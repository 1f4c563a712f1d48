"""Every ```python example in tftune's docstrings runs, and the values it states are checked.

The examples are collected from every public module of the package (a module
whose dotted name has no part starting with "_"): the module docstring, its
public functions and classes, and the public methods and properties those
classes define; an object re-exported elsewhere is collected once. Each one
runs as its own test, in a fresh namespace holding only `tftune`, `keras`,
`np`, `tf`, `text_backbone` and `image_backbone`, from an empty current
directory. There `text_backbone` is a 1-layer random twin of the offline
MiniLM folder (`tiny_bert_dir`) and `image_backbone` a small keras-hub ResNet
preset folder (`small_resnet_preset`, 146k parameters, where a user would
write "resnet50"): the examples show plumbing, and run in seconds.

A top-level expression whose line ends in a comment stating a value is
checked, so a stated result cannot drift from the real one:

    tftune.spread_schedule(epochs=3, backbone_groups=8)  # {0: 0, 1: 4, 2: 'all'}
    metrics["accuracy"]  # 0.667           (a float: equal to the digits written)
    splits.class_counts["validation"]  # {'neg': 2, 'pos': 2}: the stratified hold-out
    data.steps_per_epoch  # 2 batches of 32
    tftune.balanced_class_weights([870, 130])  # {0: 0.5747..., 1: 3.846...}
    report.paths["curves_png"], stages  # ..., [0, 1, 2]   (`...` matches anything)
    tensor.dtype  # int32                  (a bare name: the value's str() or .name)

The stated value is the longest start of the comment that is a Python literal
(prose may follow after a ":", "," or space). A comment with no literal start
(`print(summary)  # every group trainable`) is prose and not checked. In a
string, `...` stands for any text. Sequences match lists, tuples, NumPy arrays,
tensors and shapes element by element.
"""

import ast
import importlib
import inspect
import io
import pkgutil
import re
import tokenize

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune

_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Examples whose stated value is wrong, in files this test does not fix: each fails as expected (strict: once its
# docstring is fixed the test says so, and the entry goes).
_KNOWN_WRONG: dict[str, str] = {}
# Examples that need what only another test sets up, and that test runs them (so they are checked there).
_RUN_ELSEWHERE = {"tftune.export.formats": "tests/export_formats_test.py runs these client snippets on real exports"}
# A number written with a trailing "..." ("0.5747..."): the digits shown are its start.
_TRUNCATED_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+)\.\.\.")


def _public_modules() -> list[str]:
    names = [tftune.__name__]
    for module in pkgutil.walk_packages(tftune.__path__, f"{tftune.__name__}."):
        if not any(part.startswith("_") for part in module.name.split(".")):
            names.append(module.name)
    return sorted(names)


def _own_docstring(target) -> str:
    """The target's docstring, or "" when it only inherits one (from Keras, say)."""
    if isinstance(target, property):
        target = target.fget
    elif isinstance(target, (classmethod, staticmethod)):
        target = target.__func__
    doc = getattr(target, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _documented_targets():
    """(dotted name, object) pairs: each public module, its public functions and classes, their public members."""
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        yield module_name, module
        for name, public in sorted(vars(module).items()):
            if name.startswith("_") or getattr(public, "__module__", None) != module_name:
                continue
            if not (inspect.isclass(public) or inspect.isfunction(public)):
                continue
            yield f"{module_name}.{name}", public
            if inspect.isclass(public):
                members = {}
                for klass in reversed(public.__mro__):
                    if klass.__module__.startswith(tftune.__name__):
                        members.update((attr, member) for attr, member in vars(klass).items() if attr[0] != "_")
                for attr, member in sorted(members.items()):
                    if not inspect.isclass(member):  # a class attribute naming another class (a family's keras-hub one)
                        yield f"{module_name}.{name}.{attr}", member


def _examples():
    seen = set()
    for name, target in _documented_targets():
        if id(target) in seen or name in _RUN_ELSEWHERE:  # seen: a member inherited, collected with its class
            continue
        seen.add(id(target))
        blocks = _PYTHON_BLOCK.findall(_own_docstring(target))
        marks = [pytest.mark.xfail(reason=_KNOWN_WRONG[name], raises=AssertionError, strict=True)] if (
            name in _KNOWN_WRONG) else []
        for index, source in enumerate(blocks):
            yield pytest.param(name, source, id=name if len(blocks) == 1 else f"{name}[{index}]", marks=marks)


def _stated_value(comment: str):
    """The expected value a comment states, as an AST expression (None if the comment is prose)."""
    text = _TRUNCATED_NUMBER.sub(r"\1", comment.strip())
    if text.isidentifier() and text not in ("True", "False", "None"):
        expression = ast.Name(text)
        expression.source = text
        return expression
    cuts = [len(text)] + [index for index in range(len(text) - 1, 0, -1) if text[index] in ":, "]
    for cut in cuts:
        if text[:cut].rstrip().endswith(","):  # "'mean', what ..." states 'mean', not the tuple ('mean',)
            continue
        try:
            expression = ast.parse(text[:cut].strip(), mode="eval").body
            ast.literal_eval(expression)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
        expression.source = text[:cut].strip()
        expression.truncated = {match.group(1) for match in _TRUNCATED_NUMBER.finditer(comment)}
        return expression
    return None


def _as_list(actual):
    if isinstance(actual, tf.TensorShape):
        return actual.as_list()
    if tf.is_tensor(actual):
        actual = actual.numpy()
    if isinstance(actual, np.ndarray):
        return actual.tolist()
    return list(actual) if isinstance(actual, (list, tuple)) else None


def _number(actual):
    if tf.is_tensor(actual):
        actual = actual.numpy()
    if isinstance(actual, np.ndarray) and actual.ndim == 0:
        actual = actual.item()
    if isinstance(actual, np.generic):
        actual = actual.item()
    return actual if isinstance(actual, (int, float)) else None


def _matches(actual, expected: ast.expr, stated: ast.expr) -> bool:
    """Whether `actual` is the value `expected` (a node of the `stated` literal, `...` a wildcard) states."""
    if isinstance(expected, ast.Constant) and expected.value is Ellipsis:
        return True
    if isinstance(expected, ast.Name):
        return str(actual) == expected.id or getattr(actual, "name", None) == expected.id
    if isinstance(expected, (ast.Tuple, ast.List)):
        items = _as_list(actual)
        return items is not None and len(items) == len(expected.elts) and all(
            _matches(item, element, stated) for item, element in zip(items, expected.elts, strict=True)
        )
    if isinstance(expected, ast.Dict):
        if not isinstance(actual, dict) or len(actual) != len(expected.keys):
            return False
        pairs = [(ast.literal_eval(key), value) for key, value in zip(expected.keys, expected.values, strict=True)]
        return all(key in actual and _matches(actual[key], value, stated) for key, value in pairs)
    value = ast.literal_eval(expected)
    if isinstance(value, str):
        if not isinstance(actual, str):
            return False
        pattern = ".*".join(map(re.escape, re.split(r"\s*\.\.\.\s*", value)))  # "..." and the spaces around it
        return re.fullmatch(pattern, actual, re.DOTALL) is not None
    if isinstance(value, bool) or value is None:
        return actual is value or (isinstance(actual, (bool, np.bool_)) and bool(actual) is value)
    number = _number(actual)
    if number is None or isinstance(number, bool):
        return False
    if isinstance(value, float):
        # "0.667" is 0.667 rounded, "0.5747..." 0.5747 truncated; "3." (NumPy's 3.0) and "1e-4" are exact.
        written = ast.get_source_segment(stated.source, expected) or repr(value)
        decimals = written.split(".")[1] if "." in written and "e" not in written.lower() else ""
        if not decimals:
            return abs(number - value) <= 1e-9 * max(1.0, abs(value))
        if written in stated.truncated:
            return 0 <= abs(number) - abs(value) < 10.0 ** -len(decimals) and number * value >= 0
        return abs(number - value) <= 0.5 * 10.0 ** -len(decimals)
    return number == value


def _checked_statements(source: str):
    """(statement, stated value as an AST) for each top-level statement; the value is None when not checked."""
    comments = {
        token.start[0]: token.string[1:]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    for statement in ast.parse(source).body:
        expected = None
        if isinstance(statement, ast.Expr) and statement.end_lineno in comments:
            expected = _stated_value(comments[statement.end_lineno])
        yield statement, expected


def run_example(source: str, namespace: dict, filename: str) -> int:
    """Run an example statement by statement, checking each stated value; return how many were checked."""
    checked = 0
    for statement, expected in _checked_statements(source):
        if expected is None:
            exec(compile(ast.Module([statement], type_ignores=[]), filename, "exec"), namespace)
            continue
        actual = eval(compile(ast.Expression(statement.value), filename, "eval"), namespace)
        line = ast.get_source_segment(source, statement)
        assert _matches(actual, expected, expected), (
            f"{filename}: `{line}` is {actual!r}, but the example states {expected.source}"
        )
        checked += 1
    return checked


EXAMPLES = list(_examples())


def test_examples_are_collected():
    names = {example.values[0] for example in EXAMPLES}
    assert {
        "tftune.train.fit",
        "tftune.export.publishing.export_saved_model",
        "tftune.schedules.WarmupDecay",
        "tftune.recipe.config.RecipeConfig",
        "tftune.report.write_report",
        "tftune.unfreeze.callback.GradualUnfreezing",
    } <= names
    # Names reachable only through their module (not re-exported by tftune) are collected too.
    assert {
        "tftune.recipe.run.sweep_learning_rate",
        "tftune.recipe.data.load_splits",
        "tftune.cli.arguments.parse_recipe_args",
    } <= names
    sources = [example.values[1] for example in EXAMPLES]
    stated = sum(expected is not None for source in sources for _, expected in _checked_statements(source))
    assert stated >= 40


def test_stated_values_are_compared():
    namespace = {"np": np, "tf": tf}
    assert run_example("x = [1, 2]\nlen(x)  # 2\nprint(x)  # every item\n", namespace, "<ok>") == 1
    passing = [
        "{0: 0.5, 1: 'all'}  # {0: 0.5, 1: 'all'}",
        "2 / 3  # 0.667",
        "10 / 7  # 1.4285...",
        "3  # 3 batches of 32",
        "'mean'  # 'mean', what the checkpoint was trained with",
        "np.zeros((1, 2)).shape  # (1, 2): one example, two classes",
        "tf.constant([[1.5, 2.0]])  # [[1.5, 2.]]",
        "1e-4 * 2  # 2e-4",
        "tf.zeros((2, 3)).shape  # (2, 3)",
        "tf.constant(1).dtype  # int32",
        "('run/a.png', [0, 1])  # ..., [0, 1]",
        "['accuracy 0.6 is low, see the report']  # ['accuracy 0.6 is low ...']",
        "np.float32(0.25)  # 0.25",
        "None  # None",
    ]
    for source in passing:
        assert run_example(source, namespace, "<passing>") == 1, source
    failing = [
        "1 + 1  # 3",
        "2 / 3  # 0.666",
        "2.4  # 2.",
        "10 / 7  # 1.4286...",
        "'spread'  # 'head_first'",
        "(2, 3)  # (2, 3, 1)",
        "{'a': 1}  # {'a': 2}",
        "tf.constant(1).dtype  # float32",
        "0  # False",
        "'a run'  # ['a run']",
    ]
    for source in failing:
        with pytest.raises(AssertionError, match="but the example states"):
            run_example(source, namespace, "<failing>")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "source"), EXAMPLES)
def test_docstring_example_runs(name, source, tiny_bert_dir, small_resnet_preset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {
        "tftune": tftune, "keras": keras, "np": np, "tf": tf, "text_backbone": tiny_bert_dir,
        "image_backbone": small_resnet_preset,
    }
    try:
        run_example(source, namespace, f"<docstring example of {name}>")
    finally:
        # Without the full gc.collect() of every example (0.2 s each here); Python's own gc still runs.
        keras.backend.clear_session(free_memory=False)

"""The private Keras / keras-hub / TensorFlow APIs tftune relies on (tftune/_keras_private.py), each exercised here.

An upgrade that changes one fails here first, with a message naming the
function in tftune/_keras_private.py to update and the installed versions.
"""

import ast
import contextlib
import importlib.util
import json
import os
import pathlib

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune._keras_private import (
    base_kernel,
    checkpoint_pooling,
    is_registered_op,
    nested_layers,
    optimizer_routes,
    rebuild_multi_optimizer,
    set_own_trainable,
)

_PACKAGE = pathlib.Path(tftune.__file__).parent
_PRIVATE_PACKAGES = ("keras.src", "keras_hub.src", "tensorflow.python")


@contextlib.contextmanager
def _canary(function):
    """Fail with what to update when the private API behind `function` no longer behaves as tftune relies on."""
    try:
        yield
    except Exception as error:
        pytest.fail(
            f"tftune/_keras_private.py:{function.__name__} relies on a private API that changed under "
            f"keras {keras.__version__} / keras-hub {keras_hub.__version__} / tensorflow {tf.__version__}: "
            f"{type(error).__name__}: {str(error).rstrip('.')}. Update that function (its docstring says what it "
            f"needs)."
        )


def _nested_model():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="inner_dense")], name="inner")
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1, name="outer_dense")(inner(inputs))
    return keras.Model(inputs, outputs, name="outer"), inner


def test_nested_layers_lists_self_and_every_depth():
    model, inner = _nested_model()
    with _canary(nested_layers):
        names = [layer.name for layer in nested_layers(model)]
        assert names[0] == "outer" and {"inner", "inner_dense", "outer_dense"} <= set(names)
        assert [layer.name for layer in nested_layers(inner) if not isinstance(layer, keras.layers.InputLayer)] == [
            "inner", "inner_dense"]


def test_set_own_trainable_does_not_recurse():
    model, inner = _nested_model()
    inner.trainable = False  # the public setter recurses: inner_dense is frozen too
    with _canary(set_own_trainable):
        set_own_trainable(inner, True)
        assert inner.trainable and not inner.get_layer("inner_dense").trainable
        assert [weight.path for weight in model.trainable_weights] == ["outer_dense/kernel", "outer_dense/bias"]


def test_rebuild_multi_optimizer_reroutes_without_new_state():
    first, second = keras.layers.Dense(2, name="first"), keras.layers.Dense(1, name="second")
    first.build((None, 3))
    second.build((None, 2))
    head = keras.optimizers.Adam(0.1, name="head_optimizer")
    multi_optimizer = keras.optimizers.MultiOptimizer(
        keras.optimizers.OptimizerMap(head, {variable.path: keras.optimizers.Adam(0.1) for variable in first.weights})
    )
    every_variable = [*first.weights, *second.weights]
    multi_optimizer.build(every_variable)
    multi_optimizer.apply([tf.ones_like(variable) for variable in every_variable], every_variable)
    state = [variable.numpy().copy() for variable in multi_optimizer.variables]
    with _canary(rebuild_multi_optimizer):
        rebuild_multi_optimizer(multi_optimizer, second.weights)
        # The router now takes the second layer alone; the inner optimizers kept their variables and state.
        assert [variable.numpy().tolist() for variable in multi_optimizer.variables] == [
            value.tolist() for value in state]
        before = second.kernel.numpy().copy()
        multi_optimizer.apply([tf.ones_like(variable) for variable in second.weights], second.weights)
        assert int(multi_optimizer.iterations.numpy()) == 2 and int(head.iterations.numpy()) == 2
        assert not np.allclose(second.kernel.numpy(), before)


def test_is_registered_op_sees_ops_loaded_at_run_time():
    import tensorflow_text  # noqa: F401  (registers its ops in this process, not in tf.raw_ops)

    assert not hasattr(tf.raw_ops, "CaseFoldUTF8")  # why tftune needs the registry
    with _canary(is_registered_op):
        assert is_registered_op("MatMul") and is_registered_op("CaseFoldUTF8")
        assert not is_registered_op("NoSuchOpAnywhere")


def test_checkpoint_pooling_reads_the_sentence_transformers_config(bert_dir, tmp_path):
    cls_dir = tmp_path / "cls"
    os.makedirs(cls_dir / "1_Pooling")
    (cls_dir / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    with _canary(checkpoint_pooling):
        assert checkpoint_pooling(bert_dir) == "mean"  # MiniLM's 1_Pooling/config.json
        assert checkpoint_pooling(cls_dir) == "cls"
        assert checkpoint_pooling(tmp_path) is None


def _imports(path: pathlib.Path):
    """(line, imported module, imported name or None) for each import in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.lineno, node.module, alias.name) for alias in node.names)


def test_private_apis_are_imported_only_by_keras_private():
    importers = {}
    for path in sorted(_PACKAGE.rglob("*.py")):
        for line, module, name in _imports(path):
            dotted = f"{module}.{name}" if name else module
            if path.name != "_keras_private.py" and dotted.startswith(_PRIVATE_PACKAGES):
                importers.setdefault(str(path.relative_to(_PACKAGE)), []).append(f"line {line}: {dotted}")
    assert not importers, (
        f"Only tftune/_keras_private.py may import {_PRIVATE_PACKAGES}; wrap the private API there (with a canary "
        f"test here). Found {importers}."
    )


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # its parent is a module, not a package
        return False


def test_no_module_imports_another_modules_underscore_name():
    shared = []
    for path in sorted(_PACKAGE.rglob("*.py")):
        for line, module, name in _imports(path):
            if not module.startswith("tftune") or not name or not name.startswith("_") or name.startswith("__"):
                continue
            if not _is_module(f"{module}.{name}"):  # a private module of the package (_validation) is fine
                shared.append(f"{path.relative_to(_PACKAGE)}:{line}: from {module} import {name}")
    assert not shared, f"What modules share is public within the package (no leading underscore): {shared}"


def test_base_kernel_is_the_frozen_variable_of_a_lora_layer():
    for layer in (keras.layers.Dense(3), keras.layers.EinsumDense("ab,bc->ac", output_shape=3)):
        layer.build((None, 4))
        layer.enable_lora(2)
        with _canary(base_kernel):
            kernel = base_kernel(layer)
            assert isinstance(kernel, keras.Variable) and not kernel.trainable and tuple(kernel.shape) == (4, 3)
            layer.lora_kernel_b.assign(np.ones(layer.lora_kernel_b.shape, "float32"))
            assert not np.allclose(np.asarray(layer.kernel), np.asarray(kernel))  # `kernel` merges the adapters


def test_optimizer_routes_is_the_map_a_multi_optimizer_routes_by():
    adam, sgd = keras.optimizers.Adam(), keras.optimizers.SGD()
    multi = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(adam, {"dense/kernel": sgd}))
    with _canary(optimizer_routes):
        table = optimizer_routes(multi)
        assert list(table) == ["dense/kernel"] and table["dense/kernel"] is sgd
        del table["dense/kernel"]
        table["other/kernel"] = sgd
        assert optimizer_routes(multi)["other/kernel"] is sgd and optimizer_routes(multi)["dense/kernel"] is adam

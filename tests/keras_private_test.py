"""The private Keras APIs tftune relies on (tftune/_keras_private.py): these fail loudly if Keras changes them."""

import keras

from tftune._keras_private import nested_layers, set_own_trainable


def _nested_model():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="inner_dense")], name="inner")
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1, name="outer_dense")(inner(inputs))
    return keras.Model(inputs, outputs, name="outer"), inner


def test_nested_layers_lists_self_and_every_depth():
    model, inner = _nested_model()
    names = [layer.name for layer in nested_layers(model)]
    assert names[0] == "outer" and {"inner", "inner_dense", "outer_dense"} <= set(names)
    assert [layer.name for layer in nested_layers(inner) if not isinstance(layer, keras.layers.InputLayer)] == [
        "inner", "inner_dense"]


def test_set_own_trainable_does_not_recurse():
    model, inner = _nested_model()
    inner.trainable = False  # the public setter recurses: inner_dense is frozen too
    set_own_trainable(inner, True)
    assert inner.trainable and not inner.get_layer("inner_dense").trainable
    assert [weight.path for weight in model.trainable_weights] == ["outer_dense/kernel", "outer_dense/bias"]

"""Makes sure Keras runs on TensorFlow before anything imports keras."""

import os

_REQUIRED_BACKEND = "tensorflow"


def ensure_tensorflow_backend() -> None:
    """Select the TensorFlow backend for Keras, or fail clearly.

    An unset `KERAS_BACKEND` is set to "tensorflow". A user's explicit choice
    is never overwritten: if it names another backend, or if keras was already
    imported with another backend, a `RuntimeError` explains how to fix it.
    """
    requested = os.environ.setdefault("KERAS_BACKEND", _REQUIRED_BACKEND)
    if requested != _REQUIRED_BACKEND:
        raise RuntimeError(
            f"tftune needs the TensorFlow backend of Keras (tf.distribute, "
            f"SavedModel export), but KERAS_BACKEND={requested!r}. Unset it or "
            f"run with KERAS_BACKEND=tensorflow."
        )
    import keras

    active = keras.backend.backend()
    if active != _REQUIRED_BACKEND:
        raise RuntimeError(
            f"keras was imported with the {active!r} backend before tftune "
            f"(from ~/.keras/keras.json or an earlier import). tftune needs "
            f"'tensorflow': set KERAS_BACKEND=tensorflow before importing keras."
        )

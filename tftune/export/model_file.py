"""Load a tftune classifier saved as `.keras`, with errors that say what is wrong with the file."""

from __future__ import annotations

import logging
import os
import zipfile

import keras

from tftune.classifiers import ImageClassifier, TextClassifier

_logger = logging.getLogger(__name__)

_SAVE_HINT = "Save the trained model with model.save('model.keras') and pass that file"


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """Load a tftune `TextClassifier` / `ImageClassifier` from a `.keras` file, or the newest one in a directory.

    What `tftune export` and `tftune evaluate` load. Raises `FileNotFoundError`
    when nothing is there, and `ValueError` naming the file when it is not a
    readable Keras archive (empty, truncated, another format) or holds another
    kind of model.

    Example:

    ```python
    model = tftune.build_image_classifier(image_backbone, 3, image_size=(32, 32), weights=None)
    model.save("flowers.keras")
    tftune.load_keras_model("flowers.keras").kind  # 'image'
    ```
    """
    path = _model_file(os.fspath(path))
    size = os.path.getsize(path)
    if size == 0 or not zipfile.is_zipfile(path):
        content = "is empty (0 bytes)" if size == 0 else f"({size} bytes) is not a zip archive"
        raise ValueError(
            f"{path!r} exists but is not a readable Keras archive: it {content}, while model.save writes "
            f"a '.keras' zip. It may be truncated by an interrupted save or copy, or be another format. "
            f"{_SAVE_HINT}, or another checkpoint."
        )
    try:
        model = keras.models.load_model(path)
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path!r} is a zip archive but not a loadable Keras model ({type(error).__name__}: {error}). "
            f"{_SAVE_HINT}."
        ) from error
    problem = classifier_error(model)
    if problem:
        raise ValueError(f"{path!r} holds a model tftune cannot use: {problem}")
    _logger.info("Loaded %s %s from %s", model.kind, type(model).__name__, path)
    return model


def classifier_error(model) -> str | None:
    """The problem with `model` as a tftune classifier, or None."""
    if isinstance(model, (TextClassifier, ImageClassifier)):
        return None
    return (
        f"a {type(model).__name__} is not a tftune TextClassifier or ImageClassifier; build one with "
        f"tftune.build_text_classifier / build_image_classifier (or load its '.keras' file with "
        f"tftune.load_keras_model)."
    )


def _model_file(path: str) -> str:
    """`path` if it is a `.keras` file, else the newest `.keras` file in the directory `path`."""
    if os.path.isdir(path):
        checkpoints = [os.path.join(path, entry) for entry in os.listdir(path) if entry.endswith(".keras")]
        if not checkpoints:
            raise ValueError(
                f"Directory {path!r} holds no '.keras' file. Pass a '.keras' model file, or a directory where "
                f"model.save or keras.callbacks.ModelCheckpoint(save_weights_only=False) saved full models."
            )
        return max(checkpoints, key=os.path.getmtime)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such model file or directory: {path!r}. {_SAVE_HINT}.")
    if not path.endswith(".keras"):
        raise ValueError(
            f"{path!r} is not a '.keras' file (a '.weights.h5' file lacks the architecture and label names). "
            f"{_SAVE_HINT}."
        )
    return path

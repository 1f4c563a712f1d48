"""The SavedModel client: load an export with TensorFlow alone and run its signatures, as a model server would."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tftune._validation import integer_error, raise_errors
from tftune.export._layout import LABELS_ASSET, version_dir
from tftune.export.assets import read_metadata
from tftune.export.signatures import IMAGES_SIGNATURE, MODALITIES, SERVING_DEFAULT
from tftune.families import IMAGE, TEXT

_logger = logging.getLogger(__name__)

# The first bytes of the formats tf.io.decode_image reads.
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One served prediction: the input, its label, class id and probability.

    `tftune.predict_from_saved_model` returns them (see its example).

    Example:

    ```python
    prediction = tftune.Prediction(input="a fine film", label="fresh", class_id=1, probability=0.5731)
    str(prediction)  # 'fresh\\t0.5731\\ta fine film'
    ```
    """

    input: str
    label: str
    class_id: int
    probability: float

    def __str__(self) -> str:
        return f"{self.label}\t{self.probability:.4f}\t{self.input}"


class ServingModel:
    """An exported tftune SavedModel loaded with TensorFlow alone: its labels, kind, version, and predictions.

    Build one with `tftune.load_serving_model`. No Keras or tftune object is
    rebuilt: the graph runs as TF Serving runs it. `image_size` is the
    (height, width) an image model resizes to (None for text models); images
    of any size can be given. `modality` is the `tftune.families.Modality` the
    export's `kind` names (`served.modality.raw_input` is its raw input).

    `saved_model` is the `tf.saved_model.load` result, for the other
    signatures (`served.saved_model.signatures[name]`).

    `tftune.load_serving_model` returns one (see its example).
    """

    def __init__(self, path: str, kind: str, version: int, labels: list[str], image_size, saved_model):
        self.path = path
        self.kind = kind
        self.modality = MODALITIES[kind]
        self.version = version
        self.labels = labels
        self.image_size = None if image_size is None else tuple(image_size)
        self.saved_model = saved_model

    def __repr__(self) -> str:
        return (
            f"ServingModel(path={self.path!r}, kind={self.kind!r}, version={self.version}, labels={self.labels}, "
            f"image_size={self.image_size})"
        )

    def predict_probabilities(self, inputs, batch_size: int = 32) -> np.ndarray:
        """Class probabilities `[n, len(labels)]` for raw texts (text model) or float images `[n, h, w, 3]` 0..255.

        Texts run through `serving_default` (tokenized in the graph), images
        through `serve_images` (resized in the graph), `batch_size` at a time.
        """
        raise_errors(integer_error("batch_size", batch_size, minimum=1))
        expected = _SERVED_INPUTS[self.modality]
        values = expected.probability_values(inputs)
        if values is None:
            raise ValueError(_wrong_inputs(self, "probability_inputs", _describe(inputs)))
        return _probabilities(self, expected.probability_signature, values, batch_size)


def load_serving_model(path: str | os.PathLike) -> ServingModel:
    """Load an exported model (`saved_models/<name>` = its newest version, or `saved_models/<name>/<version>`).

    Loads with `tf.saved_model.load` (TF Text's ops registered for text
    models); labels come from the `labels.txt` asset, the kind from the export
    metadata.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    tftune.export_saved_model(model, "saved_models", name="reviews", warmup=False, verify=False)
    served = tftune.load_serving_model("saved_models/reviews")
    served.kind, served.version, served.labels  # ('text', 1, ['rotten', 'fresh'])
    served.predict_probabilities(["a fine film", "a dull mess"]).shape  # (2, 2)
    ```
    """
    saved_model_dir = version_dir(os.fspath(path))
    metadata = read_metadata(saved_model_dir)  # first: a SavedModel that tftune did not export is not "incomplete"
    check_saved_model_files(saved_model_dir)
    with open(os.path.join(saved_model_dir, "assets", LABELS_ASSET), encoding="utf-8") as labels_file:
        labels = labels_file.read().splitlines()
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops text SavedModels use)

    loaded = tf.saved_model.load(saved_model_dir)
    name = os.path.basename(os.path.normpath(saved_model_dir))
    version = int(name) if name.isdigit() else int(metadata["version"])
    _logger.info("Loaded %s model %s (version %d, %d classes)", metadata["kind"], saved_model_dir, version, len(labels))
    return ServingModel(saved_model_dir, metadata["kind"], version, labels, metadata.get("image_size"), loaded)


def check_saved_model_files(saved_model_dir: str) -> None:
    """Raise `FileNotFoundError` naming what a SavedModel directory lacks: its variables or its labels.

    A copy that left out `variables/` (or a truncated one) would otherwise
    fail inside TensorFlow's loader.

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    exported = tftune.export_saved_model(model, "saved_models", name="reviews", warmup=False, verify=False)
    tftune.export.client.check_saved_model_files(exported.path)  # complete: no error
    ```
    """
    variables = os.path.join(saved_model_dir, "variables")
    entries = os.listdir(variables) if os.path.isdir(variables) else []
    required = {
        os.path.join("variables", "variables.index"): "variables.index" in entries,
        os.path.join("variables", "variables.data-*"): any(entry.startswith("variables.data-") for entry in entries),
        os.path.join("assets", LABELS_ASSET): os.path.isfile(os.path.join(saved_model_dir, "assets", LABELS_ASSET)),
    }
    missing = [name for name, present in required.items() if not present]
    if missing:
        raise FileNotFoundError(
            f"The SavedModel {saved_model_dir!r} is incomplete: it lacks {', '.join(missing)} (copied without its "
            f"variables/ or assets/ folder, or the copy was cut short). Copy the whole version directory again, "
            f"or re-export it with `tftune export MODEL.keras`."
        )


def predict_from_saved_model(
    saved_model_dir: str | os.PathLike, inputs: Sequence[str], signature: str = SERVING_DEFAULT
) -> list[Prediction]:
    """Run an exported SavedModel on raw inputs, the way a TF Serving client sees it.

    What `tftune predict SAVED_MODEL_DIR INPUT...` runs. Inputs are texts for
    text models and JPEG / PNG file paths for image models; the other kind
    raises a `ValueError` saying which inputs fit, as do empty inputs and
    image files that do not decode (named, before the model is loaded).
    `saved_model_dir` is a version directory or a model directory (its
    highest version is used).

    Example:

    ```python
    model = tftune.build_text_classifier(text_backbone, 2, sequence_length=16, labels=["rotten", "fresh"])
    tftune.export_saved_model(model, "saved_models", name="reviews", warmup=False, verify=False)
    for prediction in tftune.predict_from_saved_model("saved_models/reviews", ["a fine film", "a dull mess"]):
        print(prediction.label, prediction.probability)  # the untrained head: near 0.5 each
    ```
    """
    inputs = list(inputs)
    if not inputs:
        raise ValueError("predict needs at least one input: texts for a text model, image files for an image model.")
    empty = [position for position, item in enumerate(inputs, start=1) if isinstance(item, str) and not item.strip()]
    if empty:
        raise ValueError(
            f"predict input(s) {', '.join(map(str, empty))} of {len(inputs)} are empty (or only whitespace): "
            f"{[inputs[position - 1] for position in empty]!r}. There is nothing to classify in an empty input. "
            f"Give the text to classify (quote it on the command line) or an image file path."
        )
    broken = _undecodable_images(inputs)
    if broken:
        raise ValueError(
            f"{len(broken)} image file(s) cannot be decoded: {'; '.join(broken)}. Each is truncated or "
            f"corrupt: re-save or re-download it, or leave it out."
        )
    served = load_serving_model(saved_model_dir)
    if signature != SERVING_DEFAULT:
        available = sorted(served.saved_model.signatures)
        raise ValueError(
            f"signature={signature!r}: predict runs '{SERVING_DEFAULT}', the raw-input signature "
            f"('{served.modality.raw_input}') of this {served.modality} model; {served.path!r} has {available}. "
            f"Call the others with tf.saved_model.load(...).signatures[name]."
        )
    served_inputs = _SERVED_INPUTS[served.modality]
    problem = served_inputs.predict_error(inputs)
    if problem:
        raise ValueError(_wrong_inputs(served, "predict_inputs", problem))
    probabilities = _probabilities(served, SERVING_DEFAULT, served_inputs.predict_values(inputs), batch_size=32)
    class_ids = np.argmax(probabilities, axis=-1)
    return [
        Prediction(str(item), served.labels[class_id], int(class_id), float(row[class_id]))
        for item, class_id, row in zip(inputs, class_ids, probabilities, strict=True)
    ]


def _probabilities(served: ServingModel, signature: str, values: np.ndarray, batch_size: int) -> np.ndarray:
    """The "probabilities" output of `served`'s `signature` on `values`, `batch_size` at a time."""
    function = served.saved_model.signatures[signature]
    (input_name,) = function.structured_input_signature[1]
    batches = [
        function(**{input_name: tf.constant(values[start : start + batch_size])})["probabilities"].numpy()
        for start in range(0, len(values), batch_size)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, len(served.labels)), "float32")


def _wrong_inputs(served: ServingModel, entry_point: str, got: str) -> str:
    """The error for inputs of the other kind: what `served` takes at `entry_point` and what it got."""
    this = _SERVED_INPUTS[served.modality]
    (other,) = (inputs for modality, inputs in _SERVED_INPUTS.items() if modality != served.modality)
    takes, noun = getattr(this, entry_point)
    return (
        f"{served.path!r} is {this.model_noun}: it takes {takes}; got {got}. "
        f"Pass {noun}, or use {other.model_noun}'s export for {getattr(other, entry_point)[1]}."
    )


def _texts(inputs) -> np.ndarray | None:
    """`inputs` (one string or a list of them) as a string array, or None when they are not texts."""
    texts = np.asarray([inputs] if isinstance(inputs, str) else inputs, dtype=object)
    if texts.ndim != 1 or not all(isinstance(text, str) for text in texts):
        return None
    return texts.astype(str)


def _images(inputs) -> np.ndarray | None:
    """`inputs` as a float32 `[n, height, width, 3]` array, or None when they are not images."""
    images = np.asarray(inputs)
    if images.dtype.kind not in "fiu" or images.ndim != 4 or images.shape[-1] != 3:
        return None
    return images.astype("float32")


def _text_inputs_error(inputs: list) -> str | None:
    """What is wrong with `inputs` for a text model's predict (image files, only file paths), or None."""
    images = [item for item in inputs if _is_image_file(item)]
    if images:
        return f"image files {images!r:.300}"
    if all(os.path.isfile(item) for item in inputs):
        return f"only file paths {inputs!r:.300} (predict classifies the strings themselves, not file contents)"
    return None


def _image_files_error(inputs: list) -> str | None:
    """What is wrong with `inputs` for an image model's predict (missing files, not images), or None."""
    missing = [item for item in inputs if not os.path.isfile(item)]
    if missing:
        return f"{missing!r:.300}, which are not existing files"
    not_images = [item for item in inputs if not _is_image_file(item)]
    if not_images:
        return f"files {not_images!r:.300}, which are not JPEG / PNG / GIF / BMP images"
    return None


def _undecodable_images(inputs: list) -> list[str]:
    """The inputs that are image files (by their first bytes) but do not decode as the serving graph decodes them."""
    broken = []
    for path in inputs:
        if not _is_image_file(path):
            continue
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError as error:
            broken.append(f"{path} ({_op_message(error)})")
    return broken


def _op_message(error: tf.errors.OpError) -> str:
    """A TensorFlow op error's own words, without the function and op names around them."""
    return re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:\w+\].*$", "", error.message).strip()


def _is_image_file(path: str) -> bool:
    """Whether `path` is an existing file that starts like an image tf.io.decode_image reads."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as image_file:
        return image_file.read(8).startswith(_IMAGE_SIGNATURES)


def _describe(inputs) -> str:
    if isinstance(inputs, np.ndarray):
        return f"an array of {inputs.dtype} with shape {inputs.shape}"
    return f"{type(inputs).__name__} {inputs!r:.120}"


@dataclasses.dataclass(frozen=True)
class _ServedInputs:
    """What a served model of one modality takes: `(takes, short name)` per entry point, and how inputs are read."""

    model_noun: str
    probability_signature: str
    probability_inputs: tuple[str, str]
    # `predict_probabilities` inputs as the signature's array, or None when they do not fit.
    probability_values: Callable
    predict_inputs: tuple[str, str]
    # `predict` inputs: the problem with them (or None), and the array `serving_default` takes.
    predict_error: Callable
    predict_values: Callable


_SERVED_INPUTS = {
    TEXT: _ServedInputs(
        model_noun="a text model",
        probability_signature=SERVING_DEFAULT,
        probability_inputs=("raw texts (a list of strings)", "texts"),
        probability_values=_texts,
        predict_inputs=(f"texts, fed to its '{SERVING_DEFAULT}' signature (input '{TEXT.raw_input}')", "texts"),
        predict_error=_text_inputs_error,
        predict_values=lambda inputs: np.asarray(inputs, dtype=str),
    ),
    IMAGE: _ServedInputs(
        model_noun="an image model",
        probability_signature=IMAGES_SIGNATURE,
        probability_inputs=("float images [n, height, width, 3], RGB 0..255", "images"),
        probability_values=_images,
        predict_inputs=(
            f"JPEG / PNG / GIF / BMP file paths, whose bytes feed its '{SERVING_DEFAULT}' signature "
            f"(input '{IMAGE.raw_input}')",
            "image files",
        ),
        predict_error=_image_files_error,
        predict_values=lambda paths: np.asarray([tf.io.read_file(path).numpy() for path in paths], dtype=object),
    ),
}

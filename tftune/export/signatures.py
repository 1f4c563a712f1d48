"""The serving module a SavedModel holds, and its signatures: `serving_default` on raw inputs, plus a tensor one.

The module holds the Keras model (and, for text, its tokenizing
preprocessor) with `tf.function` signatures, so the SavedModel loads in a
process that imports only `tensorflow` (plus `tensorflow_text` for the
tokenizer ops): no tftune, keras or keras-hub Python at serving time.

Outputs of every signature: `probabilities` float32 `[batch, classes]`,
`class_id` int64 `[batch]`, `label` string `[batch]`, and with `top_k=k` also
`top_k_probabilities`, `top_k_class_ids`, `top_k_labels` `[batch, k]`.

| model | signature         | inputs                                                          |
|-------|-------------------|-----------------------------------------------------------------|
| text  | `serving_default` | `text` string `[batch]` (tokenized in the graph)                |
| text  | `serve_tokens`    | the backbone's inputs (`token_ids`, ...) int32 `[batch, seq]`   |
| image | `serving_default` | `image_bytes` string `[batch]` (JPEG / PNG, decoded in the graph) |
| image | `serve_images`    | `images` float32 `[batch, height, width, 3]`, RGB 0..255        |
"""

from __future__ import annotations

import os
import tempfile

import keras
import tensorflow as tf

from tftune.classifiers import IMAGE_INPUT
from tftune.export._layout import LABELS_ASSET
from tftune.families import IMAGE, TEXT, Modality, resize_image

SERVING_DEFAULT = "serving_default"
TOKENS_SIGNATURE = TEXT.tensor_signature
IMAGES_SIGNATURE = IMAGE.tensor_signature
TEXT_INPUT = TEXT.raw_input
IMAGE_BYTES_INPUT = IMAGE.raw_input
# Each modality by its name, the `kind` an export's metadata holds.
MODALITIES: dict[str, Modality] = {modality.name: modality for modality in (TEXT, IMAGE)}
# serving_default's one input, and the tensor signature, per kind name (for clients that read the kind from metadata).
RAW_INPUTS = {name: modality.raw_input for name, modality in MODALITIES.items()}
TENSOR_SIGNATURES = {name: modality.tensor_signature for name, modality in MODALITIES.items()}


class _ServingModule(tf.Module):
    """What the SavedModel holds: the Keras model's variables, its preprocessor, the label table.

    The Keras model is deliberately not an attribute (Keras' own `ExportArchive`
    tracks variable lists the same way): `tf.saved_model.save` traces every
    `tf.function` it finds on a tracked object, and each Keras model (the
    classifier, its backbone) offers a default `serving_default` that calls the
    model without `training`. Those extra traces are what failed: a backbone
    with free image sizes (MobileNetV5's fusion adapter needs static ones), or
    one run in training mode (the classifier's `Resizing` layer defaults to
    `training=True` and Keras passes that on to the layers after it) whose
    dropout draws from seed generators TensorFlow cannot reach.
    """

    def __init__(self, model: keras.Model, labels_path: str, top_k: int | None):
        super().__init__(name="tftune_serving")
        self.model_variables = list(model.variables)
        self.preprocessor = getattr(model, "preprocessor", None)
        self.top_k = top_k
        # A string filename becomes a tracked tf.saved_model.Asset: the file is
        # copied into the SavedModel's assets/ and read when the model loads.
        self.label_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                labels_path,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )

    def outputs(self, model: keras.Model, model_inputs) -> dict[str, tf.Tensor]:
        probabilities = tf.cast(model(model_inputs, training=False), tf.float32)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        outputs = {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": self.label_table.lookup(class_id),
        }
        if self.top_k:
            top_probabilities, top_ids = tf.math.top_k(probabilities, k=self.top_k)
            top_ids = tf.cast(top_ids, tf.int64)
            outputs.update(
                top_k_probabilities=top_probabilities,
                top_k_class_ids=top_ids,
                top_k_labels=self.label_table.lookup(top_ids),
            )
        return outputs


def save_serving_model(model: keras.Model, labels: list[str], top_k: int | None, export_dir: str) -> dict[str, dict]:
    """Write `model` as a SavedModel with its signatures to `export_dir`; return each signature's specs."""
    with tempfile.TemporaryDirectory() as labels_dir:
        labels_path = os.path.join(labels_dir, LABELS_ASSET)
        with open(labels_path, "w", encoding="utf-8") as labels_file:
            labels_file.write("".join(f"{label}\n" for label in labels))
        module = _ServingModule(model, labels_path, top_k)
        signatures = _SIGNATURE_BUILDERS[model.modality](module, model)
        tf.saved_model.save(module, export_dir, signatures=signatures)
    return {
        name: {
            "inputs": {spec.name: _spec_json(spec) for spec in tf.nest.flatten(function.structured_input_signature)},
            "outputs": {key: _spec_json(spec) for key, spec in function.structured_outputs.items()},
        }
        for name, function in signatures.items()
    }


def decode_image(image_bytes, image_size=None, resizing=None) -> tf.Tensor:
    """JPEG / PNG / BMP / GIF bytes -> float32 RGB; resized when `image_size` is given.

    The resize is the model's own (its Resizing layer's options: crop to aspect
    ratio, interpolation, antialias) on the image at its native size, rounded
    as the training pipelines round (`resize_image`), so the model's resize is
    then the identity and bytes give the pixels training gave.
    """
    image = tf.cast(tf.io.decode_image(image_bytes, channels=3, expand_animations=False), tf.float32)
    return image if image_size is None else resize_image(image, image_size, resizing or {})


def _spec_json(spec) -> dict:
    return {"dtype": spec.dtype.name, "shape": [None if dim is None else int(dim) for dim in spec.shape]}


def _text_signatures(module: _ServingModule, model) -> dict:
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
    def serve_text(text):
        return module.outputs(model, module.preprocessor(text))

    names = model.input_names

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=name) for name in names])
    def serve_tokens(*tensors):
        return module.outputs(model, dict(zip(names, tensors, strict=True)))

    return {
        SERVING_DEFAULT: serve_text.get_concrete_function(),
        TOKENS_SIGNATURE: serve_tokens.get_concrete_function(),
    }


def _image_signatures(module: _ServingModule, model) -> dict:
    height, width = model.image_size

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)])
    def serve_image_bytes(image_bytes):
        images = tf.map_fn(
            lambda encoded: decode_image(encoded, (height, width), model.resizing),
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
        )
        return module.outputs(model, images)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGE_INPUT)])
    def serve_images(images):
        return module.outputs(model, resize_image(images, (height, width), model.resizing))

    return {
        SERVING_DEFAULT: serve_image_bytes.get_concrete_function(),
        IMAGES_SIGNATURE: serve_images.get_concrete_function(),
    }


_SIGNATURE_BUILDERS = {TEXT: _text_signatures, IMAGE: _image_signatures}

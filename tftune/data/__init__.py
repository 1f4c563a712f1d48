"""Data for fine-tuning: tfds, local files and in-memory sources -> train / validation tf.data pipelines.

Two steps, because the model needs the label names and its preprocessor
needs the model: `load_text_splits` / `load_image_splits` read a source and
split it (`DataSplits`), then `text_pipelines` / `image_pipelines` make the
batched tf.data pipelines (`PreparedData`) that `fit` consumes.

Modules, one role each: `examples` (labeled texts / images, label rules),
`files` (CSV / TSV / JSONL tables, image folders), `tfds_sources`, `demo`
(Rotten Tomatoes, MNIST), `sources` (files and in-memory data -> examples),
`splitting` (subsets, stratified hold-outs, `DataSplits`), `loaders` (the
two `load_*_splits`), `pipelines` (batching, caching, augmentation).
"""

from tftune.data.demo import ROTTEN_TOMATOES_VARIANTS, load_mnist_digits, load_rotten_tomatoes
from tftune.data.examples import MAX_FRACTIONAL_CLASSES, MISSING_LABELS, LabeledImages, LabeledTexts
from tftune.data.files import IMAGE_FILE_EXTENSIONS, TEXT_FILE_EXTENSIONS
from tftune.data.loaders import load_image_splits, load_text_splits
from tftune.data.pipelines import AUGMENTATIONS, PreparedData, image_pipelines, text_pipelines
from tftune.data.splitting import DataSplits
from tftune.data.tfds_sources import DatasetUnavailableError

__all__ = [
    "AUGMENTATIONS",
    "IMAGE_FILE_EXTENSIONS",
    "MAX_FRACTIONAL_CLASSES",
    "MISSING_LABELS",
    "ROTTEN_TOMATOES_VARIANTS",
    "TEXT_FILE_EXTENSIONS",
    "DatasetUnavailableError",
    "DataSplits",
    "LabeledImages",
    "LabeledTexts",
    "PreparedData",
    "image_pipelines",
    "load_image_splits",
    "load_mnist_digits",
    "load_rotten_tomatoes",
    "load_text_splits",
    "text_pipelines",
]

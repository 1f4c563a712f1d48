"""Splitting rules: a class without validation or any examples warns by name; below the minimum it is an error."""

import logging

import pytest

from tftune import data

TEXTS = [f"text {index}" for index in range(13)]


def test_a_single_example_class_warns_naming_it(caplog):
    labels = ["pos", "neg"] * 6 + ["rare"]
    with caplog.at_level(logging.WARNING, logger="tftune"):
        splits = data.load_text_splits((TEXTS, labels), validation_fraction=0.25, verbose=False)
    assert splits.class_counts["train"]["rare"] == 1 and splits.class_counts["validation"]["rare"] == 0
    assert "class 'rare' has no validation examples (1 training)" in caplog.text
    assert len(splits.warnings) == 1 and "warning: class 'rare' has no validation examples" in splits.summary()
    healthy = data.load_text_splits((TEXTS[:12], labels[:12]), validation_fraction=0.25, verbose=False)
    assert healthy.warnings == () and "warning" not in healthy.summary()


def test_a_listed_class_without_examples_warns_and_one_only_in_validation_is_an_error(caplog):
    texts, labels = TEXTS[:8], ["pos", "neg"] * 4
    with caplog.at_level(logging.WARNING, logger="tftune"):
        splits = data.load_text_splits((texts, labels), label_names=["neg", "pos", "plot"], verbose=False)
    assert "class(es) ['plot'] have no examples" in caplog.text and "['plot']" in splits.summary()
    with pytest.raises(ValueError, match=r"Class\(es\) \['plot'\] .* validation examples but no training examples"):
        data.load_text_splits(
            (texts, labels), validation=(["p", "n", "x"], ["pos", "neg", "plot"]), label_names=["neg", "pos", "plot"]
        )


def test_minimums_two_trained_classes_and_a_validation_example():
    with pytest.raises(ValueError, match="single class"):
        data.load_text_splits((TEXTS[:6], ["pos"] * 6), validation=(["a"], ["pos"]))
    with pytest.raises(ValueError, match=r"Cannot hold out a validation split .* 2 example\(s\) and no class with 2"):
        data.load_text_splits((TEXTS[:2], ["pos", "neg"]))


def test_split_options_are_checked_together():
    with pytest.raises(ValueError) as error:
        data.load_text_splits((TEXTS, ["a", "b"] * 6 + ["a"]), validation_fraction=0, max_examples=-1, seed=1.5)
    message = str(error.value)
    assert message.startswith("3 invalid options:")
    assert "validation_fraction must be a number in (0, 1); got 0" in message
    assert "max_examples must be an integer >= 4; got -1" in message and "seed must be an integer" in message

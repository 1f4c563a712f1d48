"""CSV / TSV / JSONL files through load_text_splits: every bad file is an error naming the file, line and fix."""

import logging

import numpy as np
import pytest

from tftune import data

ROWS = ["great,pos", "awful,neg", "superb,pos", "dull,neg"] * 3


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def _load(path, **options):
    return data.load_text_splits(path, validation_fraction=0.25, verbose=False, **options)


@pytest.mark.parametrize("missing", ["", "   ", "NaN", "nan", "None", "null"])
def test_missing_labels_are_rejected_with_their_line_numbers(tmp_path, missing):
    lines = ["text,label", *ROWS[:4], f"no label here,{missing}", *ROWS[4:], f'"two, lines\nof text",{missing}']
    path = _write(tmp_path, "reviews.csv", "\n".join(lines) + "\n")
    with pytest.raises(ValueError) as error:
        _load(path)
    message = str(error.value)
    # Line 6 is the first missing label; the two-line quoted row starts on line 15.
    assert f"{path}: 2 example(s) have no label in 'label'" in message and "on lines 6, 15." in message
    assert "drop_missing_labels=True" in message


def test_missing_labels_dropped_only_when_asked_and_counted(tmp_path, caplog):
    content = "text,label\n" + "\n".join(ROWS) + "\nempty,\nnan label,NaN\n"
    path = _write(tmp_path, "reviews.csv", content)
    with caplog.at_level(logging.WARNING, logger="tftune"):
        splits = _load(path, drop_missing_labels=True)
    assert splits.label_names == ["neg", "pos"]
    assert splits.train_size + splits.validation_size == 12
    assert "dropped 2 example(s) without a label, on lines 14, 15" in caplog.text
    texts = {text.decode() for text, _ in splits.train.concatenate(splits.validation).as_numpy_iterator()}
    assert "empty" not in texts and "nan label" not in texts and "great" in texts


def test_jsonl_null_and_nan_labels_and_a_class_named_none(tmp_path):
    rows = ['{"text": "great", "label": "pos"}', '{"text": "dull", "label": "neg"}'] * 4
    path = _write(tmp_path, "reviews.jsonl", "\n".join([*rows, '{"text": "x", "label": null}']) + "\n")
    with pytest.raises(ValueError, match=r"reviews\.jsonl: 1 example\(s\) have no label in 'label' .* on line 9\."):
        _load(path)
    # A class really called "None" is a class once label_names lists it.
    path = _write(tmp_path, "named.csv", "text,label\n" + "\n".join(ROWS) + "\nmeh,None\nso so,None\n")
    splits = _load(path, label_names=["neg", "pos", "None"])
    assert splits.train_size + splits.validation_size == 14
    assert splits.class_counts["train"]["None"] + splits.class_counts["validation"]["None"] == 2
    # In-memory labels follow the same rule (e.g. pandas NaN), named by index.
    with pytest.raises(ValueError, match=r"in-memory data: 1 example\(s\) have no label .* on index 2\."):
        data.load_text_splits((["a", "b", "c", "d"], ["x", "y", float("nan"), "y"]))
    images = np.zeros((6, 32, 32, 3))
    with pytest.raises(ValueError, match=r"no label in 'labels' .* on index 5\."):
        data.load_image_splits((images, ["a", "b"] * 2 + ["a", "none"]))
    splits = data.load_image_splits((images, ["a", "b"] * 2 + ["a", "none"]), drop_missing_labels=True, verbose=False)
    assert splits.label_names == ["a", "b"] and splits.train_size + splits.validation_size == 5


def test_label_whitespace_does_not_make_a_new_class(tmp_path):
    path = _write(tmp_path, "reviews.tsv", "text\tlabel\n" + "\n".join(row.replace(",", "\t ") for row in ROWS) + "\n")
    assert _load(path).label_names == ["neg", "pos"]


@pytest.mark.parametrize(
    "row, fields", [("a,b,c,d", 4), ("just text", 1)], ids=["more-fields-than-header", "fewer-fields"]
)
def test_rows_with_the_wrong_number_of_fields_are_rejected_with_line_numbers(tmp_path, row, fields):
    path = _write(tmp_path, "reviews.csv", "text,label\n" + "\n".join(ROWS[:3] + [row] + ROWS[3:]) + "\n")
    with pytest.raises(ValueError) as error:
        _load(path)
    message = str(error.value)
    assert f"{path}: 1 row(s) do not have the header's 2 fields (text, label on line 1): line 5: {fields} field(s)" in (
        message
    )
    assert "Quote fields that contain the delimiter" in message


def test_quoted_fields_with_commas_and_newlines_are_fine(tmp_path):
    path = _write(tmp_path, "reviews.csv", 'text,label\n"good, really\ngood",pos\n' + "\n".join(ROWS) + "\n")
    splits = _load(path)
    texts = {text.decode() for text, _ in splits.train.concatenate(splits.validation).as_numpy_iterator()}
    assert "good, really\ngood" in texts and splits.train_size + splits.validation_size == 13


def test_non_utf8_file_names_file_line_and_encoding_option(tmp_path):
    content = "text,label\n" + "\n".join(ROWS[:4]) + "\ncafé crème,pos\n" + "\n".join(ROWS[4:]) + "\n"
    content = content.encode("latin-1")
    path = _write(tmp_path, "latin.csv", content)
    with pytest.raises(ValueError) as error:
        _load(path)
    message = str(error.value)
    assert message.startswith(f"{path} line 6, column 4: bytes b'\\xe9' are not valid utf-8")
    assert "encoding='latin-1'" in message and "--encoding" in message
    splits = _load(path, encoding="latin-1")
    texts = {text.decode() for text, _ in splits.train.concatenate(splits.validation).as_numpy_iterator()}
    assert "café crème" in texts
    with pytest.raises(ValueError, match=r"encoding must be a Python codec name .*; got 'klingon'"):
        _load(path, encoding="klingon")


def test_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = _write(tmp_path, "excel.csv", ("text,label\n" + "\n".join(ROWS) + "\n").encode("utf-8-sig"))
    assert _load(path).label_names == ["neg", "pos"]


def test_broken_jsonl_reports_the_real_line(tmp_path):
    lines = ['{"text": "great", "label": "pos"}', '{"text": "dull", "label": "neg"}'] * 2
    path = _write(tmp_path, "reviews.jsonl", "\n".join([*lines, "", '{"text": "oops", "label": "pos"']) + "\n")
    with pytest.raises(ValueError) as error:
        _load(path)
    assert str(error.value).startswith(f"{path} line 6, column 32: not valid JSON")
    assert "one JSON object" in str(error.value)
    path = _write(tmp_path, "list.jsonl", "\n".join([*lines, '["text", "label"]']) + "\n")
    with pytest.raises(ValueError, match=r"list\.jsonl line 5: a JSON list, not an object"):
        _load(path)
    path = _write(tmp_path, "keys.jsonl", "\n".join([*lines, '{"body": "x", "label": "pos"}']) + "\n")
    with pytest.raises(ValueError, match=r"keys\.jsonl has no column 'text' on line 5; its columns are"):
        _load(path)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.csv", b"", r"empty\.csv is empty \(0 bytes\): a \.csv file needs a header line"),
        ("blank.tsv", "\n\n", r"blank\.tsv is empty \(2 bytes\)"),
        ("empty.jsonl", b"", r"empty\.jsonl is empty \(0 bytes\): a \.jsonl file needs one JSON object per line"),
        ("header.csv", "text,label\n", r"header\.csv has a header \(text, label\) but no rows"),
    ],
)
def test_empty_and_header_only_files_say_so(tmp_path, name, content, expected):
    with pytest.raises(ValueError, match=expected):
        _load(_write(tmp_path, name, content))

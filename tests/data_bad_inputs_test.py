"""Bad data and prediction inputs: each is refused before any model is built, naming the file, line or column."""

import json
import logging
import os

import numpy as np
import pytest
from export_fixtures import image_bytes
from PIL import Image

import tftune
from tftune import cli, data, export

TEXTS = ["great", "awful", "superb", "dull"] * 6


def _write_table(tmp_path, extension, rows, columns=("text", "label")):
    """`rows` (tuples in `columns` order) as a .csv / .tsv / .jsonl file; JSONL keeps Python value types."""
    path = tmp_path / f"data{extension}"
    if extension == ".jsonl":
        path.write_text(
            "".join(json.dumps(dict(zip(columns, row, strict=True))) + "\n" for row in rows), encoding="utf-8"
        )
    else:
        separator = "\t" if extension == ".tsv" else ","
        lines = [separator.join(columns), *(separator.join(str(value) for value in row) for row in rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _write_images(folder, count, seed=0):
    os.makedirs(folder, exist_ok=True)
    random = np.random.RandomState(seed)
    for index in range(count):
        pixels = random.randint(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{index}.png"))


def _load(source, **options):
    return data.load_text_splits(source, validation_fraction=0.25, verbose=False, **options)


# 1. Numeric labels with many distinct fractional values are a regression target, not classes.


@pytest.mark.parametrize("extension", [".csv", ".tsv", ".jsonl"])
def test_continuous_number_labels_are_refused_naming_file_column_and_values(tmp_path, extension):
    scores = [round(0.05 * (row % 20), 2) for row in range(24)]  # 0.0 .. 0.95: 20 distinct values in 24 rows
    written = [f"{score:.2f}" for score in scores] if extension != ".jsonl" else scores
    path = _write_table(tmp_path, extension, list(zip(TEXTS, written, strict=True)), columns=("text", "score"))
    with pytest.raises(ValueError) as error:
        _load(path, label_key="score")
    shown = "'0.00', '0.05', '0.10'" if extension != ".jsonl" else "0.0, 0.05, 0.1"
    assert str(error.value).startswith(
        f"The labels in 'score' of {path} look like continuous numbers, not classes: 20 distinct values in 24 "
        f"examples, not all whole numbers (e.g. {shown}, "
    )
    assert "bin the values" in str(error.value) and "pass label_names listing them" in str(error.value)
    # Listing the classes is the explicit way to accept them.
    names = list(dict.fromkeys(str(value) for value in written))
    assert _load(path, label_key="score", label_names=names).label_names == names


def test_in_memory_continuous_labels_are_refused_and_few_or_whole_numbers_are_classes():
    with pytest.raises(ValueError, match=r"labels in 'labels' of in-memory data look like continuous numbers.*"
                                         r"48 distinct values in 48 examples.*\(e\.g\. 0\.0, 0\.01, 0\.02"):
        _load((TEXTS * 2, list(np.arange(48) / 100)))
    with pytest.raises(ValueError, match=r"in-memory data look like continuous numbers, not classes: 12 distinct"):
        data.load_image_splits((np.zeros((24, 8, 8, 3)), np.arange(24) % 12 + 0.5), verbose=False)
    # Whole numbers, also written as floats (a pandas column with NaN is float), are class ids.
    assert _load((TEXTS, np.array([0.0, 1.0] * 12))).label_names == ["0", "1"]
    # Up to 10 distinct fractional values (half-star ratings) are classes, named and sorted by value.
    assert _load((TEXTS * 2, [0.5 * (row % 10 + 1) for row in range(48)])).label_names == [
        "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0"
    ]
    # Numeric class names sort by value, not as text ("10" after "9").
    assert _load((TEXTS, [str(row % 12) for row in range(24)])).label_names == [str(n) for n in range(12)]


# 2. Empty texts.


@pytest.mark.parametrize("extension", [".csv", ".tsv", ".jsonl"])
def test_empty_texts_are_refused_naming_their_lines(tmp_path, extension):
    rows = [(text, "pos" if row % 2 else "neg") for row, text in enumerate(TEXTS)]
    rows[2], rows[5] = ("", "neg"), ("   ", "pos")
    path = _write_table(tmp_path, extension, rows)
    line = 0 if extension == ".jsonl" else 1  # the header
    with pytest.raises(ValueError) as error:
        _load(path)
    assert str(error.value) == (
        f"{path}: 2 example(s) have an empty text in 'text' (empty or only whitespace) on lines {line + 3}, "
        f"{line + 6}; there is nothing in them to learn from. Fill in the texts or remove those rows."
    )


def test_empty_in_memory_texts_are_refused_by_index_after_dropped_labels():
    texts, labels = list(TEXTS), ["pos", "neg"] * 12
    texts[3], labels[1], texts[7] = " ", "", ""
    with pytest.raises(ValueError, match=r"in-memory data: 2 example\(s\) have an empty text .* on indices 3, 7;"):
        _load((texts, labels), drop_missing_labels=True)
    # A LabeledTexts is taken as built: the three-class demo set holds empty plot snippets.
    demo = tftune.load_rotten_tomatoes("three_class")
    empty = [index for index, text in enumerate(demo.texts) if not text.strip()]
    assert len(empty) == 14 and _load(demo.subset(empty + list(range(0, len(demo), 500)))).train_size > 0


# 3. A column named twice.


@pytest.mark.parametrize("extension", [".csv", ".tsv"])
def test_header_naming_a_column_twice_is_refused_naming_both(tmp_path, extension):
    path = _write_table(tmp_path, extension, [(text, "pos", "neg") for text in TEXTS], ("text", "label", "label"))
    with pytest.raises(ValueError) as error:
        _load(path)
    assert str(error.value) == (
        f"{path} line 1: the header names a column more than once: 'label' (columns 2 and 3) of text, label, label. "
        f"Which one holds the data would be a guess: give each column its own name."
    )


def test_jsonl_object_with_a_key_twice_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": "pos", "label": "neg"}\n', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        _load(str(path))
    assert str(error.value) == (
        f"{path} line 2: an object has the key 'label' twice; JSON would keep only the last value. "
        f"Give each field its own key."
    )


# 4. Symbolic links in an image folder.


def test_image_folder_links_back_into_the_tree_or_to_folders_are_skipped_with_a_warning(tmp_path, caplog):
    root, outside = tmp_path / "pets", tmp_path / "elsewhere"
    _write_images(root / "cat", 3)
    _write_images(root / "dog", 3, seed=1)
    _write_images(outside, 2, seed=2)
    os.symlink(root, root / "everything")  # would be a class holding every image again
    os.symlink(root / "dog" / "0.png", root / "cat" / "also_a_dog.png")  # one image under two labels
    os.symlink(outside, root / "dog" / "more")  # a folder out of the tree: could be anywhere
    os.symlink(outside / "1.png", root / "dog" / "linked.png")  # a single file out of the tree is read
    with caplog.at_level(logging.WARNING, logger="tftune"):
        splits = data.load_image_splits(str(root), validation_fraction=0.25, verbose=False)
    assert splits.label_names == ["cat", "dog"]
    assert splits.class_counts["train"]["cat"] + splits.class_counts["validation"]["cat"] == 3
    assert splits.class_counts["train"]["dog"] + splits.class_counts["validation"]["dog"] == 4
    assert f"{root}: skipped 3 symbolic link(s) ({root / 'everything'} -> {root}; " in caplog.text
    why = "links to folders are not followed (they can loop back or reach anywhere), and a link to an image read"
    assert f"{why} already would count it twice. To use a linked folder, replace the link with a real folder." in (
        caplog.text
    )
    assert f"{root / 'dog' / 'more'} -> {outside}" in caplog.text
    assert f"{root / 'cat' / 'also_a_dog.png'} -> {root / 'dog' / '0.png'}" in caplog.text
    with pytest.raises(ValueError, match=r"pets holds 3 symbolic link\(s\) .*: links to folders are not followed .* "
                                         r"pass strict=False to skip them"):
        data.load_image_splits(str(root), strict=True)
    with pytest.raises(ValueError, match=r"class folder .*everything is a symbolic link .* Replace it with a real"):
        data.load_image_splits(str(root), label_names=["cat", "dog", "everything"])


# 10. / 11. Image folders without class folders, and sources that are not what the task reads.


def test_image_folder_without_class_sub_folders_says_how_to_lay_it_out(tmp_path, caplog):
    _write_images(tmp_path / "flat", 4)
    with pytest.raises(ValueError) as error:
        data.load_image_splits(str(tmp_path / "flat"))
    example = tmp_path / "flat" / "cat" / "1.jpg"
    assert str(error.value) == (
        f"{tmp_path / 'flat'} has no class sub-folders: it holds 4 image file(s) directly (e.g. 0.png). An image "
        f"folder needs one sub-folder per class holding that class's images (e.g. {example}): move the images "
        f"into one sub-folder per class."
    )
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"empty has no class sub-folders: it holds no images or sub-folders"):
        data.load_image_splits(str(tmp_path / "empty"))
    os.symlink(tmp_path / "flat", tmp_path / "empty" / "cat")
    with pytest.raises(ValueError, match=r"empty has no class sub-folders: only symbolic links to folders, which "
                                         r"tftune does not follow \(.*cat\)\. .*: replace the links with real folders"):
        data.load_image_splits(str(tmp_path / "empty"))
    _write_images(tmp_path / "flat" / "cat", 2)
    _write_images(tmp_path / "flat" / "dog", 2)
    with caplog.at_level(logging.WARNING, logger="tftune"):
        assert data.load_image_splits(str(tmp_path / "flat"), verbose=False).train_size == 2
    assert f"ignored 4 image file(s) directly in {tmp_path / 'flat'}, outside the class sub-folders" in caplog.text


@pytest.mark.parametrize("kind", ["text", "image"])
@pytest.mark.parametrize("spec", ["/no/such/pets", "./pets_typo", "data/pets", "pets", "pets.csv", "my pets"])
def test_a_source_that_is_neither_a_path_nor_a_tfds_name_gets_one_message(tmp_path, monkeypatch, kind, spec):
    monkeypatch.chdir(tmp_path)
    load = data.load_text_splits if kind == "text" else data.load_image_splits
    with pytest.raises(ValueError) as error:
        load(spec, data_dir=str(tmp_path))
    relative = "" if spec.startswith("/") else f" (relative paths start from {tmp_path})"
    accepted = {
        "text": "A text source is a .csv / .tsv / .jsonl file, or a tfds dataset name such as 'glue/sst2'",
        "image": "An image source is a folder with one sub-folder of images per class (e.g. pets/cat/1.jpg, ",
    }[kind]
    assert str(error.value).startswith(
        f"{spec!r} is neither an existing file or folder{relative} nor a tfds dataset name. {accepted}"
    )
    assert str(error.value).endswith("(see tfds.list_builders()). Check the spelling and the path.")


def test_near_miss_paths_are_suggested_and_sources_of_the_other_task_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_images(tmp_path / "pets" / "cat", 2)
    with pytest.raises(ValueError, match=r"'petz' is neither .* Did you mean 'pets'\? Check the spelling"):
        data.load_image_splits("petz")
    csv_path = _write_table(tmp_path, ".csv", [(text, "pos") for text in TEXTS])
    with pytest.raises(ValueError) as error:
        data.load_image_splits(csv_path)
    assert str(error.value).startswith(f"{csv_path} is a file, not a folder. An image source is a folder with one")
    assert str(error.value).endswith("A .csv / .tsv / .jsonl file holds text data: train a text task on it.")
    with pytest.raises(ValueError, match=r"pets is a folder, not a text file\. .* train an image task on it"):
        data.load_text_splits(str(tmp_path / "pets"))
    (tmp_path / "notes.txt").write_text("text,label\na,b\n")
    with pytest.raises(ValueError, match=r"notes\.txt is not a \.csv, \.tsv or \.jsonl file: tftune reads the format"):
        data.load_text_splits(str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match=r"'glue/no_such_config': tfds has the dataset 'glue' but cannot build it .*"
                                         r"Its configs are \['cola', 'sst2'"):
        data.load_text_splits("glue/no_such_config", data_dir=str(tmp_path))


# 12. A file whose separator is not its extension's.


@pytest.mark.parametrize(
    "name, header, expected",
    [
        ("data.csv", "text\tlabel", "looks tab-separated: its header (line 1) 'text\\tlabel' has tabs and no commas. "),
        ("data.tsv", "text,label", "looks comma-separated: its header (line 1) 'text,label' has commas and no tabs. "),
        ("data.csv", "text;label", "looks semicolon-separated: its header (line 1) 'text;label' has semicolons and no "
                                   "commas. "),
    ],
)
def test_a_file_separated_otherwise_than_its_extension_says_so(tmp_path, name, header, expected):
    fix = {"\t": "rename it to .tsv", ",": "rename it to .csv", ";": "save it comma-separated"}
    separator = header[4]
    expected += f"tftune reads comma-separated .csv and tab-separated .tsv files: {fix[separator]}."
    rows = [f"{text}, really{separator}{'pos' if row % 2 else 'neg'}" for row, text in enumerate(TEXTS)]
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        _load(str(path))
    assert str(error.value) == f"{path} {expected}"


# 13. Labels of mixed types.


def test_mixed_label_types_are_refused_naming_lines_per_type(tmp_path):
    labels = [1, "pos", 0, "neg", True, 1, 0, 1]
    path = _write_table(tmp_path, ".jsonl", list(zip(TEXTS, labels, strict=False)))
    with pytest.raises(ValueError) as error:
        _load(path)
    assert str(error.value) == (
        f"The labels in 'label' of {path} must be all strings (class names) or all numbers (whole numbers are class "
        f"ids); got 5 numbers (e.g. 1) on lines 1, 3, 6, 7, 8; 2 strings (e.g. 'pos') on lines 2, 4; 1 bool (e.g. "
        f"True) on line 5. Write every label the same way, e.g. all \"pos\" / \"neg\" or all 0 / 1."
    )
    with pytest.raises(ValueError, match=r"of in-memory data must be all strings .*; 1 number \(e\.g\. 3\) on index 2"):
        data.load_image_splits((np.zeros((4, 8, 8, 3)), np.array(["a", "b", 3, "a"], dtype=object)))


def test_string_labels_mixing_numbers_and_words_are_refused_unless_listed(tmp_path):
    labels = ["1", "0", "1", "pos", "0", "1", "neg", "0"] * 3
    path = _write_table(tmp_path, ".csv", list(zip(TEXTS, labels, strict=True)))
    with pytest.raises(ValueError) as error:
        _load(path)
    assert str(error.value) == (
        f"The labels in 'label' of {path} mix numbers and words: 18 numbers (e.g. '1') on lines 2, 3, 4, 6, 7, 9, "
        f"10, 11, 12, 14 ...; 6 words (e.g. 'pos') on lines 5, 8, 13, 16, 21, 24. Each would be a class of its own. "
        f"Write every label the same way, or, if these are the class names, pass label_names listing them."
    )
    assert _load(path, label_names=["0", "1", "neg", "pos"]).label_names == ["0", "1", "neg", "pos"]


def test_json_lines_in_a_csv_file_say_so(tmp_path):
    path = _write_table(tmp_path, ".jsonl", [(text, "pos") for text in TEXTS])
    os.rename(path, tmp_path / "data.csv")
    with pytest.raises(ValueError) as error:
        _load(str(tmp_path / "data.csv"))
    assert str(error.value) == (
        f"{tmp_path / 'data.csv'} looks like JSON lines: its first line (line 1) starts with '{{'. tftune reads the "
        f"format from the extension: rename it to .jsonl."
    )


# Through the command line: one line, exit status 2, before any model is built.


@pytest.mark.parametrize(
    "task, content, expected",
    [
        ("text", "text,label,label\na,b,c\n", "the header names a column more than once: 'label' (columns 2 and 3)"),
        ("text", "text\tlabel\na\tb\n", "looks tab-separated"),
        ("image", "text,label\na,b\n", "is a file, not a folder. An image source is a folder"),
    ],
)
def test_bad_data_is_a_one_line_cli_error_before_training(tmp_path, capsys, task, content, expected):
    path = tmp_path / "data.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--task", task, "--dataset", str(path), "--output-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"tftune train: error: {path}" in err and expected in err and "Traceback" not in err
    assert not (tmp_path / "run" / "model.keras").exists()


# 8. / 23. Prediction inputs.


def test_predict_refuses_empty_inputs_before_loading_the_model(tmp_path, capsys):
    with pytest.raises(ValueError) as error:
        export.predict_from_saved_model(str(tmp_path / "not_loaded"), ["a fine film", "", "  "])
    assert str(error.value) == (
        "predict input(s) 2, 3 of 3 are empty (or only whitespace): ['', '  ']. There is nothing to classify in an "
        "empty input. Give the text to classify (quote it on the command line) or an image file path."
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(tmp_path / "not_loaded"), ""])
    assert exit_info.value.code == 2 and "predict input(s) 1 of 1 are empty" in capsys.readouterr().err


def test_predict_names_image_files_that_do_not_decode_before_loading_the_model(tmp_path, capsys):
    jpeg, png = image_bytes()
    paths = {"whole.jpg": jpeg, "cut.jpg": jpeg[: len(jpeg) // 2], "cut.png": png[: len(png) // 2]}
    for name, content in paths.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError) as error:
        export.predict_from_saved_model(str(tmp_path / "not_loaded"), [str(tmp_path / name) for name in paths])
    assert str(error.value) == (
        f"2 image file(s) cannot be decoded: {tmp_path / 'cut.jpg'} (jpeg::Uncompress failed. Invalid JPEG data or "
        f"crop window.); {tmp_path / 'cut.png'} (Invalid PNG data, size {len(png) // 2}). Each is truncated or "
        f"corrupt: re-save or re-download it, or leave it out."
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", str(tmp_path / "not_loaded"), str(tmp_path / "cut.jpg")])
    assert exit_info.value.code == 2
    assert f"1 image file(s) cannot be decoded: {tmp_path / 'cut.jpg'} (jpeg::" in capsys.readouterr().err

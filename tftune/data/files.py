"""Local files: CSV / TSV / JSONL text tables (rows with their line numbers) and folders of class subfolders."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from tftune.data.examples import ImageFiles, decode_image_file, label_counts

_logger = logging.getLogger(__name__)

TEXT_FILE_EXTENSIONS = (".csv", ".tsv", ".jsonl")
IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_SHOWN_LINES = 10


@dataclasses.dataclass(frozen=True)
class _TextTable:
    """The rows of a text file as `{column: value}`, each with the line it starts on (1-based, as in an editor)."""

    path: str
    rows: list[dict]
    lines: list[int]
    columns: list[str]

    def column(self, key: str, argument: str) -> list:
        """The values of column `key` in every row; an error naming the lines that lack it."""
        missing = [line for line, row in zip(self.lines, self.rows) if key not in row]
        if key not in self.columns or missing:
            where = f" on {lines_text(missing)}" if key in self.columns else ""
            raise ValueError(
                f"{self.path} has no column {key!r}{where}; its columns are {self.columns}. "
                f"Pass {argument}=<one of them>, or fix the file."
            )
        return [row[key] for row in self.rows]


def encoding_error(encoding: str) -> str | None:
    """The problem with `encoding` as a text file encoding, or None."""
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        return f"encoding must be a Python codec name such as 'utf-8', 'latin-1' or 'cp1252'; got {encoding!r}."
    return None


def read_text_table(path: str, encoding: str = "utf-8") -> _TextTable:
    """The rows of a `.csv` / `.tsv` (header line, then one row per line) or `.jsonl` (one object per line) file."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in TEXT_FILE_EXTENSIONS:
        raise ValueError(f"Text files must end with one of {list(TEXT_FILE_EXTENSIONS)}; got {path!r}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such text file: {path!r}.")
    text = _decoded(path, encoding)
    if not text.strip():
        size = os.path.getsize(path)
        layout = "one JSON object per line"
        if extension != ".jsonl":
            layout = "a header line (e.g. text,label), then one row per line"
        raise ValueError(f"{path} is empty ({size} bytes): a {extension} file needs {layout}.")
    table = _jsonl_table(path, text) if extension == ".jsonl" else _delimited_table(path, text, extension)
    if not table.rows:
        raise ValueError(f"{path} has a header ({', '.join(table.columns)}) but no rows; add one row per example.")
    return table


def _decoded(path: str, encoding: str) -> str:
    with open(path, "rb") as file:
        raw = file.read()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        before = raw[: error.start].decode(encoding, errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise ValueError(
            f"{path} line {line}, column {column}: bytes {raw[error.start : error.end]!r} are not valid {encoding} "
            f"({error.reason}). Pass the file's encoding (encoding='latin-1', 'cp1252', ...; --encoding on the "
            f"command line), or save the file as UTF-8."
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark would glue itself to the first column name


def _delimited_table(path: str, text: str, extension: str) -> _TextTable:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if extension == ".tsv" else ",")
    header, header_line, rows, lines, ragged = None, 0, [], [], []
    try:
        while True:
            start = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                break
            if not fields:  # a blank line
                continue
            if header is None:
                header, header_line = fields, start
            elif len(fields) != len(header):
                ragged.append((start, len(fields)))
            else:
                rows.append(dict(zip(header, fields)))
                lines.append(start)
    except csv.Error as error:
        raise ValueError(f"{path} line {reader.line_num}: {error}. Fix the quoting on that line.") from None
    if ragged:
        shown = "; ".join(f"line {line}: {count} field(s)" for line, count in ragged[:_SHOWN_LINES])
        raise ValueError(
            f"{path}: {len(ragged)} row(s) do not have the header's {len(header)} fields "
            f"({', '.join(header)} on line {header_line}): {shown}"
            f"{' ...' if len(ragged) > _SHOWN_LINES else ''}. Quote fields that contain the delimiter "
            f"(\"a, b\"), or fix those rows."
        )
    return _TextTable(path, rows, lines, list(header))


def _jsonl_table(path: str, text: str) -> _TextTable:
    rows, lines = [], []
    for line, content in enumerate(io.StringIO(text), start=1):
        if not content.strip():
            continue
        try:
            row = json.loads(content.rstrip("\r\n"))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} line {line}, column {error.colno}: not valid JSON ({error.msg}). Each line of a .jsonl "
                f"file must be one JSON object, e.g. {{\"text\": \"...\", \"label\": \"...\"}}."
            ) from None
        if not isinstance(row, dict):
            raise ValueError(
                f"{path} line {line}: a JSON {type(row).__name__}, not an object. Each line of a .jsonl file must "
                f"be one JSON object, e.g. {{\"text\": \"...\", \"label\": \"...\"}}."
            )
        rows.append(row)
        lines.append(line)
    return _TextTable(path, rows, lines, sorted({key for row in rows for key in row}))


def lines_text(lines: list[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:_SHOWN_LINES])
    return f"line{'s' if len(lines) > 1 else ''} {shown}{' ...' if len(lines) > _SHOWN_LINES else ''}"


def read_image_folder(root: str, label_names, strict: bool) -> tuple[ImageFiles, list[str]]:
    """The readable images under `root/<class>/` (every file is decoded once), and the unreadable ones skipped."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"No such image folder: {root!r}.")
    folders = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    names = folders if label_names is None else list(label_names)
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise ValueError(
            f"Class folders in {root} that are not in the label list {names}: {unknown}. "
            f"Add them to label_names or move them out of {root}."
        )
    paths, labels = [], []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        files = sorted(
            os.path.join(directory, file)
            for directory, _, files in os.walk(folder)
            for file in files
            if file.lower().endswith(IMAGE_FILE_EXTENSIONS)
        )
        if not files:
            raise ValueError(
                f"The class folder {folder} has no images (looked for {', '.join(IMAGE_FILE_EXTENSIONS)}). "
                f"Add images, or remove the folder / the class from label_names."
            )
        paths += files
        labels += [label] * len(files)
    readable = _readable_images(paths, root)
    skipped = [path for index, path in enumerate(paths) if index not in readable]
    if skipped and strict:
        raise ValueError(
            f"{len(skipped)} image file(s) in {root} cannot be decoded: {skipped[:10]}. "
            f"Fix or remove them, or pass strict=False to skip them."
        )
    if skipped:
        _logger.warning("tftune: skipped %d unreadable image file(s) in %s, e.g. %s", len(skipped), root, skipped[0])
    files = ImageFiles(paths, np.asarray(labels, dtype="int32"), names).subset(sorted(readable))
    empty = [name for name, count in label_counts(files.labels, names).items() if not count]
    if empty:
        raise ValueError(f"The class folder(s) {empty} in {root} have no readable images; fix or remove them.")
    return files, skipped


def _readable_images(paths: list[str], root: str) -> set[int]:
    """Indices of the files TensorFlow can decode (every file is decoded once, in parallel)."""
    checks = (
        tf.data.Dataset.from_tensor_slices(paths)
        .enumerate()
        .map(lambda index, path: (index, tf.shape(decode_image_file(path))), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(256)
    )
    readable: set[int] = set()
    _logger.info("tftune: checking %d image files in %s", len(paths), root)
    progress = keras.utils.Progbar(len(paths), unit_name="file")
    for indices, _ in checks.as_numpy_iterator():
        readable.update(int(index) for index in indices)
        progress.update(int(indices.max()) + 1)
    progress.update(len(paths), finalize=True)
    return readable

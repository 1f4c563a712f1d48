"""Local files: CSV / TSV / JSONL text tables (rows with their line numbers) and folders of class subfolders."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from tftune.data.examples import SHOWN_ROWS, ImageFiles, decode_image_file, label_counts, row_places

_logger = logging.getLogger(__name__)

TEXT_FILE_EXTENSIONS = (".csv", ".tsv", ".jsonl")
IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# What a source given as a string can be, per kind, for errors about one that is not.
SOURCE_SPECS = {
    "text": "a .csv / .tsv / .jsonl file, or a tfds dataset name such as 'glue/sst2' or 'imdb_reviews'",
    "image": (
        "a folder with one sub-folder of images per class (e.g. pets/cat/1.jpg, pets/dog/2.jpg), or a tfds "
        "dataset name such as 'tf_flowers' or 'cifar10'"
    ),
}
_A = {"text": "A", "image": "An"}
# Separators a text file may use, by name; .csv and .tsv files must use theirs.
_SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_EXTENSION_SEPARATORS = {".csv": ",", ".tsv": "\t"}


@dataclasses.dataclass(frozen=True)
class _TextTable:
    """The rows of a text file as `{column: value}`, each with the line it starts on (1-based, as in an editor)."""

    path: str
    rows: list[dict]
    lines: list[int]
    columns: list[str]

    def column(self, key: str, argument: str) -> list:
        """The values of column `key` in every row; an error naming the lines that lack it."""
        missing = [index for index, row in enumerate(self.rows) if key not in row]
        if key not in self.columns or missing:
            where = f" on {row_places(missing, self.lines)}" if key in self.columns else ""
            raise ValueError(
                f"{self.path} has no column {key!r}{where}; its columns are {self.columns}. "
                f"Pass {argument}=<one of them>, or fix the file."
            )
        return [row[key] for row in self.rows]


def missing_source_error(source: str, kind: str) -> str:
    """The error for a `kind` ("text" / "image") source string that is neither an existing path nor a tfds name."""
    folder, name = os.path.split(source)
    listed = os.listdir(folder or ".") if os.path.isdir(folder or ".") else []
    near = [os.path.join(folder, match) for match in difflib.get_close_matches(name, listed, n=3, cutoff=0.75)]
    suggestion = f" Did you mean {' or '.join(repr(match) for match in near)}?" if near else ""
    relative = "" if os.path.isabs(source) else f" (relative paths start from {os.getcwd()})"
    return (
        f"{source!r} is neither an existing file or folder{relative} nor a tfds dataset name. {_A[kind]} {kind} "
        f"source is {SOURCE_SPECS[kind]} (see tfds.list_builders()).{suggestion} Check the spelling and the path."
    )


def read_text_table(path: str, encoding: str = "utf-8") -> _TextTable:
    """The rows of a `.csv` / `.tsv` (header line, then one row per line) or `.jsonl` (one object per line) file."""
    extension = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise ValueError(missing_source_error(path, "text"))
    if os.path.isdir(path):
        raise ValueError(
            f"{path} is a folder, not a text file. A text source is {SOURCE_SPECS['text']}; a folder of class "
            f"sub-folders holds images: train an image task on it."
        )
    if extension not in TEXT_FILE_EXTENSIONS:
        raise ValueError(
            f"{path} is not a .csv, .tsv or .jsonl file: tftune reads the format from the extension. Save it in one "
            f"of those formats, or rename it if it is one."
        )
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
                _check_header(path, header, header_line, extension)
            elif len(fields) != len(header):
                ragged.append((start, len(fields)))
            else:
                rows.append(dict(zip(header, fields, strict=True)))
                lines.append(start)
    except csv.Error as error:
        raise ValueError(f"{path} line {reader.line_num}: {error}. Fix the quoting on that line.") from None
    if ragged:
        shown = "; ".join(f"line {line}: {count} field(s)" for line, count in ragged[:SHOWN_ROWS])
        raise ValueError(
            f"{path}: {len(ragged)} row(s) do not have the header's {len(header)} fields "
            f"({', '.join(header)} on line {header_line}): {shown}"
            f"{' ...' if len(ragged) > SHOWN_ROWS else ''}. Quote fields that contain the delimiter "
            f"(\"a, b\"), or fix those rows."
        )
    return _TextTable(path, rows, lines, list(header))


def _check_header(path: str, header: list[str], line: int, extension: str) -> None:
    """Refuse a header that names a column twice, starts a JSON object, or is one field holding another separator."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header, start=1):
        if name.strip():
            positions.setdefault(name, []).append(position)
    repeated = [f"{name!r} (columns {' and '.join(map(str, at))})" for name, at in positions.items() if len(at) > 1]
    if repeated:
        raise ValueError(
            f"{path} line {line}: the header names a column more than once: {'; '.join(repeated)} of "
            f"{', '.join(header)}. Which one holds the data would be a guess: give each column its own name."
        )
    if header[0].lstrip().startswith("{"):
        raise ValueError(
            f"{path} looks like JSON lines: its first line (line {line}) starts with '{{'. tftune reads the format "
            f"from the extension: rename it to .jsonl."
        )
    separator = _EXTENSION_SEPARATORS[extension]
    found = [other for other in _SEPARATORS if other != separator and other in header[0]]
    if len(header) == 1 and found:
        name, own = _SEPARATORS[found[0]], _SEPARATORS[separator]
        fix = {"\t": "rename it to .tsv", ",": "rename it to .csv"}.get(found[0], f"save it {own}-separated")
        raise ValueError(
            f"{path} looks {name}-separated: its header (line {line}) {header[0]!r} has {name}s and no {own}s. "
            f"tftune reads comma-separated .csv and tab-separated .tsv files: {fix}."
        )


class _DuplicateKeyError(ValueError):
    """A JSON object with a key twice (json.loads would keep the last value silently)."""


def _unique_keys(pairs: list[tuple]) -> dict:
    keys = [key for key, _ in pairs]
    repeated = next((key for key in keys if keys.count(key) > 1), None)
    if repeated is not None:
        raise _DuplicateKeyError(repeated)
    return dict(pairs)


def _jsonl_table(path: str, text: str) -> _TextTable:
    rows, lines = [], []
    for line, content in enumerate(io.StringIO(text), start=1):
        if not content.strip():
            continue
        try:
            row = json.loads(content.rstrip("\r\n"), object_pairs_hook=_unique_keys)
        except _DuplicateKeyError as error:
            raise ValueError(
                f"{path} line {line}: an object has the key {error.args[0]!r} twice; JSON would keep only the "
                f"last value. Give each field its own key."
            ) from None
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


def read_image_folder(root: str, label_names, strict: bool) -> tuple[ImageFiles, list[str]]:
    """The readable images under `root/<class>/` (every file is decoded once), and the unreadable ones skipped.

    Links to folders are not followed (they can loop back or reach anywhere)
    and a link to an image read already is not read again: both are skipped
    with a warning (an error when `strict`), as are unreadable files.
    """
    if not os.path.exists(root):
        raise ValueError(missing_source_error(root, "image"))
    if not os.path.isdir(root):
        text = os.path.splitext(root)[1].lower() in TEXT_FILE_EXTENSIONS
        raise ValueError(
            f"{root} is a file, not a folder. An image source is {SOURCE_SPECS['image']}."
            + (" A .csv / .tsv / .jsonl file holds text data: train a text task on it." if text else "")
        )
    links: list[str] = []
    folders, loose = _class_folders(root, links)
    if not folders:
        raise ValueError(_no_class_folders_error(root, loose, links))
    if loose:
        _logger.warning(
            "tftune: ignored %d image file(s) directly in %s, outside the class sub-folders (e.g. %s); move them "
            "into their class's folder to use them.",
            len(loose),
            root,
            loose[0],
        )
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
        if os.path.islink(folder):
            raise ValueError(
                f"The class folder {folder} is a symbolic link (to {os.path.realpath(folder)}); tftune does not "
                f"follow links to folders (they can loop back or reach anywhere). Replace it with a real folder."
            )
        files = _folder_images(folder, links)
        if not files:
            raise ValueError(
                f"The class folder {folder} has no images (looked for {', '.join(IMAGE_FILE_EXTENSIONS)}). "
                f"Add images, or remove the folder / the class from label_names."
            )
        paths += files
        labels += [label] * len(files)
    kept = _unrepeated(root, paths, links)
    paths, labels = [paths[index] for index in kept], [labels[index] for index in kept]
    _skip_links(root, links, strict)
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


def _skip_links(root: str, links: list[str], strict: bool) -> None:
    """Warn about the links left out (an error when `strict`), naming them and their targets."""
    if not links:
        return
    shown = "; ".join(f"{link} -> {os.path.realpath(link)}" for link in links[:3])
    found = f"{len(links)} symbolic link(s) ({shown}{' ...' if len(links) > 3 else ''})"
    why = (
        "links to folders are not followed (they can loop back or reach anywhere), and a link to an image read "
        "already would count it twice"
    )
    if strict:
        raise ValueError(
            f"{root} holds {found}: {why}. Remove them (replace a linked folder with a real one), or pass "
            f"strict=False to skip them."
        )
    _logger.warning(
        "tftune: %s: skipped %s: %s. To use a linked folder, replace the link with a real folder.", root, found, why
    )


def _class_folders(root: str, links: list[str]) -> tuple[list[str], list[str]]:
    """The class sub-folders of `root` and the image files directly in it; links to folders go to `links`."""
    folders, loose = [], []
    for entry in sorted(os.scandir(root), key=lambda entry: entry.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry.name)
        elif entry.is_dir():
            links.append(entry.path)
        elif entry.name.lower().endswith(IMAGE_FILE_EXTENSIONS):
            loose.append(entry.name)
    return folders, loose


def _folder_images(folder: str, links: list[str]) -> list[str]:
    """The image files anywhere under `folder`, sorted; links to folders are not entered but go to `links`."""
    files = []
    for directory, subfolders, names in os.walk(folder):
        links += [path for path in sorted(os.path.join(directory, name) for name in subfolders) if os.path.islink(path)]
        files += [os.path.join(directory, name) for name in names if name.lower().endswith(IMAGE_FILE_EXTENSIONS)]
    return sorted(files)


def _unrepeated(root: str, paths: list[str], links: list[str]) -> list[int]:
    """Indices of `paths` (under `root`) without the links to a file read already (those go to `links`)."""
    is_link = [os.path.islink(path) for path in paths]
    if not any(is_link):
        return list(range(len(paths)))
    # No folder under root is a link (they are not entered), so a file's real path is under root's.
    real_root = os.path.realpath(root)
    seen = {
        os.path.join(real_root, os.path.relpath(path, root))
        for path, link in zip(paths, is_link, strict=True)
        if not link
    }
    kept = []
    for index, (path, link) in enumerate(zip(paths, is_link, strict=True)):
        if link:
            target = os.path.realpath(path)
            if target in seen:
                links.append(path)
                continue
            seen.add(target)
        kept.append(index)
    return kept


def _no_class_folders_error(root: str, loose: list[str], links: list[str]) -> str:
    if loose:
        found = f"it holds {len(loose)} image file(s) directly (e.g. {loose[0]})"
        fix = "move the images into one sub-folder per class"
    elif links:
        found = f"only symbolic links to folders, which tftune does not follow ({', '.join(links[:3])})"
        fix = "replace the links with real folders"
    else:
        found = "it holds no images or sub-folders"
        fix = "add one sub-folder of images per class"
    example = os.path.join(root, "cat", "1.jpg")
    return (
        f"{root} has no class sub-folders: {found}. An image folder needs one sub-folder per class holding that "
        f"class's images (e.g. {example}): {fix}."
    )


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

"""iChallenge-PM (PALM 2019): fundus photographs, pathologic myopia (label 1) or not (label 0).

Two layouts are read, the one users get from the challenge and a flat copy:

    ichallenge-pm/                                   ichallenge-pm/
      PALM-Training400/PALM-Training400/P0001.jpg      PALM-Training400/P0001.jpg
      PALM-Validation400/V0001.jpg                     PALM-Validation400/V0001.jpg
      PALM-Validation-GT/PM_Label_and_Fovea_Location.xlsx   labels.csv

Training labels come from the file name's first letter (P: 1; H high myopia, N normal: 0),
validation labels from labels.csv or the .xlsx (columns imgName and Label).
"""
from __future__ import annotations

import csv
from pathlib import Path

from runner.data.images import image_files
from runner.data.registry import register_dataset
from runner.data.source import DataSource, require_folder
from runner.errors import DataError

LABEL_BY_LETTER = {"P": 1, "H": 0, "N": 0}
NAME_COLUMN, LABEL_COLUMN = "imgName", "Label"
LABEL_FILES = ("labels.csv", "PALM-Validation400/labels.csv", "PALM-Validation-GT/PM_Label_and_Fovea_Location.xlsx",
               "PALM-Validation-GT/labels.csv")


@register_dataset("ichallenge-pm")
class IChallengePM(DataSource):
    name = "ichallenge-pm"
    class_names = ["non-PM (H+N)", "PM"]
    split_sizes = {"train": 400, "val": 400}
    fix = "download training.zip, validation.zip and valid_gt.zip of iChallenge-PM and unzip them there"

    def folder_of_images(self, name: str) -> Path:
        """PALM-Training400/ or, as distributed, PALM-Training400/PALM-Training400/."""
        outer = require_folder(self.location / name, f"iChallenge-PM folder {name}", self.fix)
        inner = outer / name
        if inner.is_dir() and image_files(inner):
            return inner
        return outer

    def files(self, split: str):
        if split == "train":
            return self.train_files()
        return self.validation_files()

    def train_files(self):
        folder = self.folder_of_images("PALM-Training400")
        paths, labels, problems = [], [], []
        for path in image_files(folder):
            label = LABEL_BY_LETTER.get(path.name[0].upper())
            if label is None:
                problems.append(f"{path}: cannot tell the class from the file name (expected it to start with P, H or N)")
                continue
            paths.append(path)
            labels.append(label)
        if not paths and not problems:
            problems.append(f"{folder}: no training images")
        return paths, labels, problems

    def validation_files(self):
        folder = self.folder_of_images("PALM-Validation400")
        label_file = self.label_file()
        rows = read_label_rows(label_file)
        on_disk = {p.name: p for p in image_files(folder)}
        paths, labels, problems = [], [], []
        first_line: dict[str, tuple[int, object]] = {}
        for line, name, label in rows:
            if name in first_line:
                earlier, earlier_label = first_line[name]
                problems.append(f"{label_file}:{line}: {name} is listed again (first at line {earlier})"
                                + ("" if earlier_label == label else
                                   f" with another label ({label!r} here, {earlier_label!r} there)")
                                + "; keep one row per image")
                continue
            first_line[name] = (line, label)
            if label not in (0, 1):
                problems.append(f"{label_file}:{line}: label {label} for {name} is not 0 or 1")
            elif name not in on_disk:
                problems.append(f"{label_file}:{line}: image {name} is listed but missing from {folder}")
            else:
                paths.append(on_disk[name])
                labels.append(label)
        labelled = {name for _, name, _ in rows}
        problems += [f"{path}: image has no label in {label_file}" for n, path in on_disk.items() if n not in labelled]
        if not rows:
            problems.append(f"{label_file}: no label rows")
        return paths, labels, problems

    def label_file(self) -> Path:
        for candidate in LABEL_FILES:
            if (self.location / candidate).is_file():
                return self.location / candidate
        raise DataError(f"no validation label file for iChallenge-PM under {self.location}: expected one of "
                        f"{', '.join(LABEL_FILES)}; {self.fix}")


def read_label_rows(path: Path) -> list[tuple[int, str, object]]:
    """(line number, image name, label) for each row of a labels .csv or .xlsx file."""
    if path.suffix.lower() == ".xlsx":
        header, rows = _xlsx_rows(path)
    else:
        header, rows = _csv_rows(path)
    header = [str(h).strip() if h is not None else "" for h in header]
    missing = [c for c in (NAME_COLUMN, LABEL_COLUMN) if c not in header]
    if missing:
        raise DataError(f"{path}: label file lacks column(s) {', '.join(missing)}; found columns "
                        f"{', '.join(h for h in header if h) or '(none)'}; expected {NAME_COLUMN} and {LABEL_COLUMN}")
    name_at, label_at = header.index(NAME_COLUMN), header.index(LABEL_COLUMN)
    out = []
    for line, row in rows:
        if not any(cell not in (None, "") for cell in row):
            continue
        name = str(row[name_at]).strip() if name_at < len(row) and row[name_at] is not None else ""
        raw = row[label_at] if label_at < len(row) else None
        out.append((line, name, whole_number(raw)))
    return out


def whole_number(raw):
    """A label cell as an int when it is a whole number (1, "1", 1.0 from a spreadsheet), else as
    written, so that 0.9 or "1.6" is refused rather than cut to 0 or 1."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return raw
    try:
        value = float(str(raw).strip())
    except (TypeError, ValueError):
        return raw
    return int(value) if value.is_integer() else raw


def _csv_rows(path: Path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read the label file ({err})") from None
    if not rows:
        raise DataError(f"{path}: label file is empty; expected a header with {NAME_COLUMN} and {LABEL_COLUMN}")
    return rows[0], list(enumerate(rows[1:], start=2))


def _xlsx_rows(path: Path):
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises zipfile, KeyError and its own types for a damaged file
        raise DataError(f"{path}: cannot read the .xlsx label file ({type(err).__name__}: {err})") from None
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    if not rows:
        raise DataError(f"{path}: the first sheet is empty; expected a header with {NAME_COLUMN} and {LABEL_COLUMN}")
    return list(rows[0]), list(enumerate(rows[1:], start=2))

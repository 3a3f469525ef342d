"""Bring your own images: `folder:<path>`, one sub-folder per class.

If <path> holds train/ and val/ (or valid/, validation/, test/) folders, those are the splits;
otherwise every image is in <path>/<class>/ and one image in five of each class (every fifth in
name order, so the split never changes) is kept for validation.

Nothing under <path> is left out silently: every entry that is not an image of a class is named by
`unused()`, with why (a hidden file, another extension, a folder inside a class folder, a file
outside any class folder, a second validation folder), for `runner data check` and the run's notes.
A layout whose meaning is unclear is refused when the dataset is opened: a val/ without train/
(which images would train?), fewer than two classes, a class in val/ that train/ lacks.
"""
from __future__ import annotations

from pathlib import Path

from runner.data.images import IMAGE_SUFFIXES, image_files
from runner.data.source import DataSource, require_folder
from runner.errors import DataError

VAL_NAMES = ("val", "valid", "validation", "test")
HOLDOUT_EVERY = 5


class ImageFolder(DataSource):
    def __init__(self, location: Path):
        super().__init__(location)
        self.name = f"folder:{location}"
        require_folder(location, "image folder", "give a folder with one sub-folder of images per class")
        self.train_dir = location / "train" if (location / "train").is_dir() else None
        val_dirs = [location / n for n in VAL_NAMES if (location / n).is_dir()]
        self.val_dir = val_dirs[0] if val_dirs else None
        if self.train_dir is None and self.val_dir is not None:
            raise DataError(f"{location}: has {self.val_dir.name}/ but no train/, so which images train is unclear; "
                            f"put the training images in {location / 'train'}/<class>/, or move "
                            f"{self.val_dir.name}/ away to hold out one image in five of {location}/<class>/")
        base = self.train_dir or location
        self.class_names = class_folders(base)
        if len(self.class_names) == 1:
            raise DataError(f"{base}: one class folder only ({self.class_names[0]!r}); a classifier needs two or "
                            "more, each a sub-folder of images")
        if self.train_dir is not None and self.val_dir is not None:
            extra = sorted(set(class_folders(self.val_dir)) - set(self.class_names))
            if extra:
                raise DataError(f"{self.val_dir / extra[0]}: a class folder with no counterpart in {self.train_dir}; "
                                f"give every class a folder in both (classes in train/: {', '.join(self.class_names)})")

    def files(self, split: str):
        problems = []
        if not self.class_names:
            return [], [], [f"{self.location}: no class sub-folders"]
        if self.train_dir is not None:
            folder = self.train_dir if split == "train" else self.val_dir
            if folder is None:
                return [], [], [f"{self.location}: has train/ but no {'/'.join(VAL_NAMES)} folder"]
            pairs = self._labelled(folder, problems)
        else:
            pairs = [(p, y, i) for p, y, i in self._labelled(self.location, problems, with_index=True)
                     if (i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) == (split == "val")]
        return [p[0] for p in pairs], [p[1] for p in pairs], problems

    def _labelled(self, folder: Path, problems: list[str], with_index: bool = False):
        out, seen = [], {}
        for label, name in enumerate(self.class_names):
            class_dir = folder / name
            files = image_files(class_dir) if class_dir.is_dir() else []
            for i, path in enumerate(files):
                # a link makes one file two images: counted twice, or labelled with two classes
                real = path.resolve()
                if real in seen:
                    first, first_label = seen[real]
                    problems.append(f"{path}: the same file as {first}" + (
                        "" if first_label == label else f", labelled {self.class_names[first_label]!r} there"
                        f" and {name!r} here") + "; keep one copy")
                    continue
                seen[real] = (path, label)
                out.append((path, label, i) if with_index else (path, label))
        return out

    def unused(self) -> list[str]:
        """Every entry under the folder that is not an image of a class, with why it is not used."""
        notes = []
        if self.train_dir is not None:
            splits = [d for d in (self.train_dir, self.val_dir) if d is not None]
            for entry in sorted(self.location.iterdir()):
                if entry in splits:
                    continue
                if entry.name in VAL_NAMES and entry.is_dir():
                    why = f"the validation images are those of {self.val_dir}"
                else:
                    why = f"not inside {' or '.join(d.name + '/' for d in splits)}"
                notes.append(f"{entry}: not used ({why})")
        else:
            splits = [self.location]
        for split in splits:
            for entry in sorted(split.iterdir()):
                if entry.name in self.class_names and entry.is_dir():
                    notes += unused_in_class(entry)
                elif entry.is_dir():
                    notes.append(f"{entry}: not used (a hidden folder, not taken as a class)")
                else:
                    notes.append(f"{entry}: not used (not inside a class folder)")
        return notes


def class_folders(folder: Path) -> list[str]:
    """The class folders of a split: its sub-folders, but for hidden ones (.ipynb_checkpoints, .git)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def unused_in_class(class_dir: Path) -> list[str]:
    used = set(image_files(class_dir))
    notes = []
    for entry in sorted(class_dir.iterdir()):
        if entry in used:
            continue
        if entry.name.startswith("."):
            why = f"a hidden {'folder' if entry.is_dir() else 'file'}"
        elif entry.is_dir():
            count = sum(1 for p in entry.rglob("*") if p.is_file())
            why = (f"a folder inside class folder {class_dir.name!r}, holding {count} file(s): images of a class "
                   f"sit directly in {class_dir}")
        elif not entry.is_file():
            why = "not a regular file (a link to nothing?)"
        else:
            why = (f"not an image: {entry.suffix or 'no extension'} is not one of "
                   f"{', '.join(sorted(IMAGE_SUFFIXES))}")
        notes.append(f"{entry}: not used ({why})")
    return notes

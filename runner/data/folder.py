"""Bring your own images: `folder:<path>`, one sub-folder per class.

If <path> holds train/ and val/ (or valid/, validation/, test/) folders, those are the splits;
otherwise every image is in <path>/<class>/ and one image in five of each class (every fifth in
name order, so the split never changes) is kept for validation.
"""
from __future__ import annotations

from pathlib import Path

from runner.data.images import image_files
from runner.data.source import DataSource, require_folder

VAL_NAMES = ("val", "valid", "validation", "test")
HOLDOUT_EVERY = 5


class ImageFolder(DataSource):
    def __init__(self, location: Path):
        super().__init__(location)
        self.name = f"folder:{location}"
        require_folder(location, "image folder", "give a folder with one sub-folder of images per class")
        self.train_dir = location / "train" if (location / "train").is_dir() else None
        self.val_dir = next((location / n for n in VAL_NAMES if (location / n).is_dir()), None)
        base = self.train_dir or location
        self.class_names = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if self.train_dir is None:
            self.class_names = [c for c in self.class_names if c not in VAL_NAMES]

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

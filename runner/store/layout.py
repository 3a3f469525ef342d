"""Where a sweep's files live under outputs/<name>/ (the contract in the README)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def output_root() -> Path:
    return Path(os.environ.get("RUNNER_OUTPUT_ROOT", "outputs"))


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """--data-root, else $RUNNER_DATA_ROOT, else ./data."""
    return Path(data_root or os.environ.get("RUNNER_DATA_ROOT") or "data").expanduser()


def data_folders(datasets, data_root=None) -> list[Path]:
    """The folders a set of datasets reads: the data root, and the folders of `folder:` datasets."""
    folders = [Path(d.split(":", 1)[1]).expanduser() for d in datasets if d.startswith("folder:")]
    if any(not d.startswith("folder:") for d in datasets):
        folders.append(resolve_data_root(data_root))
    return [f.resolve() for f in dict.fromkeys(folders)]


@dataclass(frozen=True)
class SweepLayout:
    root: Path  # outputs/<name>

    @classmethod
    def for_experiment(cls, name: str) -> "SweepLayout":
        """outputs/<name>; a name that would lead outside the output root is refused."""
        root = output_root()
        folder = root / name
        if not name or folder.resolve().parent != root.resolve():
            from runner.errors import ConfigError

            raise ConfigError(f"name = {name!r} does not name a folder inside the output root {root}; "
                              "use letters, digits, '.', '_' or '-'")
        return cls(folder)

    @property
    def registry(self) -> Path:
        return self.root / "runs.sqlite"

    @property
    def lock(self) -> Path:
        return self.root / ".sweep.lock"

    @property
    def vdl(self) -> Path:
        return self.root / "vdl"

    @property
    def stale(self) -> Path:
        """Where --retrain-stale moves the files of runs trained on other data than there is now."""
        return self.root / "stale"

    @property
    def cache(self) -> Path:
        return self.root.parent / ".cache"

    def run(self, run_id: str) -> "RunLayout":
        return RunLayout(self, run_id)


@dataclass(frozen=True)
class RunLayout:
    sweep: SweepLayout
    run_id: str

    @property
    def vdl(self) -> Path:
        return self.sweep.vdl / self.run_id

    @property
    def checkpoints(self) -> Path:
        return self.sweep.root / "checkpoints" / self.run_id

    @property
    def folder(self) -> Path:
        """result.json, predictions.npz, train.log, progress.json"""
        return self.sweep.root / "runs" / self.run_id

    @property
    def result(self) -> Path:
        return self.folder / "result.json"

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions.npz"

    @property
    def gradcam(self) -> Path:
        return self.folder / "gradcam.npz"

    @property
    def progress(self) -> Path:
        return self.folder / "progress.json"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"

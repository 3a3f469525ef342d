"""Where a sweep's files live under outputs/<name>/ (the contract in the README)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def output_root() -> Path:
    return Path(os.environ.get("RUNNER_OUTPUT_ROOT", "outputs"))


@dataclass(frozen=True)
class SweepLayout:
    root: Path  # outputs/<name>

    @classmethod
    def for_experiment(cls, name: str) -> "SweepLayout":
        return cls(output_root() / name)

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
    def progress(self) -> Path:
        return self.folder / "progress.json"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"

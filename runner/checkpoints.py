"""Checkpoints that survive kill -9 and full disks.

Each finished epoch is saved with `paddle.Model.save` into a hidden temporary folder that is then
renamed to `epoch-NNNN/` in one atomic step, so a folder with that name is always complete. The
newest two are kept: if the newest cannot be read on resume, the one before it is used. The best
epoch so far is kept in `best/` the same way.

    checkpoints/<run-id>/run.json          the run's configuration (for `runner predict`)
    checkpoints/<run-id>/epoch-0003/       model.pdparams, model.pdopt, state.json (history so far)
    checkpoints/<run-id>/best/             model.pdparams, model.pdopt, state.json
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from runner.errors import RunnerError
from runner.faults import fault_point

KEEP = 2


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Checkpoints:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def epoch_dirs(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted((p for p in self.folder.glob("epoch-*") if p.is_dir()), reverse=True)

    def save(self, model, epochs_done: int, state: dict) -> Path:
        target = self._save_folder(model, f"epoch-{epochs_done:04d}", state)
        for old in self.epoch_dirs()[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def save_best(self, model, state: dict) -> Path:
        return self._save_folder(model, "best", state)

    def _save_folder(self, model, name: str, state: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp, target = self.folder / f".tmp-{name}", self.folder / name
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            model.save(str(tmp / "model"))
            fault_point("checkpoint-write")
            write_json_atomic(tmp / "state.json", state)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RunnerError(f"could not write checkpoint {target} ({err.strerror or err}); the previous "
                              "checkpoint is kept. Free disk space, then run again to resume") from None
        if target.exists():  # a folder cannot be renamed over a full one: move the old one aside first
            old = self.folder / f".old-{name}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        return target

    def restore(self, model) -> tuple[dict | None, list[str]]:
        """Load the newest readable epoch into `model`: (its state, notes on checkpoints skipped)."""
        notes = []
        for folder in self.epoch_dirs():
            try:
                state = json.loads((folder / "state.json").read_text())
                model.load(str(folder / "model"))
                return state, notes
            except Exception as err:  # truncated pickle, missing file, bad json: try the one before
                notes.append(f"checkpoint {folder} is unreadable ({type(err).__name__}); skipped it")
        return None, notes

"""Checkpoints that survive kill -9 and full disks (paddle is imported only to write them).

Each finished epoch is saved with `paddle.Model.save` into a hidden temporary folder that is then
renamed to `epoch-NNNN/` in one atomic step, so a folder with that name is always complete. While
a run trains the newest two are kept: if the newest cannot be read on resume, the one before it is
used. Once the run has finished only the last epoch stays (VGG-16's is 1.1 GB with its Adam state),
next to the best epoch, which is kept in `best/` the same way.

    checkpoints/<run-id>/run.json          the run's configuration (for `runner predict`)
    checkpoints/<run-id>/epoch-0003/       model.pdparams, model.pdopt, state.json (history so far),
                                           callbacks.npz (a callback's own state, e.g. Lookahead's average)
    checkpoints/<run-id>/best/             model.pdparams, state.json

`best/` holds the weights only (it is for predictions; resuming uses the epoch folders), and an
epoch that is also the best one hard-links those weights instead of writing them again: AlexNet's
weights are 288 MB and its Adam state twice that, about 6 s of writing per copy on this machine.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from runner.errors import RunnerError
from runner.faults import fault_point
from runner.store.runfiles import write_json_atomic

KEEP = 2
ARRAYS = "callbacks.npz"  # the state of callbacks that keep their own (runner.callbacks.Lookahead)


class Checkpoints:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def epoch_dirs(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted((p for p in self.folder.glob("epoch-*") if p.is_dir()), reverse=True)

    def newest_epoch(self) -> int:
        """The number of the newest saved epoch, 0 if none (whether it is readable is up to restore)."""
        newest = self.epoch_dirs()[:1]
        return int(newest[0].name.split("-")[1]) if newest else 0

    def save(self, model, epochs_done: int, state: dict, weights_as_best: bool = False,
             arrays: dict | None = None) -> Path:
        """Weights, optimizer state, `state` and the callbacks' `arrays` (numpy, in callbacks.npz);
        with `weights_as_best`, the weights are the ones `save_best` has just written for this epoch."""
        best_weights = self.folder / "best" / "model.pdparams"

        def write(prefix):
            save_training_state(model, prefix, best_weights if weights_as_best else None)
            if arrays:
                np.savez(Path(prefix).with_name(ARRAYS), **arrays)

        target = self._save_folder(f"epoch-{epochs_done:04d}", state, write)
        self._keep_newest(KEEP)
        return target

    def keep_last_only(self) -> None:
        """For a finished run: the fallback to an older epoch only guards an unfinished one."""
        self._keep_newest(1)

    def _keep_newest(self, count: int) -> None:
        for old in self.epoch_dirs()[count:]:
            shutil.rmtree(old, ignore_errors=True)

    def save_best(self, model, state: dict) -> Path:
        import paddle

        return self._save_folder("best", state, lambda prefix: paddle.save(model.network.state_dict(),
                                                                          f"{prefix}.pdparams"))

    def _save_folder(self, name: str, state: dict, write) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp, target = self.folder / f".tmp-{name}", self.folder / name
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            write(str(tmp / "model"))
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
                if (folder / ARRAYS).exists():
                    with np.load(folder / ARRAYS, allow_pickle=False) as saved:  # arrays only: no code runs
                        state["arrays"] = {k: saved[k] for k in saved.files}
                return state, notes
            except Exception as err:  # truncated pickle, missing file, bad json: try the one before
                notes.append(f"checkpoint {folder} is unreadable ({type(err).__name__}); skipped it")
        return None, notes


def save_training_state(model, prefix: str, weights_from: Path | None = None) -> None:
    """What paddle.Model.save writes for training (weights, optimizer, AMP scaler), with the weights
    hard-linked from `weights_from` when given."""
    import paddle

    if weights_from is None:
        model.save(prefix)
        return
    try:
        os.link(weights_from, f"{prefix}.pdparams")
    except OSError:  # a file system without hard links
        shutil.copyfile(weights_from, f"{prefix}.pdparams")
    if model._optimizer is not None and model._optimizer.state_dict():
        paddle.save(model._optimizer.state_dict(), f"{prefix}.pdopt")
    if getattr(model, "_scaler", None) is not None and model._scaler.state_dict():
        paddle.save(model._scaler.state_dict(), f"{prefix}.pdscaler")

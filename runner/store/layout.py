"""Where a sweep's files live under outputs/<name>/ (the contract in the README): every path a sweep,
a worker or the report uses is named here, once."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def output_root() -> Path:
    return Path(os.environ.get("RUNNER_OUTPUT_ROOT", "outputs"))


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """--data-root, else $RUNNER_DATA_ROOT, else ./data."""
    return Path(data_root or os.environ.get("RUNNER_DATA_ROOT") or "data").expanduser()


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot be a sweep's folder, if something other than a folder holds its name."""
    if folder.is_symlink() and not folder.exists():
        return (f"{folder} is a link to {os.readlink(folder)}, which does not exist (a disk not mounted?); "
                "mount it, or remove the link to write here")
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder; move it aside, or give the experiment another name"
    return None


def data_folders(datasets, data_root=None) -> list[Path]:
    """The folders a set of datasets reads: the data root, and the folders of `folder:` datasets."""
    folders = [Path(d.split(":", 1)[1]).expanduser() for d in datasets if d.startswith("folder:")]
    if any(not d.startswith("folder:") for d in datasets):
        folders.append(resolve_data_root(data_root))
    return [f.resolve() for f in dict.fromkeys(folders)]


@dataclass(frozen=True)
class SweepPaths:
    root: Path  # outputs/<name>

    @classmethod
    def for_experiment(cls, name: str) -> "SweepPaths":
        """outputs/<name>; a name that would lead outside the output root is refused. The name is
        judged as written, not where it resolves to: outputs/<name> may be a link to another disk."""
        root = output_root()
        folder = root / name
        if not name or name in (".", "..") or Path(name).name != name:
            from runner.errors import ConfigError

            raise ConfigError(f"name = {name!r} does not name a folder inside the output root {root}; "
                              "use letters, digits, '.', '_' or '-'")
        return cls(folder)

    @property
    def registry(self) -> Path:
        return self.root / "runs.sqlite"

    @property
    def study(self) -> Path:
        """A search's Optuna storage."""
        return self.root / "study.sqlite"

    @property
    def lock(self) -> Path:
        return self.root / ".sweep.lock"

    @property
    def write_probe(self) -> Path:
        """Written and removed at the start of a sweep: is the folder writable?"""
        return self.root / ".write-test"

    @property
    def cluster_check(self) -> Path:
        """Written by the sweep and read on every Ray node: do they all see this folder?"""
        return self.root / ".cluster-check"

    @property
    def results_md(self) -> Path:
        return self.root / "results.md"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def figure(self, name: str) -> Path:
        """A comparison figure (accuracy_by_group.png, ...), beside the tables."""
        return self.root / name

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

    def run_paths(self, run_id: str) -> "RunPaths":
        return RunPaths(self, run_id)


@dataclass(frozen=True)
class RunPaths:
    sweep: SweepPaths
    run_id: str

    @property
    def vdl(self) -> Path:
        return self.sweep.vdl / self.run_id

    @property
    def checkpoints(self) -> Path:
        return self.sweep.root / "checkpoints" / self.run_id

    @property
    def run_json(self) -> Path:
        """The run's id, configuration and class names beside its checkpoints, for `runner predict`."""
        return self.checkpoints / "run.json"

    @property
    def folder(self) -> Path:
        """job.json, progress.json, verdict.json (a search's trials), result.json, predictions.npz, gradcam.npz, error.txt, train.log;
        robustness.json and robustness-job.json once its robustness is scored"""
        return self.sweep.root / "runs" / self.run_id

    @property
    def job(self) -> Path:
        return self.folder / "job.json"

    @property
    def result(self) -> Path:
        return self.folder / "result.json"

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions.npz"

    @property
    def robustness(self) -> Path:
        """accuracy, AUC and ECE per corruption and severity (runner/run/robustness.py)"""
        return self.folder / "robustness.json"

    @property
    def gradcam(self) -> Path:
        return self.folder / "gradcam.npz"

    @property
    def progress(self) -> Path:
        return self.folder / "progress.json"

    @property
    def verdict(self) -> Path:
        """The sweep's word that a run its search may prune can go on: the last epoch it has judged."""
        return self.folder / "verdict.json"

    @property
    def error(self) -> Path:
        return self.folder / "error.txt"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"

    @property
    def launch_logs(self) -> Path:
        """paddle.distributed.launch's own logs, one file per process, for nproc > 1."""
        return self.folder / "launch"

    @property
    def ranks(self) -> Path:
        """rank-<r>.json per process of a run on nproc > 1: the training images each computed."""
        return self.folder / "ranks"

    @property
    def figures(self) -> Path:
        """The run's own figures for report.html (curves, confusion matrix, ROC), drawn once."""
        return self.folder / "figures"


@dataclass(frozen=True)
class RobustnessPaths(RunPaths):
    """A finished run's paths for the worker that scores its robustness (runner/run/robustness.py):
    the run's own folder and log, with a job of its own, so that job.json stays the training's."""

    @property
    def job(self) -> Path:
        return self.folder / "robustness-job.json"


def zoo_cache(version: str) -> Path:
    """What the model zoo answered the sweep (runner/zoo.py), for one version of the zoo: in the
    user's cache folder, since it holds no result and a dry run writes nothing under the outputs."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "runner" / f"zoo-{version}.json"

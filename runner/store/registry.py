"""The run registry of a sweep: outputs/<name>/runs.sqlite (sqlite3, WAL).

One row per run: id, config JSON, status (queued | running | done | failed | interrupted | pruned),
metrics JSON, error text, timestamps. Every change is one short transaction, so a process
killed at any moment (even kill -9) leaves the last committed state, never a torn one.
Only the sweep process writes here; its workers report through files.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from runner.errors import RunnerError

SCHEMA_VERSION = 2  # 2: the status `pruned` (a search's pruner stopped the run)
# What of a finished run's result.json the registry keeps as its metrics.
METRIC_FIELDS = ("final", "best", "best_epoch", "epochs_run", "stopped_early", "train_seconds", "eval_seconds",
                 "train_cpu_seconds", "setup_seconds", "finish_seconds", "images_per_second", "parameters", "flops", "train_images", "val_images", "peak_memory_mb",
                 "host", "node")

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted', 'pruned')),
    metrics     TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    position    INTEGER NOT NULL DEFAULT 0
)"""
SWEEP_TIMINGS_KEPT = 20  # the newest sweeps' own timings, for the estimate (runner/sweep/estimate.py)
SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);" + RUNS_TABLE.format(name="runs")


def now() -> float:
    return round(time.time(), 3)


class RunRegistry:
    def __init__(self, path: Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise RunnerError(f"no run registry at {self.path}: run a sweep there first")
        try:
            if self.path.exists():
                self._refuse_foreign_file()
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._check_version(create)
        except sqlite3.DatabaseError as err:
            raise RunnerError(f"{self.path} is not a readable run registry ({err}); it was left untouched. "
                              "Move it aside to start the sweep afresh") from None

    def _refuse_foreign_file(self) -> None:
        """Look at an existing file read-only first: a registry we must refuse is never written to
        (even opening it read-write would fold its journal into it)."""
        probe = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            self.db = probe
            self._check_version(create=False)
        finally:
            probe.close()

    def _check_version(self, create: bool) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise RunnerError(f"{self.path} was written by a newer runner (registry version {version}, "
                                  f"this runner reads {SCHEMA_VERSION}); upgrade runner — the file was left untouched")
            if version < SCHEMA_VERSION and create:
                self._upgrade()
            return
        if tables - {"meta", "runs"}:
            raise RunnerError(f"{self.path} is an sqlite file but not a run registry; it was left untouched")
        if create:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _upgrade(self) -> None:
        """Version 1 -> 2 in one transaction: sqlite cannot widen a CHECK, so the table is copied."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(RUNS_TABLE.format(name="runs_v2"))
            self.db.execute("INSERT INTO runs_v2 SELECT * FROM runs")
            self.db.execute("DROP TABLE runs")
            self.db.execute("ALTER TABLE runs_v2 RENAME TO runs")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.db.close()

    # ---- reading ------------------------------------------------------------------------------

    def rows(self, status: str | None = None) -> list[dict]:
        query = "SELECT * FROM runs" + (" WHERE status = ?" if status else "") + " ORDER BY position, created_at"
        return [self._as_dict(r) for r in self.db.execute(query, (status,) if status else ())]

    def get(self, run_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._as_dict(row) if row else None

    def current(self) -> tuple[list[str] | None, str | None]:
        """The run ids of the experiment file last run here, and that file (None before any)."""
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('current_runs', 'current_file')"))
        ids = json.loads(rows["current_runs"]) if "current_runs" in rows else None
        return ids, rows.get("current_file")

    def overrides(self) -> dict[str, list[str]]:
        """{run id: the command line's assignments it was trained with} for runs not of the file alone."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'run_overrides'").fetchone()
        return json.loads(row[0]) if row else {}

    def sweep_timings(self) -> list[dict]:
        """The newest sweeps' own timings here: start_seconds (the process's start to its first run
        started), report_seconds (its closing report), runs (in that report)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'sweep_timings'").fetchone()
        return json.loads(row[0]) if row else []

    @staticmethod
    def _as_dict(row) -> dict:
        out = dict(row)
        out["config"] = json.loads(out["config"])
        out["metrics"] = json.loads(out["metrics"]) if out["metrics"] else None
        return out

    # ---- writing: each a single transaction ---------------------------------------------------

    def add(self, run_id: str, name: str, config: dict, position: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO runs (id, name, config, status, created_at, position) "
                        "VALUES (?, ?, ?, 'queued', ?, ?)", (run_id, name, json.dumps(config), now(), position))
        self.db.execute("UPDATE runs SET position = ? WHERE id = ?", (position, run_id))

    def set_current(self, run_ids: list[str], source: str) -> None:
        """Which runs the experiment file now holds: the summary and the table speak of these."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('current_runs', ?)", (json.dumps(run_ids),))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('current_file', ?)", (source,))

    def record_overrides(self, run_ids: list[str], overrides: list[str]) -> None:
        """Runs made by a command line's --set (or --devices, --nproc) from the file's: the table names
        them by those rather than as runs gone from the file."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            known = self.overrides()
            known.update({run_id: list(overrides) for run_id in run_ids})
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('run_overrides', ?)", (json.dumps(known),))

    def record_sweep_timing(self, start_seconds: float, report_seconds: float, runs: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            kept = self.sweep_timings()[-(SWEEP_TIMINGS_KEPT - 1):]
            kept.append({"start_seconds": round(start_seconds, 3), "report_seconds": round(report_seconds, 3),
                         "runs": runs})
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('sweep_timings', ?)", (json.dumps(kept),))

    def mark_running(self, run_id: str) -> None:
        self.db.execute("UPDATE runs SET status='running', started_at=?, error=NULL, attempts=attempts+1 "
                        "WHERE id=?", (now(), run_id))

    def mark_done(self, run_id: str, result: dict) -> None:
        """Done, with the METRIC_FIELDS of the run's result."""
        metrics = {k: result.get(k) for k in METRIC_FIELDS}
        self.db.execute("UPDATE runs SET status='done', metrics=?, error=NULL, finished_at=? WHERE id=?",
                        (json.dumps(metrics), now(), run_id))

    def mark_failed(self, run_id: str, error: str) -> None:
        self.db.execute("UPDATE runs SET status='failed', error=?, finished_at=? WHERE id=?", (error, now(), run_id))

    def mark_pruned(self, run_id: str, why: str) -> None:
        self.db.execute("UPDATE runs SET status='pruned', error=?, finished_at=? WHERE id=?", (why, now(), run_id))

    def mark_queued(self, run_id: str, why: str) -> None:
        """A run to train afresh (its old files set aside): no metrics, whatever it was."""
        self.db.execute("UPDATE runs SET status='queued', metrics=NULL, error=?, finished_at=NULL WHERE id=?",
                        (why, run_id))

    def mark_interrupted(self, run_id: str, why: str = "interrupted") -> None:
        self.db.execute("UPDATE runs SET status='interrupted', error=? WHERE id=? AND status='running'", (why, run_id))


class KeptRuns:
    """A sweep folder as a fresh clone has it: no registry, only the run files git keeps (docs/outputs.md,
    "Results kept in the repository"). It reads like a registry for the report: every run folder
    holding a result.json is a finished run. Nothing is written; a sweep there rebuilds a real
    registry from the same files (runner/sweep/session.py)."""

    def __init__(self, sweep_root: Path):
        self.ids = sorted(p.parent.name for p in Path(sweep_root).glob("runs/*/result.json"))

    def rows(self, status: str | None = None) -> list[dict]:
        return [{"id": run_id, "status": "done"} for run_id in self.ids] if status in (None, "done") else []

    def current(self) -> tuple[None, None]:
        return None, None

    def overrides(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def registry_to_read(path: Path) -> RunRegistry | KeptRuns:
    """The registry at `path` for reading, or, where there is none but its folder holds finished
    runs' files, KeptRuns; else the registry's own error."""
    path = Path(path)
    if not path.exists():
        kept = KeptRuns(path.parent)
        if kept.ids:
            return kept
    return RunRegistry(path, create=False)

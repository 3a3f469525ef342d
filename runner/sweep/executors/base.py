"""The executor interface: start a run's worker, report the ones that ended, stop them all."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.sweep.plan import PlannedRun


@dataclass
class Ended:
    planned: PlannedRun
    code: int  # the worker's exit code; negative: killed by that signal
    lost: str | None = None  # the executor lost the worker (say, its node died): why


class Executor:
    name = "?"

    def capacity(self) -> int:
        """How many one-core runs can train at once."""
        return 1

    def fits(self, planned: PlannedRun, idle: bool) -> bool:
        """Whether `planned` can start now (`idle`: nothing is running)."""
        raise NotImplementedError

    def place(self, planned: PlannedRun) -> dict:
        """The run's configuration as it will run here (a GPU of its own, say); its id is unchanged."""
        return planned.spec.config

    def start(self, planned: PlannedRun, job: Path, config: dict) -> None:
        raise NotImplementedError

    def running(self) -> list[PlannedRun]:
        raise NotImplementedError

    def ended(self) -> list[Ended]:
        """The runs whose workers have ended since the last call (never blocks)."""
        raise NotImplementedError

    def stop(self, run_id: str) -> None:
        """Stop one run's worker as Ctrl-C would (a search's pruner); it ends like any other."""
        raise NotImplementedError

    def stop_all(self) -> list[PlannedRun]:
        """Ctrl-C or SIGTERM of the sweep: stop every worker, as cleanly as each allows; the runs stopped."""
        raise NotImplementedError

    def close(self) -> None:
        pass

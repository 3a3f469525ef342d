"""Crash points for the fault-injection tests.

`RUNNER_FAULT="<point>:<n>"` kills the sweep with SIGKILL the n-th time a process reaches <point>
(train-step, eval, checkpoint-write, registry-update). A worker kills its sweep (and then dies
with it, see runner.processes.die_with_parent); any other process kills itself. `<point>:<n>:self` kills
only the process that reaches it (a worker dying alone, as the OOM killer or a lost node would
end it). With `RUNNER_FAULT_ONCE=<file>` the fault strikes once: it creates the file, and does
nothing while the file exists. Unset, this does nothing.
"""
import os
import signal

from runner.store.jobs import WORKER_VARIABLE

_reached: dict[str, int] = {}


def fault_point(name: str) -> None:
    spec = os.environ.get("RUNNER_FAULT")
    if not spec:
        return
    point, _, rest = spec.partition(":")
    nth, _, scope = rest.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] != int(nth or 1):
        return
    once = os.environ.get("RUNNER_FAULT_ONCE")
    if once:
        if os.path.exists(once):
            return
        open(once, "w").close()
    if scope != "self" and os.environ.get(WORKER_VARIABLE):
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)

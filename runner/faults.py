"""Crash points for the fault-injection tests.

`RUNNER_FAULT="<point>:<n>"` kills the sweep with SIGKILL the n-th time a process reaches <point>
(train-step, eval, checkpoint-write, registry-update). A worker kills its sweep (and then dies
with it, see processes.die_with_parent); any other process kills itself. Unset, this does nothing.
"""
import os
import signal

_reached: dict[str, int] = {}


def fault_point(name: str) -> None:
    spec = os.environ.get("RUNNER_FAULT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(nth or 1):
        target = os.getppid() if os.environ.get("RUNNER_WORKER") else os.getpid()
        os.kill(target, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

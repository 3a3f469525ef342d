"""Child processes that never outlive the runner."""
import ctypes
import signal


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the child gets SIGKILL when its parent dies, even by kill -9, so a
    restarted sweep never finds an orphan still writing the run it is about to resume, and no
    VisualDL server is left behind."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass

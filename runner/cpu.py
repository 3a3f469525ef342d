"""CPU facts that decide how fast paddle trains here.

Paddle's bundled MKL picks its kernels by CPU vendor: on AMD it falls back to a slow generic path
unless MKL_DEBUG_CPU_TYPE=5 is set before the library loads (what it gains: docs/performance.md).
Results are unchanged (the same float32 maths, other kernels), so we set it by default on AMD and
leave Intel CPUs alone. Opt out with RUNNER_MKL_TUNE=0.
"""
from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def tune_math_library() -> bool:
    """Set MKL's AMD switch if it can still take effect. Returns whether it is in force."""
    if os.environ.get("RUNNER_MKL_TUNE", "1") == "0":
        return False
    if cpu_vendor() == "AuthenticAMD" and "paddle" not in sys.modules:
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    return os.environ.get("MKL_DEBUG_CPU_TYPE") == "5"


def set_math_threads(threads: int) -> None:
    """Threads of paddle's CPU math library for this process (paddle starts with one).

    More threads train faster (docs/performance.md), but they split sums differently, so results
    change in the last bits and then drift: the thread count is part of a run's configuration
    (`threads`), not a hidden speed knob."""
    import paddle.base.core as core

    core.set_num_threads(max(1, int(threads)))


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    Paddle allocates each step's activations and gradients afresh with malloc. By default glibc
    serves large blocks with mmap and unmaps them when freed, so every step page-faults its tensors
    in again (what that costs, and what keeping them saves: docs/performance.md). Results are unchanged: this decides where tensors live, not what they hold. The price: a
    training process keeps its peak memory until it exits. Opt out with RUNNER_MALLOC_TUNE=0.
    Returns whether the setting is in force (glibc only)."""
    if os.environ.get("RUNNER_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl and other C libraries have no mallopt
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    # heap only (no mmap), and never give the top of the heap back
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

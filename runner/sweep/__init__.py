"""The sweep's own process: the lock, the loop (sweeps and searches), the plan, the live progress,
and the executors that start each run's worker (locally or on Ray)."""

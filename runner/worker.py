"""One run in its own process, as the sweep starts it: `python -m runner.worker runs/<id>/job.json`.

Paddle keeps global state and memory per process and computes in one thread on CPU, so a sweep
runs each run in a worker of its own and several workers side by side. A worker reports through
files only: progress.json while it trains, result.json when it has finished, error.txt if it
failed. The sweep process is the registry's only writer.
"""
from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from pathlib import Path

EXIT_FAILED, EXIT_INTERRUPTED = 3, 4


def main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    from runner.checkpoints import write_json_atomic
    from runner.config import RunSpec, with_defaults
    from runner.errors import RunnerError
    from runner.layout import SweepLayout
    from runner.train import train_run

    spec = RunSpec(job["experiment"], with_defaults(job["config"]))
    layout = SweepLayout(Path(job["sweep_root"])).run(spec.run_id)
    error_file = layout.folder / "error.txt"
    error_file.unlink(missing_ok=True)
    last_write = 0.0

    def report(event, **details):
        """One line per note, start and epoch in train.log; progress.json for the sweep's overview,
        at most twice a second."""
        nonlocal last_write
        record = details.pop("record", None)
        if event in ("note", "start", "epoch"):
            line = details | ({"epoch": record["epoch"], "val": record["val"]} if record else {})
            print(event, json.dumps(line, default=str), flush=True)
        if event == "epoch" or (event in ("step", "start") and time.monotonic() - last_write > 0.5):
            last_write = time.monotonic()
            progress = {"event": event, "time": time.time()}
            progress.update({k: v for k, v in details.items() if k in ("epoch", "step", "steps", "loss", "epochs")})
            if record:
                progress.update(epoch=record["epoch"], val_acc=record["val"].get("acc"))
            write_json_atomic(layout.progress, progress)

    try:
        train_run(spec, layout, job.get("data_root"), Path(job["cache_dir"]), report)
        return 0
    except KeyboardInterrupt:
        error_file.write_text("interrupted (Ctrl-C); run the sweep again to resume from the last finished epoch")
        return EXIT_INTERRUPTED
    except RunnerError as err:
        error_file.write_text(str(err))
        return EXIT_FAILED
    except Exception as err:  # anything else: one line for the table, the traceback in train.log
        traceback.print_exc()
        error_file.write_text(f"{type(err).__name__}: {err} (traceback in {layout.log})")
        return EXIT_FAILED


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a terminated worker stops like Ctrl-C
    sys.exit(main(sys.argv[1]))

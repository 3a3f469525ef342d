"""The live view of a sweep: its table says where each run is in one line a run, however many
steps, epochs, notes and resumes it has been through."""
from conftest import tiny_experiment
from rich.console import Console

from runner.cli import progress_table
from runner.config import load_experiment
from runner.sweep.plan import PlannedRun
from runner.sweep.progress import SweepProgress

THREE = '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\n[[runs]]\nmodel = "paddle.vision/mobilenet_v2"\n'
STEPS, EPOCHS = 40, 4


def body_lines(progress: SweepProgress, width: int = 120) -> list[str]:
    """The rendered table's lines between its header and its bottom border: one per row if no cell wraps."""
    console = Console(record=True, width=width, color_system=None)
    console.print(progress_table(progress, width))
    lines = console.export_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[start + 1:end]


def test_every_row_of_the_live_table_stays_one_line_over_whole_runs(tmp_path):
    experiment = load_experiment(tiny_experiment(tmp_path, THREE, epochs=EPOCHS))
    planned = [PlannedRun(spec, "new", "run") for spec in experiment.runs]
    progress = SweepProgress(parallel=2)
    renders, cells = [], []

    def event(kind, **details):
        progress.on_event(kind, **details)
        renders.append(body_lines(progress))
        cells.extend(row[6] for row in progress.rows())

    def train(p, first_epoch=1, last_epoch=EPOCHS):
        done = []
        for epoch in range(first_epoch, last_epoch + 1):
            for step in range(1, STEPS + 1):
                event("progress", run_id=p.spec.run_id, progress={"event": "step", "epoch": epoch, "step": step,
                                                                   "steps": STEPS, "epochs_done": list(done)})
            record = {"epoch": epoch, "val": {"loss": 0.5 / epoch, "acc": 0.6 + epoch / 100, "auc": 0.7},
                      "seconds": 3.0}
            done.append(record)
            event("progress", run_id=p.spec.run_id, progress={"event": "epoch", "epochs": EPOCHS, "epochs_done": done})
            event("epoch", planned=p, record=record)
            event("note", message="a file of the dataset's folder was left out: " + "x" * 80)

    lenet, alexnet, mobilenet = planned
    event("plan", planned=planned)
    event("started", planned=lenet)
    event("started", planned=alexnet)
    train(lenet, last_epoch=2)
    event("finished", planned=lenet, status="interrupted",
          error="killed by signal 9; resuming from its last checkpoint (1 of 2)")
    event("started", planned=lenet)  # resumed after epoch 2
    train(lenet, first_epoch=3)
    event("finished", planned=lenet, status="done",
          result={"epochs_run": EPOCHS, "final": {"acc": 0.64}, "train_seconds": 12.0})
    train(alexnet)
    event("finished", planned=alexnet, status="failed", error="the loss is nan at epoch 4 " + "and more " * 30)
    event("started", planned=mobilenet)
    train(mobilenet, last_epoch=3)

    assert len(renders) > 3 * EPOCHS * STEPS
    for lines in renders:
        assert len(lines) == len(planned), "\n".join(lines)
        for p in planned:
            assert sum(p.spec.run_id in line for line in lines) == 1, "\n".join(lines)
    for cell in cells:  # what a cell holds, not only what fits on the screen: said once each
        assert cell.count("step") <= 1 and cell.count("acc") <= 1, cell
    last = renders[-1]
    assert "step 40/40" not in last[2] and "val acc" in last[2] and last[2].count("val acc") == 1
    mid = body_lines(progress)
    progress.on_event("progress", run_id=mobilenet.spec.run_id,
                      progress={"event": "step", "epoch": 4, "step": 7, "steps": STEPS, "epochs_done": []})
    row = body_lines(progress)[2]
    assert row.count("step") == 1 and "step 7/40" in row and row.count("val acc") == 1, (mid, row)

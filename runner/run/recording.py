"""What a run keeps of each epoch: its history, best epoch, validation predictions, checkpoints and
VisualDL log. One object holds that state, restores it from the newest checkpoint on resume and
saves it with every epoch, so an interrupted run picks up exactly where it stopped.

    recorder = RunRecorder(spec, paths, model, checkpoints, state, class_names, on_event)
    History(..., on_epoch_done=recorder.epoch_done, on_step=recorder.step_done)
"""
from __future__ import annotations

import numpy as np

from runner.store.runfiles import load_predictions, save_predictions


class RunRecorder:
    def __init__(self, spec, paths, model, checkpoints, state: dict | None, class_names: list[str], on_event,
                 main: bool = True, val_order: np.ndarray | None = None, data_digest: str | None = None):
        self.spec, self.paths, self.model, self.checkpoints = spec, paths, model, checkpoints
        self.data_digest = data_digest  # the data fingerprint each checkpoint is saved with
        self.class_names, self.on_event, self.main, self.val_order = class_names, on_event, main, val_order
        self.history: list[dict] = state["history"] if state else []
        self.best: dict | None = state["best"] if state else None
        self.stopped_early = bool(state and state.get("stopped_early"))
        self.predictions = load_predictions(paths) if self.history else {}
        self.log = None
        self.steps_per_epoch = 0
        self.stateful: list = []  # callbacks whose own state (arrays()) is saved with each checkpoint

    def open_log(self, steps_per_epoch: int, input_grid: np.ndarray) -> None:
        """The run's VisualDL log, whole across resumes (records past the resumed epoch are dropped)."""
        from runner.run.vdl import RunLog

        self.steps_per_epoch = steps_per_epoch
        if not self.main:
            return
        self.log = RunLog(self.paths.vdl, self.spec.display_name, len(self.history), steps_per_epoch)
        if not self.history:
            self.log.hparams(self.spec.config, self.spec.varies)
            self.log.image("inputs/train", input_grid)

    def step_done(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if self.log:
            self.log.step_loss((epoch - 1) * self.steps_per_epoch + step, loss)
        self.on_event("step", epoch=epoch, step=step, steps=steps, loss=loss)

    def epoch_done(self, record: dict, probs: np.ndarray, labels: np.ndarray) -> None:
        record["stopped_early"] = bool(self.model.stop_training)
        tta = self.spec.config.get("tta", 0)
        if tta:  # runner/run/tta.py: the last epoch's evaluation averages the views
            record["tta"] = tta if record["epoch"] == self.spec.config["epochs"] else 0
        if self.val_order is not None:  # all-gathered predictions come rank by rank: back to dataset order
            probs, labels = reorder(probs, self.val_order), reorder(labels, self.val_order)
        is_best = self.best is None or record["val"]["acc"] > self.best["val"]["acc"]
        if is_best:
            self.best = record
        if not self.main:
            return
        self.log.epoch(record)
        self.predictions.update(final=probs, labels=labels)
        if is_best:
            self.predictions["best"] = probs
            self.checkpoints.save_best(self.model, {"best": self.best})
        save_predictions(self.paths, self.predictions)
        arrays = {k: v for callback in self.stateful for k, v in callback.arrays().items()}
        self.checkpoints.save(self.model, record["epoch"], self.state(record["stopped_early"]), weights_as_best=is_best,
                              arrays=arrays)
        self.on_event("epoch", record=record, epochs=self.spec.config["epochs"])

    def state(self, stopped_early: bool) -> dict:
        return {"history": self.history, "best": self.best, "stopped_early": stopped_early,
                "data_digest": self.data_digest}

    def close_log(self) -> None:
        if self.log:
            self.log.close()
            self.log = None

    def finish(self, gradcam: dict) -> None:
        """Once the run has trained: the final epoch's confusion matrix and ROC (the epoch the table
        shows) and the Grad-CAM of the final network, drawn once for VisualDL."""
        if not self.main or not self.history or "final" not in self.predictions:
            return
        from runner.run.vdl import RunLog

        epoch = self.history[-1]["epoch"]
        log = RunLog(self.paths.vdl, self.spec.display_name, len(self.history), self.steps_per_epoch)
        try:
            log.final_epoch(epoch, self.predictions["final"], self.predictions["labels"], self.class_names)
            if gradcam:
                log.gradcam(gradcam, self.class_names, epoch, self.predictions["final"])
        finally:
            log.close()


def reorder(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out

"""VisualDL logs of one run, with tags shared by every run so the scalar view overlays them.

    train/loss_step      loss of every training batch
    loss/train, loss/val, acc/train, acc/val, auc/val, ...   one point per epoch
    lr                   learning rate of each epoch
    inputs/train         a grid of training inputs as the network sees them (after augmentation)
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from runner.config import dotted
from runner.store.runfiles import atomic_write

HPARAM_METRICS = ["acc/val", "loss/val", "auc/val"]
# One record file per run, appended to when the run resumes: VisualDL reads only the newest
# vdlrecords file of a folder, so a file per process would hide every epoch before a resume.
LOG_FILE = "vdlrecords.run.log"
STEP_TAG = "train/loss_step"  # counted in batches; every other tag in epochs


class RunLog:
    def __init__(self, logdir, display_name: str, resume_at: int = 0, steps_per_epoch: int = 0):
        """`resume_at`: the epochs a resumed run keeps; what was logged after them is dropped, since
        those epochs train again."""
        from visualdl import LogWriter

        import contextlib
        import io

        keep_records_until(Path(logdir), resume_at, steps_per_epoch)
        with contextlib.redirect_stdout(io.StringIO()):  # "... is exists, VisualDL will add logs to it."
            self.writer = LogWriter(logdir=str(logdir), display_name=display_name, file_name=LOG_FILE)

    def step_loss(self, global_step: int, loss: float) -> None:
        self.writer.add_scalar("train/loss_step", loss, global_step)

    def epoch(self, record: dict) -> None:
        step = record["epoch"]
        for split in ("train", "val"):
            for name, value in record.get(split, {}).items():
                if np.isfinite(value):
                    self.writer.add_scalar(f"{name}/{split}", value, step)
        self.writer.add_scalar("lr", record["lr"], step)

    def hparams(self, config: dict) -> None:
        # VisualDL stores bools as ints and refuses them; strings show as they are.
        flat = {k: str(v) if isinstance(v, bool) else v for k, v in dotted(config).items()
                if isinstance(v, (int, float, str)) and v != ""}
        self.writer.add_hparams(flat, HPARAM_METRICS)

    def best_epoch(self, epoch: int, probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:
        """Confusion matrix and (binary tasks) ROC curve of the best epoch so far, drawn by us:
        VisualDL 2.5.3's own PR/ROC writers break under numpy 2."""
        from runner import metrics, plots

        matrix = metrics.confusion_matrix(probs.argmax(1), labels, len(class_names))
        self.image("best/confusion_matrix", plots.figure_to_array(
            plots.confusion_matrix_figure(matrix, class_names, f"Confusion matrix, epoch {epoch}")), epoch)
        if len(class_names) == 2:
            fpr, tpr = metrics.roc_curve(probs[:, 1], labels)
            self.image("best/roc", plots.figure_to_array(
                plots.roc_figure(fpr, tpr, metrics.roc_auc(probs[:, 1], labels), f"ROC, epoch {epoch}")), epoch)

    def gradcam(self, cam: dict, class_names: list[str], epoch: int) -> None:
        """Where the final network looks, on the sweep's fixed validation images."""
        from runner import plots

        self.image("gradcam/val", plots.figure_to_array(
            plots.gradcam_figure([("", cam)], class_names, title=f"Grad-CAM, epoch {epoch}")), epoch)

    def image(self, tag: str, image: np.ndarray, step: int = 0) -> None:
        self.writer.add_image(tag, image, step)

    def close(self) -> None:
        self.writer.close()


def keep_records_until(logdir: Path, epochs: int, steps_per_epoch: int) -> None:
    """Fold every record file of `logdir` into LOG_FILE, keeping the values logged up to `epochs`
    (a torn last record, from a kill mid-write, ends the file). Best-epoch figures are redrawn when
    the run finishes, and the writer adds its own metadata, so neither is carried over."""
    from visualdl.proto import record_pb2

    files = sorted(logdir.glob("vdlrecords*"))  # older runners' timestamped files sort before LOG_FILE
    if not files:
        return
    kept = bytearray()
    for path in files:
        data = path.read_bytes() if epochs else b""
        at = 0
        while at + 8 <= len(data):
            (size,) = struct.unpack("Q", data[at:at + 8])
            if at + 8 + size > len(data):
                break
            record = record_pb2.Record.FromString(data[at + 8:at + 8 + size])
            at += 8 + size
            values = [v for v in record.values if keep_value(v, epochs, steps_per_epoch)]
            if values:
                out = record_pb2.Record(values=values).SerializeToString()
                kept += struct.pack("Q", len(out)) + out
    atomic_write(logdir / LOG_FILE, bytes(kept))
    for path in files:
        if path.name != LOG_FILE:
            path.unlink()


def keep_value(value, epochs: int, steps_per_epoch: int) -> bool:
    if value.HasField("meta_data") or value.tag.startswith(("best/", "gradcam/")):
        return False
    return value.id <= (epochs * steps_per_epoch if value.tag == STEP_TAG else epochs)


def input_grid(dataset, count: int = 8) -> np.ndarray:
    """Tile the first `count` training inputs (as the network sees them) into one uint8 image."""
    tiles = []
    for i in range(min(count, len(dataset))):
        x, _ = dataset[i]
        tiles.append(((np.transpose(x, (1, 2, 0)) + 1.0) * 127.5).clip(0, 255).astype(np.uint8))
    return np.concatenate(tiles, axis=1) if tiles else np.zeros((8, 8, 3), np.uint8)

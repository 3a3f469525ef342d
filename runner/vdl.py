"""VisualDL logs of one run, with tags shared by every run so the scalar view overlays them.

    train/loss_step      loss of every training batch
    loss/train, loss/val, acc/train, acc/val, auc/val, ...   one point per epoch
    lr                   learning rate of each epoch
    inputs/train         a grid of training inputs as the network sees them (after augmentation)
"""
from __future__ import annotations

import numpy as np

from runner.config import dotted

HPARAM_METRICS = ["acc/val", "loss/val", "auc/val"]


class RunLog:
    def __init__(self, logdir, display_name: str):
        from visualdl import LogWriter

        self.writer = LogWriter(logdir=str(logdir), display_name=display_name)

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

    def image(self, tag: str, image: np.ndarray, step: int = 0) -> None:
        self.writer.add_image(tag, image, step)

    def close(self) -> None:
        self.writer.close()


def input_grid(dataset, count: int = 8) -> np.ndarray:
    """Tile the first `count` training inputs (as the network sees them) into one uint8 image."""
    tiles = []
    for i in range(min(count, len(dataset))):
        x, _ = dataset[i]
        tiles.append(((np.transpose(x, (1, 2, 0)) + 1.0) * 127.5).clip(0, 255).astype(np.uint8))
    return np.concatenate(tiles, axis=1) if tiles else np.zeros((8, 8, 3), np.uint8)

"""VisualDL logs of one run, with tags shared by every run so the scalar view overlays them.

    train/loss_step      loss of every training batch
    loss/train, loss/val, acc/train, acc/val, auc/val, ...   one point per epoch
    lr                   learning rate of each epoch
    inputs/train         a grid of training inputs as the network sees them (after augmentation)
"""
from __future__ import annotations

import numpy as np

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
        flat = {k: str(v) if isinstance(v, bool) else v for k, v in flatten(config).items()
                if isinstance(v, (int, float, str)) and v != ""}
        self.writer.add_hparams(flat, HPARAM_METRICS)

    def image(self, tag: str, image: np.ndarray, step: int = 0) -> None:
        self.writer.add_image(tag, image, step)

    def close(self) -> None:
        self.writer.close()


def flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def input_grid(dataset, count: int = 8) -> np.ndarray:
    """Tile the first `count` training inputs (as the network sees them) into one uint8 image."""
    tiles = []
    for i in range(min(count, len(dataset))):
        x, _ = dataset[i]
        tiles.append(((np.transpose(x, (1, 2, 0)) + 1.0) * 127.5).clip(0, 255).astype(np.uint8))
    return np.concatenate(tiles, axis=1) if tiles else np.zeros((8, 8, 3), np.uint8)

"""Pictures of results (matplotlib, no display needed): for VisualDL, the report and report.html."""
from __future__ import annotations

import io

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_to_array(fig) -> np.ndarray:
    """RGB uint8 array of a matplotlib figure (what VisualDL's add_image takes)."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    _pyplot().close(fig)
    return image


def figure_to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    return buf.getvalue()


def confusion_matrix_figure(matrix: np.ndarray, class_names: list[str], title: str = "Confusion matrix"):
    plt = _pyplot()
    size = max(3.5, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    ax.set(xticks=range(len(class_names)), yticks=range(len(class_names)), xlabel="predicted", ylabel="true",
           title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    fig.tight_layout()
    return fig


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float, title: str = "ROC"):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def curves_figure(runs: list[dict], key: str = "acc", split: str = "val", title: str | None = None):
    """One line per run: `split` `key` per epoch, from result records."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for result in runs:
        history = result["history"]
        ax.plot([h["epoch"] for h in history], [h[split].get(key, np.nan) for h in history], marker="o",
                label=result["name"])
    ax.set(xlabel="epoch", ylabel=f"{split} {key}", title=title or f"{split} {key} per epoch")
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cost_figure(runs: list[dict]):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for result in runs:
        x, y = result["train_seconds"] / 60, 100 * result["final"].get("acc", np.nan)
        ax.scatter(x, y)
        ax.annotate(result["config"]["model"], (x, y), fontsize=7)
    ax.set(xlabel="training time (min)", ylabel="final validation accuracy (%)", title="Accuracy against cost")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

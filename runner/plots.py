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
    # "tight": a legend placed beside the axes is part of the picture, not cut off
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def confusion_matrix_figure(matrix: np.ndarray, class_names: list[str], title: str = "Confusion matrix"):
    plt = _pyplot()
    size = max(3.5, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size), layout="constrained")
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    ax.set(xticks=range(len(class_names)), yticks=range(len(class_names)), xlabel="predicted", ylabel="true",
           title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    return fig


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float, title: str = "ROC"):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
    ax.plot(fpr, tpr, label=f"AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return fig


def curves_figure(groups: list[tuple[str, list[dict]]], key: str = "acc", split: str = "val",
                  title: str | None = None):
    """`split` `key` per epoch from result records, one colour per group of seeds: each seed a thin
    line, their mean a thick one, so that a model's spread is seen beside its level."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    for (label, runs), color in zip(groups, group_colours(len(groups))):
        curves = [{h["epoch"]: h[split].get(key, np.nan) for h in result["history"]} for result in runs]
        if len(runs) > 1:
            for curve in curves:
                ax.plot(list(curve), list(curve.values()), color=color, alpha=0.35, linewidth=0.9)
            label = f"{label} (mean of {len(runs)} seeds)"
        epochs = sorted(set().union(*curves))
        mean = [mean_of_present([curve.get(e, np.nan) for curve in curves]) for e in epochs]
        ax.plot(epochs, mean, color=color, marker="o", linewidth=2, label=label)
    ax.set(xlabel="epoch", ylabel=f"{split} {key}", title=title or f"{split} {key} per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def cost_figure(groups: list[tuple[str, list[dict]]]):
    """Final validation accuracy against training minutes: a point per run, one colour per group."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    for (label, runs), color in zip(groups, group_colours(len(groups))):
        ax.scatter([result["train_seconds"] / 60 for result in runs],
                   [100 * result["final"].get("acc", np.nan) for result in runs], color=color, label=label)
    ax.set(xlabel="training time (min)", ylabel="final validation accuracy (%)", title="Accuracy against cost")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def group_colours(n: int) -> list:
    plt = _pyplot()
    palette = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [palette(i % palette.N) for i in range(n)]


def mean_of_present(values) -> float:
    present = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(present)) if present else np.nan

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
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # a crowded figure may not fit the layout engine's margins; "tight" below still keeps it whole
        warnings.filterwarnings("ignore", message=".*(layout not applied|constrained_layout).*")
        # "tight": a legend placed beside the axes is part of the picture, not cut off
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def optuna_figure(kind: str, study):
    """Optuna's own matplotlib plots of a study: the optimisation history or the settings' importances."""
    import warnings

    from optuna.visualization import matplotlib as optuna_plots

    _pyplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental, every call
        ax = (optuna_plots.plot_optimization_history(study) if kind == "history"
              else optuna_plots.plot_param_importances(study))
    fig = ax.figure
    fig.set_size_inches(8, 4)
    return fig


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


def gradcam_figure(rows: list[tuple[str, dict]], class_names: list[str], title: str = "Grad-CAM"):
    """A row per model, a column per image: each image with its heat map laid over it. `rows` hold
    (model label, the arrays runner.run.assess.where_it_looks saved)."""
    plt = _pyplot()
    columns = max(len(cam["indices"]) for _, cam in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.6 * columns + 1.6, 1.75 * len(rows) + 0.6),
                             squeeze=False, layout="constrained")
    for r, (label, cam) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cam["indices"]):
                ax.axis("off")
                continue
            ax.imshow(cam["images"][c])
            ax.imshow(cam["heat"][c].astype(float), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if r == 0:
                ax.set_title(f"{class_names[int(cam['labels'][c])]}\nimage {int(cam['indices'][c])}", fontsize=8)
        axes[r][0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    explained = {int(k) for _, cam in rows for k in np.asarray(cam.get("classes", [])).ravel()}
    what = (f"the evidence for {class_names[explained.pop()]!r}" if len(explained) == 1
            else "the evidence for each image's own class")
    fig.suptitle(f"{title}: {what}, each map scaled to its own peak", fontsize=10)
    return fig


def reliability_figure(groups: list[tuple[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]]):
    """Reliability diagrams, a panel per model group: accuracy against confidence per bin for each
    seed (bars where the seeds' images fall), the diagonal of perfect calibration."""
    plt = _pyplot()
    n = max(1, len(groups))
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False, layout="constrained")
    for ax, (label, seeds) in zip(axes.flat, groups):
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
        for confidence, accuracy, counts in seeds:
            present = counts > 0
            ax.plot(confidence[present], accuracy[present], marker="o", markersize=3, linewidth=1, alpha=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), title=label)
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.supxlabel("confidence (top probability)", fontsize=8)
    fig.supylabel("accuracy", fontsize=8)
    return fig


def pareto_figure(points: list[tuple[str, float, float, float | None]], groups: list[str]):
    """Final accuracy (and AUC, where there is one) against CPU latency at batch 1: a point per run,
    a ringed marker at each model group's mean, the runs no other run beats on both joined."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    has_auc = any(auc is not None for _, _, _, auc in points)
    fig, axes = plt.subplots(1, 2 if has_auc else 1, figsize=(11 if has_auc else 6, 4.2), squeeze=False,
                             layout="constrained")
    colours = dict(zip(groups, group_colours(len(groups))))
    for ax, (metric, index) in zip(axes[0], (("final accuracy (%)", 2), ("AUC", 3))):
        scale = 100 if index == 2 else 1
        runs = [(g, lat, value * scale) for g, lat, *vals in points
                for value in [vals[index - 2]] if value is not None and lat is not None]
        for group in groups:
            mine = [(lat, v) for g, lat, v in runs if g == group]
            if not mine:
                continue
            ax.scatter(*zip(*mine), color=colours[group], s=18, alpha=0.7)
            ax.scatter(np.mean([m[0] for m in mine]), np.mean([m[1] for m in mine]), color=colours[group], s=90,
                       facecolors="none", linewidths=2, label=group)
        front, best = [], -np.inf
        for lat, value in sorted((lat, v) for _, lat, v in runs):
            if value > best:
                front.append((lat, value))
                best = value
        if front:
            ax.plot(*zip(*front), color="black", linewidth=0.8, alpha=0.6, drawstyle="steps-post")
        ax.set(xscale="log", xlabel="CPU latency at batch 1 (ms, log scale)", ylabel=metric)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # latencies span one or two decades
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def interval_dot_figure(rows: list[tuple[str, float, float, float, str]], xlabel: str = "final accuracy (%)"):
    """A dot per model group at its mean with its 95 % interval, best at the top: filled for a
    t-interval over seeds, hollow for one run's Wilson interval over the images."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(rows) + 1.2), layout="constrained")
    for y, (label, mean, low, high, kind) in enumerate(reversed(rows)):
        if not np.isnan(low):
            ax.plot([low, high], [y, y], color="tab:blue", linewidth=2, alpha=0.6)
        ax.plot(mean, y, "o", color="tab:blue", markerfacecolor="white" if kind == "wilson" else "tab:blue")
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return fig


def small_multiples_figure(groups: list[tuple[str, list[dict]]], key: str = "acc", split: str = "val"):
    """The per-epoch curve of every run, a panel per model group (seeds thin, their mean thick),
    on one shared scale so that panels compare."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n = max(1, len(groups))
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, (label, runs), colour in zip(axes.flat, groups, group_colours(len(groups))):
        curves = [{h["epoch"]: h[split].get(key, np.nan) for h in result["history"]} for result in runs]
        for curve in curves:
            ax.plot(list(curve), list(curve.values()), color=colour, alpha=0.35, linewidth=0.9)
        epochs = sorted(set().union(*curves))
        ax.plot(epochs, [mean_of_present([c.get(e, np.nan) for c in curves]) for e in epochs], color=colour,
                linewidth=2)
        ax.set_title(label + (f" ({len(runs)} seeds)" if len(runs) > 1 else ""), fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.supxlabel("epoch", fontsize=8)
    fig.supylabel(f"{split} {key}", fontsize=8)
    return fig

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
    grid_with_legend_beside(ax, bool(groups))
    return fig


def run_curves_figure(result: dict):
    """One run's accuracy and loss per epoch, training and validation, in two panels sized to be
    read at the size report.html shows them (its natural size)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.9), layout="constrained")
    epochs = [h["epoch"] for h in result["history"]]
    for ax, key, what in zip(axes, ("acc", "loss"), ("accuracy", "loss")):
        for split, style in (("train", "--"), ("val", "-")):
            ax.plot(epochs, [h[split].get(key, np.nan) for h in result["history"]], style, marker="o", markersize=4,
                    label="training" if split == "train" else "validation")
        ax.set(xlabel="epoch", ylabel=what, title=what)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def cost_figure(groups: list[tuple[str, list[dict]]]):
    """Final validation accuracy against training minutes: a point per run, one colour per group. The
    minutes are CPU minutes where every run recorded them (others' work on the cores inflates those
    far less, so runs trained under different loads compare), else wall minutes, as the axis says."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    key = "train_cpu_seconds" if all(r.get("train_cpu_seconds") is not None for _, runs in groups for r in runs) \
        else "train_seconds"
    for (label, runs), color in zip(groups, group_colours(len(groups))):
        ax.scatter([result[key] / 60 for result in runs],
                   [100 * result["final"].get("acc", np.nan) for result in runs], color=color, label=label)
    ax.set(xlabel="training CPU time (min)" if key == "train_cpu_seconds" else "training wall time (min)",
           ylabel="final validation accuracy (%)", title="Accuracy against training time")
    grid_with_legend_beside(ax, bool(groups))
    return fig


def grid_with_legend_beside(ax, legend: bool) -> None:
    """A light grid, and the legend (if `legend`) to the right of the axes, where it hides no line."""
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def group_colours(n: int) -> list:
    plt = _pyplot()
    palette = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [palette(i % palette.N) for i in range(n)]


def mean_of_present(values) -> float:
    present = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(present)) if present else np.nan


def gradcam_figure(rows: list[tuple], class_names: list[str], title: str = "Grad-CAM"):
    """A row per model, a column per image: each image with its heat map laid over it, named by its
    file and true class, with the model's prediction, its probability and whether it was right.
    `rows` hold (model label, the arrays runner.run.assess.where_it_looks saved[, the run's final
    validation probabilities, N x classes]). Each map is scaled to its own peak: the colour bar
    says so."""
    plt = _pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    columns = max(len(row[1]["indices"]) for row in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.7 * columns + 2.4, 2.1 * len(rows) + 0.8),
                             squeeze=False, layout="constrained")
    for r, (label, cam, *probabilities) in enumerate(rows):
        probs = probabilities[0] if probabilities and probabilities[0] is not None else None
        for c in range(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cam["indices"]):
                ax.axis("off")
                continue
            index, truth = int(cam["indices"][c]), int(cam["labels"][c])
            ax.imshow(cam["images"][c])
            ax.imshow(cam["heat"][c].astype(float), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            name = str(cam["names"][c]) if "names" in cam else f"image {index}"
            ax.set_title(f"{name[:18]}\ntrue {class_names[truth]}", fontsize=7)
            if probs is not None and index < len(probs):
                said = int(np.argmax(probs[index]))
                right = said == truth
                ax.set_xlabel(f"{class_names[said]} {probs[index][said]:.2f}\n{'right' if right else 'wrong'}",
                              fontsize=7, color="green" if right else "red")
        axes[r][0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    explained = {int(k) for row in rows for k in np.asarray(row[1].get("classes", [])).ravel()}
    what = (f"the evidence for {class_names[explained.pop()]!r}" if len(explained) == 1
            else "the evidence for each image's own class")
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axes, shrink=0.8, pad=0.01)
    bar.set_label("heat, each map scaled to its own peak\n(1 = that map's strongest, not comparable across maps)",
                  fontsize=7)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"{title}: {what}; under each image the model's prediction, its probability and whether it was "
                 "right", fontsize=9)
    return fig


def reliability_figure(groups: list[tuple[str, list[tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]]]):
    """Reliability diagrams, a panel per model group: accuracy against confidence per bin for each
    seed (named, as in "seed 0"), the diagonal of perfect calibration."""
    plt = _pyplot()
    n = max(1, len(groups))
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False, layout="constrained")
    for ax, (label, seeds) in zip(axes.flat, groups):
        ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8, label="perfect calibration")
        for name, (confidence, accuracy, counts) in seeds:
            present = counts > 0
            ax.plot(confidence[present], accuracy[present], marker="o", markersize=3, linewidth=1, alpha=0.8,
                    label=name)
        ax.legend(fontsize=6, loc="upper left")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), title=label)
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.supxlabel("confidence (top probability)", fontsize=8)
    fig.supylabel("accuracy", fontsize=8)
    return fig


# The accuracy axis of the Pareto plot spans at least 10 points (the AUC axis 0.05), so that a gap of
# a point or two, which 400 images cannot tell from noise, never fills the plot.
PARETO_MIN_SPAN = {"acc": 10.0, "auc": 0.05}


def pareto_figure(points: list[dict], groups: list[str]):
    """Final accuracy (and AUC, where there is one) against CPU latency at batch 1: a point per run
    with its 95 % interval (`acc_low`/`acc_high`, `auc_low`/`auc_high`) and its latency's spread
    over the timing rounds (`latency` the fastest, `latency_slowest`), a ring at each model group's
    mean, the runs no other run beats on both joined. `points`: dicts with `group` and those keys."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    has_auc = any(p.get("auc") is not None for p in points)
    fig, axes = plt.subplots(1, 2 if has_auc else 1, figsize=(11 if has_auc else 6.5, 4.4), squeeze=False,
                             layout="constrained")
    colours = dict(zip(groups, group_colours(len(groups))))
    for ax, (metric, key, scale) in zip(axes[0], (("final accuracy (%)", "acc", 100), ("AUC", "auc", 1))):
        runs = [p for p in points if p.get(key) is not None and p.get("latency") is not None]
        ends = []
        for group in groups:
            mine = [p for p in runs if p["group"] == group]
            if not mine:
                continue
            for p in mine:
                value = scale * p[key]
                low, high = (scale * p[f"{key}_low"], scale * p[f"{key}_high"]) \
                    if p.get(f"{key}_low") is not None and p.get(f"{key}_high") is not None else (value, value)
                if not low <= value <= high:  # an interval that misses its own score is of other numbers: no bar
                    low = high = value
                slowest = p.get("latency_slowest") or p["latency"]
                ax.errorbar(p["latency"], value, yerr=[[value - low], [high - value]],
                            xerr=[[0], [max(0.0, slowest - p["latency"])]], fmt="o", color=colours[group],
                            markersize=4, elinewidth=1, capsize=2, alpha=0.75)
                ends += [low, high]
            ax.scatter(np.mean([p["latency"] for p in mine]), np.mean([scale * p[key] for p in mine]),
                       color=colours[group], s=110, facecolors="none", linewidths=2, label=group)
        front, best = [], -np.inf
        for lat, value in sorted((p["latency"], scale * p[key]) for p in runs):
            if value > best:
                front.append((lat, value))
                best = value
        if front:
            ax.plot(*zip(*front), color="black", linewidth=0.8, alpha=0.6, drawstyle="steps-post",
                    label="Pareto front (no run better on both)")
        if ends:
            ax.set_ylim(*honest_limits(min(ends), max(ends), PARETO_MIN_SPAN[key], scale * 1.0))
        ax.set(xscale="log", ylabel=metric)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # latencies span one or two decades
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.supxlabel("CPU latency at batch 1 (ms, log scale). Bars: the score's 95 % interval; the latency from the "
                  "fastest to the slowest timing round", fontsize=9)
    return fig


def honest_limits(low: float, high: float, min_span: float, ceiling: float) -> tuple[float, float]:
    """Axis limits that hold [low, high] with a margin and span at least `min_span`, never above
    `ceiling` (100 % accuracy, an AUC of 1)."""
    margin = 0.08 * max(high - low, min_span)
    low, high = low - margin, high + margin
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    if high > ceiling:
        low, high = low - (high - ceiling), ceiling
    return low, high


def interval_dot_figure(rows: list[tuple[str, float, float, float, str]], xlabel: str = "final accuracy (%)"):
    """A dot per model group at its mean with its 95 % interval, best at the top: filled for a
    t-interval over seeds, hollow for one run's Wilson interval over the images."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(rows) + 1.2), layout="constrained")
    named = set()
    for y, (label, mean, low, high, kind) in enumerate(reversed(rows)):
        if not np.isnan(low):
            ax.plot([low, high], [y, y], color="tab:blue", linewidth=2, alpha=0.6)
        what = ("one run: 95 % Wilson interval over the images" if kind == "wilson"
                else "mean of the seeds: 95 % t-interval")
        ax.plot(mean, y, "o", color="tab:blue", markerfacecolor="white" if kind == "wilson" else "tab:blue",
                label=None if what in named else what)
        named.add(what)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlabel(xlabel)
    if rows:
        ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0))
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
        epochs = sorted(set().union(*curves))
        if len(runs) > 1:
            for curve, result in zip(curves, runs):
                ax.plot(list(curve), list(curve.values()), color=colour, alpha=0.35, linewidth=0.9,
                        label=f"seed {result['config']['seed']}")
        ax.plot(epochs, [mean_of_present([c.get(e, np.nan) for c in curves]) for e in epochs], color=colour,
                linewidth=2, marker="o", markersize=3,
                label=f"mean of {len(runs)} seeds" if len(runs) > 1 else f"seed {runs[0]['config']['seed']}")
        if len(runs) > 1:
            ax.legend(fontsize=6)
        ax.set_title(label + (f" ({len(runs)} seeds)" if len(runs) > 1 else ""), fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.supxlabel("epoch", fontsize=8)
    fig.supylabel(f"{split} {key}", fontsize=8)
    return fig


def heatmap_figure(values: np.ndarray, rows: list[str], columns: list[str], title: str, label: str,
                   scale: float = 100.0, digits: int = 0):
    """A table of numbers as colours, each cell written out: `values` (rows x columns, nan for none)
    times `scale`, on one colour scale from its lowest to its highest value."""
    plt = _pyplot()
    values = np.asarray(values, float) * scale
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(columns) + 3.0), 0.42 * len(rows) + 1.8), layout="constrained")
    shown = np.ma.masked_invalid(values)
    image = ax.imshow(shown, cmap="viridis", aspect="auto")
    low, high = (np.nanmin(values), np.nanmax(values)) if np.isfinite(values).any() else (0, 1)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            bright = high > low and (value - low) / (high - low) > 0.6
            ax.text(j, i, f"{value:.{digits}f}", ha="center", va="center", fontsize=7,
                    color="black" if bright else "white")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    return fig


def severity_figure(groups: list[tuple[str, dict[int, float]]]):
    """Accuracy (mean over the corruptions) against severity, a line per model group; severity 0 is
    the clean images."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for (label, by_severity), colour in zip(groups, group_colours(len(groups))):
        severities = sorted(by_severity)
        ax.plot(severities, [100 * by_severity[s] for s in severities], marker="o", color=colour, label=label)
    ax.set(xlabel="severity (0: clean)", ylabel="accuracy (%), mean over corruptions",
           title="Accuracy against corruption severity")
    ax.set_xticks(range(0, 6))
    grid_with_legend_beside(ax, bool(groups))
    return fig


def learning_curve_figure(curves: list[tuple[str, list[tuple[int, float, float, float, list[float]]]]]):
    """Final validation accuracy against the number of training images, a line per network: each
    point the mean over seeds with its 95 % t-interval, and the seeds themselves as small dots."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    for (label, points), colour in zip(curves, group_colours(len(curves))):
        xs = [p[0] for p in points]
        ax.plot(xs, [100 * p[1] for p in points], marker="o", color=colour, label=label)
        for x, _, low, high, seeds in points:
            if np.isfinite(low):
                ax.plot([x, x], [100 * max(0.0, low), 100 * min(1.0, high)], color=colour, linewidth=2, alpha=0.5)
            ax.scatter([x] * len(seeds), [100 * s for s in seeds], color=colour, s=8, alpha=0.5)
    ax.set(xscale="log", xlabel="training images (log scale)", ylabel="final validation accuracy (%)",
           title="Learning curves: accuracy against training-set size")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sorted({p[0] for _, points in curves for p in points}))
    grid_with_legend_beside(ax, bool(curves))
    return fig


def wall_time_figure(groups: list[tuple[str, list[dict]]], targets: list[float]):
    """Validation accuracy per epoch against the run's wall time so far (training and evaluation),
    a colour per model group (seeds alike), the accuracy targets dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for (label, runs), colour in zip(groups, group_colours(len(groups))):
        for i, result in enumerate(runs):
            wall = np.cumsum([h.get("train_seconds", 0.0) + h.get("eval_seconds", 0.0) for h in result["history"]])
            ax.plot(wall / 60, [100 * h["val"].get("acc", np.nan) for h in result["history"]], color=colour,
                    alpha=0.8, linewidth=1.2, marker=".", label=label if i == 0 else None)
    for target in targets:
        ax.axhline(100 * target, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="wall time of the run (min, training and evaluation)", ylabel="validation accuracy (%)",
           title="Accuracy against wall time (a line per run)")
    grid_with_legend_beside(ax, bool(groups))
    return fig

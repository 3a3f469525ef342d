"""The files of a sweep's report, rewritten after every finished run: results.md, results.csv, the
comparison plots, and report.html with the tables, the plots and every run's own figures.

A run's own figures (its curves, confusion matrix and ROC) never change once it has finished, so
each is drawn once into runs/<id>/figures/ and the page links it by a relative path: rewriting the
report after every finished run of a long sweep redraws only the comparison. The page needs no
server; open it from the sweep's folder.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from runner import metrics, plots
from runner.store.layout import SweepLayout
from runner.store.registry import RunRegistry
from runner.report.comparison import (accuracy_intervals, choice_table, collect, group_by_seed, group_table, load_study,
                           plot_groups, render, run_record, search_trials, seed_groups, table)
from runner.store.runfiles import atomic_write, load_arrays

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px;"
         "margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 6px}th{background:#f0f0f0}"
         "img.wide{max-width:100%;display:block;margin:0.5em 0}p{max-width:60em}"
         ".run{display:flex;flex-wrap:wrap;gap:6px}.run img{width:300px}.skipped{color:#a00}")


def run_figures(row: dict) -> list[Path]:
    """The run's own figures, drawn the first time they are asked for."""
    res, run = row["result"], row["run"]
    folder = run.folder / "figures"
    wanted = {"train_acc.png": lambda: plots.curves_figure([(res["name"], [res])], "acc", "train", "train accuracy"),
              "val_acc.png": lambda: plots.curves_figure([(res["name"], [res])], "acc", "val", "validation accuracy")}
    matrix = res.get("confusion_matrix", {}).get("final")
    if matrix:
        wanted["confusion.png"] = lambda: plots.confusion_matrix_figure(np.array(matrix), res["class_names"],
                                                                       "Confusion matrix (final)")
    preds = row["predictions"]
    if len(res["class_names"]) == 2 and "final" in preds and "labels" in preds:
        def roc():
            fpr, tpr = metrics.roc_curve(preds["final"][:, 1], preds["labels"])
            return plots.roc_figure(fpr, tpr, res["final"].get("auc", float("nan")), "ROC (final)")
        wanted["roc.png"] = roc
    paths = []
    for name, draw in wanted.items():
        path = folder / name
        if not path.exists() or path.stat().st_mtime < run.result.stat().st_mtime:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(path, plots.figure_to_png(draw()))
        paths.append(path)
    return paths


def html_table(header, body) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    lines = "".join("<tr>" + "".join(f"<td>{html.escape('—' if v is None else str(v))}</td>" for v in line)
                    + "</tr>" for line in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"


def comparison_figures(layout: SweepLayout, rows: list[dict], groups: list[dict]) -> dict[str, Path]:
    """The sweep's comparison figures as PNG files in its folder (for the README, and for the page):
    each drawn only where it has something to show."""
    named = plot_groups(rows)
    figures = {
        "accuracy_by_group.png": lambda: plots.interval_dot_figure(accuracy_intervals(groups)),
        "val_acc_per_epoch.png": lambda: plots.small_multiples_figure(named, "acc", "val"),
        "val_loss_per_epoch.png": lambda: plots.small_multiples_figure(named, "loss", "val"),
        "acc_vs_train_time.png": lambda: plots.cost_figure(named),
    }
    points = [(label, r["latency_ms"], r["final_acc"], r["auc"])
              for label, members in group_by_seed(rows) for r in map(run_record, members)]
    if any(lat is not None for _, lat, _, _ in points):
        figures["pareto.png"] = lambda: plots.pareto_figure(points, [label for label, _ in group_by_seed(rows)])
    calibrated = [(label, [metrics.reliability_bins(m["predictions"]["final"], m["predictions"]["labels"])
                           for m in members if "final" in m["predictions"]])
                  for label, members in group_by_seed(rows)]
    if any(seeds for _, seeds in calibrated):
        figures["reliability.png"] = lambda: plots.reliability_figure([c for c in calibrated if c[1]])
    cams = [(label, cam) for label, members in group_by_seed(rows)
            for cam in [next((load_arrays(m["run"].gradcam) for m in members if m["run"].gradcam.exists()), {})] if cam]
    if cams:
        class_names = rows[0]["result"]["class_names"]
        figures["gradcam.png"] = lambda: plots.gradcam_figure(cams, class_names,
                                                              "Grad-CAM of each model group's first run")
    study = load_study(layout.root)
    if study is not None and sum(t.value is not None for t in study.trials) >= 1:
        figures["search_history.png"] = lambda: plots.optuna_figure("history", study)
        if sum(t.value is not None for t in study.trials) >= 2 and len(study.best_trial.params) >= 1:
            figures["search_importance.png"] = lambda: plots.optuna_figure("importance", study)
    drawn = {}
    for name, draw in figures.items():
        try:
            atomic_write(layout.root / name, plots.figure_to_png(draw()))
            drawn[name] = layout.root / name
        except Exception:  # noqa: BLE001 - Optuna declines some plots (one distinct value, say): leave it out
            if not name.startswith("search_"):
                raise
    return drawn


SECTIONS = [  # (figure, heading, what it shows)
    ("accuracy_by_group.png", "Accuracy by model group", "Mean final validation accuracy of each group of seeds "
     "with its 95 % t-interval over the seeds; a group of one run, with its 95 % Wilson interval over the "
     "validation images (hollow)."),
    ("pareto.png", "Accuracy against cost", "A point per run, a ring at each group's mean; the line joins the runs "
     "no other run beats on both accuracy and CPU latency at batch 1 (the exported model, one thread)."),
    ("val_acc_per_epoch.png", "Learning curves", "Validation accuracy per epoch, a panel per model group: each seed "
     "thin, their mean thick."),
    ("val_loss_per_epoch.png", "", ""),
    ("reliability.png", "Calibration", "Reliability diagrams, a panel per model group: accuracy against "
     "confidence in 15 equal-width bins, a line per seed; the diagonal is perfect calibration."),
    ("gradcam.png", "Where it looks", "Grad-CAM of the positive class on a fixed set of validation images, chosen "
     "by position (four positives, then four negatives), never by a model's errors: a row per model group."),
    ("acc_vs_train_time.png", "Accuracy against training time", ""),
]


def write_html(layout: SweepLayout, rows: list[dict], skipped: list[str] = ()) -> Path:
    def img(path: Path, css: str = "") -> str:
        return f'<img{css} src="{html.escape(path.relative_to(layout.root).as_posix())}">'

    parts = [f"<h1>Sweep {html.escape(layout.root.name)}</h1>",
             f"<p>{len(rows)} finished run(s). Final = last epoch; 95% CI = Wilson interval; McNemar = exact "
             "test against the best run on the same validation images (the same data fingerprint: the same "
             "images in the same order with the same labels); DeLong = paired test of AUCs. Everything below is "
             "measured on the validation images.</p>"]
    if skipped:
        parts.append("<ul class='skipped'>" + "".join(f"<li>{html.escape(s)}</li>" for s in skipped) + "</ul>")
    if rows:
        groups = seed_groups(rows)
        figures = comparison_figures(layout, rows, groups)
        parts += ["<h2>Runs</h2>", html_table(*table(rows)),
                  "<h2>Cost, calibration and operating points</h2>", html_table(*choice_table(rows))]
        if any(g["seeds"] > 1 for g in groups):
            parts += ["<h2>Over seeds</h2>", html_table(*group_table(groups))]
            parts += [f"<p>{html.escape(g['model'])}: {html.escape(g['data_note'])}.</p>" for g in groups if g["data_note"]]
        trials = search_trials(layout.root)
        if trials:
            parts += ["<h2>Search</h2>", "<p>Every trial of the search, scored on training images only (a holdout "
                      "or k folds); the runs marked \"selected by search\" are the best trial's settings trained on "
                      "all training images and scored once on the official validation images.</p>",
                      html_table(*trials)] + [img(figures[n], ' class="wide"') for n in ("search_history.png",
                                                                                      "search_importance.png")
                                              if n in figures]
        for name, heading, caption in SECTIONS:
            if name in figures:
                parts += ([f"<h2>{html.escape(heading)}</h2>"] if heading else []) + \
                         ([f"<p>{html.escape(caption)}</p>"] if caption else []) + [img(figures[name], ' class="wide"')]
        parts.append("<h2>Each run</h2>")
    for row in rows:
        res = row["result"]
        parts.append(f"<h3>{html.escape(res['name'])} <small>({html.escape(res['run_id'])})</small></h3><div class='run'>")
        parts += [img(path) for path in run_figures(row)]
        parts.append("</div>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>runner: {html.escape(layout.root.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    path = layout.root / "report.html"
    atomic_write(path, page)
    return path


def write_outputs(layout: SweepLayout, registry: RunRegistry) -> list[Path]:
    rows, skipped = collect(layout, registry)
    written = []
    for fmt, name in (("md", "results.md"), ("csv", "results.csv")):
        atomic_write(layout.root / name, render(rows, fmt, skipped) + "\n")
        written.append(layout.root / name)
    written.append(write_html(layout, rows, skipped))
    return written

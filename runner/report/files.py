"""The files of a sweep's report, rewritten after every finished run from one comparison: results.md
(what `runner report` prints), results.csv, the comparison plots, and report.html with the tables,
the plots and every run's own figures.

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
from runner.report.comparison import Comparison, accuracy_intervals, compare_sweep, run_record
from runner.report.tables import beyond_sections, choice_table, group_table, render, runs_note, table, trials_table
from runner.store.layout import SweepPaths
from runner.store.registry import RunRegistry
from runner.store.runfiles import atomic_write, load_arrays

# Figures are shown at their natural size (never shrunk below it, so their text reads as drawn),
# scaled down only where the window is narrower than the figure.
STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px;"
         "margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 6px}th{background:#f0f0f0}"
         "img.wide{max-width:100%;display:block;margin:0.5em 0}p{max-width:60em}"
         ".run{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}.run img{max-width:100%;height:auto}"
         ".skipped{color:#a00}")


def run_figures(row: dict) -> list[Path]:
    """The run's own figures, drawn the first time they are asked for."""
    res, paths = row["result"], row["paths"]
    folder = paths.figures
    final = f"final epoch ({res['epochs_run']}), as in the table"
    wanted = {"curves.png": lambda: plots.run_curves_figure(res)}
    matrix = res.get("confusion_matrix", {}).get("final")
    if matrix:
        wanted["confusion.png"] = lambda: plots.confusion_matrix_figure(np.array(matrix), res["class_names"],
                                                                       f"Confusion matrix,\n{final}")
    preds = row["predictions"]
    if len(res["class_names"]) == 2 and "final" in preds and "labels" in preds:
        def roc():
            fpr, tpr = metrics.roc_curve(preds["final"][:, 1], preds["labels"])
            return plots.roc_figure(fpr, tpr, res["final"].get("auc", float("nan")), f"ROC, {final}")
        wanted["roc.png"] = roc
    drawn = []
    for name, draw in wanted.items():
        path = folder / name
        if not path.exists() or path.stat().st_mtime < paths.result.stat().st_mtime:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(path, plots.figure_to_png(draw()))
        drawn.append(path)
    return drawn


def html_table(header, body) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    lines = "".join("<tr>" + "".join(f"<td>{html.escape('—' if v is None else str(v))}</td>" for v in line)
                    + "</tr>" for line in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"


def comparison_figures(sweep: SweepPaths, comparison: Comparison) -> dict[str, Path]:
    """The sweep's comparison figures as PNG files in its folder (for the README, and for the page):
    each drawn only where it has something to show."""
    rows, named, by_seed = comparison.rows, comparison.plot_groups, comparison.by_seed
    figures = {
        "accuracy_by_group.png": lambda: plots.interval_dot_figure(accuracy_intervals(comparison.groups)),
        "val_acc_per_epoch.png": lambda: plots.small_multiples_figure(named, "acc", "val"),
        "val_loss_per_epoch.png": lambda: plots.small_multiples_figure(named, "loss", "val"),
        "acc_vs_train_time.png": lambda: plots.cost_figure(named),
    }
    points = [{"group": label, "latency": r["latency_ms"], "latency_slowest": r["latency_ms_slowest"],
               "acc": r["final_acc"], "acc_low": r["acc_ci_low"], "acc_high": r["acc_ci_high"],
               "auc": r["auc"], "auc_low": r["auc_ci_low"], "auc_high": r["auc_ci_high"]}
              for label, members in by_seed for r in map(run_record, members)]
    if any(p["latency"] is not None for p in points):
        figures["pareto.png"] = lambda: plots.pareto_figure(points, [label for label, _ in by_seed])
    calibrated = [(label, [(f"seed {m['result']['config']['seed']}",
                            metrics.reliability_bins(m["predictions"]["final"], m["predictions"]["labels"]))
                           for m in members if "final" in m["predictions"]])
                  for label, members in by_seed]
    if any(seeds for _, seeds in calibrated):
        figures["reliability.png"] = lambda: plots.reliability_figure([c for c in calibrated if c[1]])
    # each group's first run with a Grad-CAM, with the probabilities it gave those images
    cams = [(label, load_arrays(first["paths"].gradcam), first["predictions"].get("final"))
            for label, members in by_seed
            for first in [next((m for m in members if m["paths"].gradcam.exists()), None)] if first]
    cams = [cam for cam in cams if cam[1]]
    if cams:
        class_names = rows[0]["result"]["class_names"]
        figures["gradcam.png"] = lambda: plots.gradcam_figure(cams, class_names,
                                                              "Grad-CAM of each model group's first run")
    figures.update(comparison.beyond.figures())
    study = comparison.studies.get(sweep.root.name)
    if study is not None and sum(t.value is not None for t in study.trials) >= 1:
        figures["search_history.png"] = lambda: plots.optuna_figure("history", study)
        if sum(t.value is not None for t in study.trials) >= 2 and len(study.best_trial.params) >= 1:
            figures["search_importance.png"] = lambda: plots.optuna_figure("importance", study)
    drawn = {}
    for name, draw in figures.items():
        try:
            atomic_write(sweep.figure(name), plots.figure_to_png(draw()))
            drawn[name] = sweep.figure(name)
        except Exception:  # noqa: BLE001 - Optuna declines some plots (one distinct value, say): leave it out
            if not name.startswith("search_"):
                raise
    return drawn


SECTIONS = [  # (figure, heading, what it shows): each figure under its own heading
    ("accuracy_by_group.png", "Accuracy by model group", "Mean final validation accuracy of each group of seeds "
     "with its 95 % t-interval over the seeds (filled); a group of one run, with its 95 % Wilson interval over the "
     "validation images (hollow)."),
    ("pareto.png", "Accuracy against inference cost", "A point per run with its 95 % interval (Wilson for accuracy, "
     "DeLong for AUC) and, to its right, how much slower its slowest timing round was; a ring at each group's mean; "
     "the line joins the runs no other run beats on both accuracy and CPU latency at batch 1 (the exported model, "
     "one thread). The accuracy axis spans at least 10 points, so that a gap the tests call noise does not fill it."),
    ("val_acc_per_epoch.png", "Validation accuracy per epoch", "A panel per model group on one shared scale: each "
     "seed thin, their mean thick."),
    ("val_loss_per_epoch.png", "Validation loss per epoch", "A panel per model group on one shared scale: each seed "
     "thin, their mean thick."),
    ("reliability.png", "Calibration", "Reliability diagrams, a panel per model group: accuracy against "
     "confidence in 15 equal-width bins, a line per seed; the diagonal is perfect calibration."),
    ("gradcam.png", "Where it looks", "Grad-CAM of the positive class on a fixed set of validation images, chosen "
     "by position (four positives, then four negatives), never by a model's errors: a row per model group (its "
     "first run), each image named by its file and true class, with the run's prediction, its probability and "
     "whether it was right. Each heat map is scaled to its own peak, as its colour bar says: compare where a map "
     "is hot, not how hot it is against another map."),
    ("acc_vs_train_time.png", "Accuracy against training time", "Final validation accuracy against training "
     "minutes, a point per run: CPU minutes where every run recorded them, which compare runs trained under "
     "different loads, else wall minutes (the axis says which)."),
]


def write_html(sweep: SweepPaths, comparison: Comparison) -> Path:
    def img(path: Path, css: str = "", alt: str = "") -> str:
        return (f'<img{css} src="{html.escape(path.relative_to(sweep.root).as_posix())}" '
                f'alt="{html.escape(alt or path.stem.replace("_", " "))}">')

    rows, skipped = comparison.rows, comparison.skipped
    parts = [f"<h1>Sweep {html.escape(sweep.root.name)}</h1>",
             f"<p>{len(rows)} finished run(s). Final = last epoch; 95% CI = Wilson interval; McNemar = exact "
             "test against the best run on the same validation images (the same data fingerprint: the same "
             "images in the same order with the same labels); DeLong = paired test of AUCs. Everything below is "
             "measured on the validation images.</p>"]
    notes = [*comparison.warnings, *skipped]
    if notes:
        parts.append("<ul class='skipped'>" + "".join(f"<li>{html.escape(s)}</li>" for s in notes) + "</ul>")
    if rows:
        groups = comparison.groups
        figures = comparison_figures(sweep, comparison)
        note = runs_note(rows)
        parts += ["<h2>Runs</h2>", html_table(*table(rows)), *([f"<p>{html.escape(note)}</p>"] if note else []),
                  "<h2>Cost, calibration and operating points</h2>", html_table(*choice_table(rows))]
        if any(g["seeds"] > 1 for g in groups):
            parts += ["<h2>Over seeds</h2>", html_table(*group_table(groups))]
            parts += [f"<p>{html.escape(g['model'])}: {html.escape(g['data_note'])}.</p>" for g in groups if g["data_note"]]
        study = comparison.studies.get(sweep.root.name)
        if study is not None:
            parts += ["<h2>Search</h2>", "<p>Every trial of the search, scored on training images only (a holdout "
                      "or k folds); the runs marked \"selected by search\" are the best trial's settings trained on "
                      "all training images and scored once on the official validation images.</p>",
                      html_table(*trials_table(study))] + [img(figures[n], ' class="wide"') for n in ("search_history.png",
                                                                                      "search_importance.png")
                                              if n in figures]
        for name, heading, caption in SECTIONS:
            if name in figures:
                parts += [f"<h2>{html.escape(heading)}</h2>", f"<p>{html.escape(caption)}</p>",
                          img(figures[name], ' class="wide"', heading)]
                if name == "gradcam.png":
                    parts.append(gradcam_key(rows))
        for part in beyond_sections(comparison.beyond):  # robustness, learning curves, time to accuracy, per class
            parts += [f"<h2>{html.escape(part['heading'])}</h2>", f"<p>{html.escape(part['caption'])}</p>",
                      html_table(part["header"], part["body"])]
            parts += [img(figures[name], ' class="wide"', part["heading"]) for name in part["figures"] if name in figures]
        parts.append("<h2>Each run</h2>")
    for row in rows:
        res = row["result"]
        parts.append(f"<h3>{html.escape(res['name'])} <small>({html.escape(res['run_id'])})</small></h3><div class='run'>")
        parts += [img(path, alt=f"{res['run_id']}: {path.stem}") for path in run_figures(row)]
        parts.append("</div>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>runner: {html.escape(sweep.root.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    atomic_write(sweep.report_html, page)
    return sweep.report_html


def gradcam_key(rows: list[dict]) -> str:
    """The Grad-CAM grid's images as text under it: column, file name, true class (for a reader who
    searches the page for a file, or cannot see the picture)."""
    cam = next((load_arrays(r["paths"].gradcam) for r in rows if r["paths"].gradcam.exists()), {})
    if "indices" not in cam:
        return ""
    names = cam.get("names", [f"image {int(i)}" for i in cam["indices"]])
    classes = rows[0]["result"]["class_names"]
    cells = [f"{c + 1}: {html.escape(str(name))} ({html.escape(classes[int(label)])})"
             for c, (name, label) in enumerate(zip(names, cam["labels"]))]
    return "<p class='gradcam-key'>Columns: " + "; ".join(cells) + ".</p>"


def write_outputs(sweep: SweepPaths, registry: RunRegistry) -> list[Path]:
    """results.md, results.csv, the figures and report.html, all from one comparison."""
    comparison = compare_sweep(sweep, registry)
    for fmt, path in (("md", sweep.results_md), ("csv", sweep.results_csv)):
        atomic_write(path, render(comparison, fmt) + "\n")
    return [sweep.results_md, sweep.results_csv, write_html(sweep, comparison)]

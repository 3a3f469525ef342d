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
from runner.layout import SweepLayout
from runner.registry import RunRegistry
from runner.report import collect, group_table, plot_groups, render, seed_groups, table
from runner.runfiles import atomic_write

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px}"
         "td,th{border:1px solid #ccc;padding:3px 6px}th{background:#f0f0f0}img.wide{max-width:100%}"
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


def comparison_figures(layout: SweepLayout, rows: list[dict]) -> list[Path]:
    """The sweep's comparison plots as PNG files in its folder (for the README, and for the page)."""
    groups = plot_groups(rows)
    figures = {"val_acc_per_epoch.png": lambda: plots.curves_figure(groups, "acc", "val", "Validation accuracy per epoch"),
               "val_loss_per_epoch.png": lambda: plots.curves_figure(groups, "loss", "val", "Validation loss per epoch"),
               "acc_vs_train_time.png": lambda: plots.cost_figure(groups)}
    for name, draw in figures.items():
        atomic_write(layout.root / name, plots.figure_to_png(draw()))
    return [layout.root / name for name in figures]


def write_html(layout: SweepLayout, rows: list[dict], skipped: list[str] = ()) -> Path:
    def img(path: Path, css: str = "") -> str:
        return f'<img{css} src="{html.escape(path.relative_to(layout.root).as_posix())}">'

    parts = [f"<h1>Sweep {html.escape(layout.root.name)}</h1>",
             f"<p>{len(rows)} finished run(s). Final = last epoch; 95% CI = Wilson interval; McNemar = exact "
             "test against the best run on the same validation images.</p>"]
    if skipped:
        parts.append("<ul class='skipped'>" + "".join(f"<li>{html.escape(s)}</li>" for s in skipped) + "</ul>")
    if rows:
        parts.append(html_table(*table(rows)))
        groups = seed_groups(rows)
        if any(g["seeds"] > 1 for g in groups):
            parts += ["<h2>Over seeds</h2>", html_table(*group_table(groups))]
        parts += ["<h2>Comparison</h2>", *(img(p, ' class="wide"') for p in comparison_figures(layout, rows)),
                  "<h2>Runs</h2>"]
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

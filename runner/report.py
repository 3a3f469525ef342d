"""The comparison table of a sweep (markdown, csv, json) and its plots.

One row per finished run, best final validation accuracy first, with a 95% Wilson interval and an
exact McNemar test against the best run on the same validation images. Runs that differ only in
their seed are also summarised together: mean ± std and a 95% t-interval of the mean.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from runner import metrics, plots
from runner.config import dotted, identity, with_defaults
from runner.layout import SweepLayout
from runner.registry import RunRegistry
from runner.train import load_predictions, read_result

# The course's figures: iChallenge-PM validation accuracy after 5 epochs at 224x224, batch 10.
COURSE_REFERENCE = {"lenet": 0.5275, "alexnet": 0.94, "vgg16": 0.94, "googlenet": 0.95, "resnet50": 0.95}
ALPHA = 0.05


def collect(layout: SweepLayout, registry: RunRegistry) -> list[dict]:
    """Finished runs with their results, per-image correctness and statistics, best final accuracy first."""
    return ranked_with_statistics(finished_runs(layout, registry))


def ranked_with_statistics(rows: list[dict]) -> list[dict]:
    """Best final accuracy first, then the intervals and the paired test against the best."""
    rows.sort(key=lambda r: -(r["result"]["final"].get("acc") or 0.0))
    add_statistics(rows)
    return rows


def finished_runs(layout: SweepLayout, registry: RunRegistry) -> list[dict]:
    """A sweep's finished runs with their results and per-image correctness."""
    rows = []
    for row in registry.rows("done"):
        run = layout.run(row["id"])
        result = read_result(run)
        if not result:
            continue
        predictions = load_predictions(run)
        correct = None
        if "final" in predictions and "labels" in predictions:
            correct = predictions["final"].argmax(1) == predictions["labels"]
        rows.append({"result": result, "correct": correct, "predictions": predictions})
    return rows


def add_statistics(rows: list[dict]) -> None:
    """Wilson interval per run; McNemar of each run against the best run on the same images."""
    for row in rows:
        correct = row["correct"]
        row["ci"] = metrics.wilson_interval(int(correct.sum()), len(correct)) if correct is not None else (math.nan,) * 2
        row["mcnemar"] = None
    for row in rows:
        c = row["result"]["config"]
        peers = [r for r in rows if same_val_set(r["result"]["config"], c) and r["correct"] is not None]
        if not peers or row["correct"] is None:
            continue
        best = peers[0]
        if best is row:
            row["mcnemar"] = "best"
            continue
        if len(best["correct"]) != len(row["correct"]):
            continue
        _, _, p = metrics.mcnemar(best["correct"], row["correct"])
        row["mcnemar"] = p


def same_val_set(a: dict, b: dict) -> bool:
    return (a["dataset"], a.get("validation", "official"), a.get("val_limit", 0)) == \
        (b["dataset"], b.get("validation", "official"), b.get("val_limit", 0))


def group_by_seed(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Runs alike but for the seed, in order of their first run, each group named by its model and
    what sets it apart from the model's other groups."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        key = json.dumps(identity(row["result"]["config"], ignore=("seed",)), sort_keys=True)
        groups.setdefault(key, []).append(row)
    settings = {key: dotted(with_defaults(json.loads(key))) for key in groups}
    return [(members[0]["result"]["config"]["model"] + distinguishing(settings[key], settings.values()), members)
            for key, members in groups.items()]


def seed_groups(rows: list[dict]) -> list[dict]:
    """Runs alike but for the seed, summarised: n, mean ± std and 95% interval of each metric."""
    out = []
    for label, members in group_by_seed(rows):
        first = members[0]["result"]
        summary = {"model": label,
                   "dataset": first["config"]["dataset"],
                   "image_size": first["config"]["image_size"], "seeds": len(members)}
        for name in ("acc", "auc"):
            values = [m["result"]["final"].get(name) for m in members]
            summary[name] = metrics.mean_std_interval([v for v in values if v is not None])
        summary["reference"] = reference_for(first["config"])
        out.append(summary)
    out.sort(key=lambda s: -(s["acc"][0] if not math.isnan(s["acc"][0]) else -1))
    return out


def distinguishing(settings: dict, all_settings) -> str:
    """' (optimizer.name=adam)': what sets a group apart from the other groups of its model, dataset
    and size, which would otherwise print as identical rows."""
    where = ("model", "dataset", "image_size")
    peers = [o for o in all_settings if o is not settings and all(o.get(k) == settings.get(k) for k in where)]
    if not peers:
        return ""
    keys = sorted({k for o in peers for k in set(o) | set(settings) if o.get(k) != settings.get(k)} - {"label"})
    # keys this group sets; a group told apart only by keys the others set (model_args.aux_heads, say)
    # has those at its network's default
    shown = [k for k in keys if k in settings] or keys
    return " (" + ", ".join(f"{k}={settings.get(k, 'default')}" for k in shown) + ")"


def reference_for(config: dict) -> float | None:
    """The course's figure, where a run uses the course's setting (iChallenge-PM, 224x224, 5 epochs,
    scored on the official validation images)."""
    same_setting = (config["dataset"] == "ichallenge-pm" and config["image_size"] == 224 and config["epochs"] == 5
                    and config.get("validation", "official") == "official")
    return COURSE_REFERENCE.get(config["model"]) if same_setting else None


# ---- the table ---------------------------------------------------------------------------------

def table(rows: list[dict]) -> tuple[list[str], list[list]]:
    binary = any(len(r["result"]["class_names"]) == 2 for r in rows)
    multi = any(len(r["result"]["class_names"]) > 5 for r in rows)
    header = ["run", "model", "dataset", "size", "epochs", "params (M)", "GMACs", "final acc", "95% CI",
              "best acc (epoch)"]
    header += ["AUC", "sensitivity", "specificity", "F1"] if binary else []
    header += ["top-5"] if multi else []
    header += ["train s", "img/s", "course", "differs from best (McNemar p)"]
    body = []
    for r in rows:
        res, c = r["result"], r["result"]["config"]
        final, best = res["final"], res["best"]
        line = [res["run_id"], c["model"], c["dataset"], c["image_size"], res["epochs_run"],
                round(res["parameters"] / 1e6, 2), round(res["flops"] / 1e9, 2) if res.get("flops") else None,
                pct(final.get("acc")), f"{pct(r['ci'][0])}–{pct(r['ci'][1])}",
                f"{pct(best.get('acc'))} ({res['best_epoch']})"]
        if binary:
            line += [num(final.get("auc")), pct(final.get("sensitivity")), pct(final.get("specificity")),
                     num(final.get("f1"))]
        if multi:
            line += [pct(final.get("top5"))]
        line += [round(res["train_seconds"], 1), res["images_per_second"], pct(reference_for(c)), differs(r["mcnemar"])]
        body.append(line)
    return header, body


def group_table(groups: list[dict]) -> tuple[list[str], list[list]]:
    header = ["model", "dataset", "size", "seeds", "final acc mean ± std", "95% interval", "AUC mean ± std", "course"]
    body = [[g["model"], g["dataset"], g["image_size"], g["seeds"], mean_std(g["acc"]),
             # a t-interval knows nothing of accuracy's bounds: shown clipped to 0-100 %
             f"{pct(max(0.0, g['acc'][2]))}–{pct(min(1.0, g['acc'][3]))}" if not math.isnan(g["acc"][2]) else "—",
             mean_std(g["auc"], percent=False), pct(g["reference"])] for g in groups]
    return header, body


def differs(p) -> str:
    if p is None or p == "best":
        return "— (best)" if p == "best" else "—"
    # on 10 000 test images p underflows to 0.0, and "p=0" would claim a certainty no test gives
    return f"{'yes' if p < ALPHA else 'no'}, " + (f"p={p:.3g}" if p >= 1e-4 else "p<0.0001")


def pct(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def num(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def mean_std(stats, percent: bool = True) -> str:
    mean, std = stats[0], stats[1]
    if math.isnan(mean):
        return "—"
    scale, unit, digits = (100, "%", 2) if percent else (1, "", 3)
    if math.isnan(std):
        return f"{scale * mean:.{digits}f}{unit}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}{unit}"


def render(rows: list[dict], fmt: str = "md") -> str:
    header, body = table(rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(body)
        return buf.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(header, line)) for line in body], indent=1)
    text = markdown(header, body)
    groups = seed_groups(rows)
    if any(g["seeds"] > 1 for g in groups):
        text += "\n\nOver seeds:\n\n" + markdown(*group_table(groups))
    return text


def markdown(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("—" if v is None else str(v) for v in line) + " |" for line in body]
    return "\n".join(lines)


# ---- files written after every finished run ------------------------------------------------------

def write_outputs(layout: SweepLayout, registry: RunRegistry) -> list[Path]:
    rows = collect(layout, registry)
    written = []
    for fmt, name in (("md", "results.md"), ("csv", "results.csv")):
        path = layout.root / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(render(rows, fmt) + "\n")
        tmp.replace(path)
        written.append(path)
    if rows:
        written += write_plots(layout, rows)
    written.append(write_html(layout, rows))
    return written


def plot_groups(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Seed groups as the comparison plots draw them: named results, with the dataset and image size
    in the name where the groups do not all share them."""
    groups = group_by_seed(rows)
    configs = [members[0]["result"]["config"] for _, members in groups]
    shown = [k for k in ("dataset", "image_size") if len({c[k] for c in configs}) > 1]
    return [(label + "".join(f" {c['dataset']}" if k == "dataset" else f" {c['image_size']}px" for k in shown),
             [m["result"] for m in members]) for (label, members), c in zip(groups, configs)]


def write_plots(layout: SweepLayout, rows: list[dict]) -> list[Path]:
    groups = plot_groups(rows)
    written = []
    for name, fig in (("val_acc_per_epoch.png", plots.curves_figure(groups, "acc", "val", "Validation accuracy per epoch")),
                      ("acc_vs_train_time.png", plots.cost_figure(groups))):
        (layout.root / name).write_bytes(plots.figure_to_png(fig))
        written.append(layout.root / name)
    return written


def write_html(layout: SweepLayout, rows: list[dict]) -> Path:
    """report.html: the tables, the plots and every run's curves in one file that needs no server."""
    import base64
    import html

    def img(fig) -> str:
        return f'<img src="data:image/png;base64,{base64.b64encode(plots.figure_to_png(fig)).decode()}">'

    def html_table(header, body) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        lines = "".join("<tr>" + "".join(f"<td>{html.escape('—' if v is None else str(v))}</td>" for v in line)
                        + "</tr>" for line in body)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"

    parts = [f"<h1>Sweep {html.escape(layout.root.name)}</h1>",
             f"<p>{len(rows)} finished run(s). Final = last epoch; 95% CI = Wilson interval; McNemar = exact "
             "test against the best run on the same validation images.</p>"]
    if rows:
        parts.append(html_table(*table(rows)))
        groups = seed_groups(rows)
        if any(g["seeds"] > 1 for g in groups):
            parts += ["<h2>Over seeds</h2>", html_table(*group_table(groups))]
        comparison = plot_groups(rows)
        parts += ["<h2>Comparison</h2>", img(plots.curves_figure(comparison, "acc", "val", "Validation accuracy per epoch")),
                  img(plots.curves_figure(comparison, "loss", "val", "Validation loss per epoch")),
                  img(plots.cost_figure(comparison)), "<h2>Runs</h2>"]
    for r in rows:
        res = r["result"]
        parts.append(f"<h3>{html.escape(res['name'])} <small>({res['run_id']})</small></h3><div class='run'>")
        parts.append(img(plots.curves_figure([(res["name"], [res])], "acc", "train", "train accuracy")))
        parts.append(img(plots.curves_figure([(res["name"], [res])], "acc", "val", "validation accuracy")))
        matrix = res.get("confusion_matrix", {}).get("final")
        if matrix:
            parts.append(img(plots.confusion_matrix_figure(np.array(matrix), res["class_names"], "Confusion matrix (final)")))
        preds = r["predictions"]
        if len(res["class_names"]) == 2 and "final" in preds and "labels" in preds:
            fpr, tpr = metrics.roc_curve(preds["final"][:, 1], preds["labels"])
            parts.append(img(plots.roc_figure(fpr, tpr, res["final"].get("auc", float("nan")), "ROC (final)")))
        parts.append("</div>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}th{background:#f0f0f0}img{max-width:48%;margin:4px}"
             ".run img{max-width:24%}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>runner: {html.escape(layout.root.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    path = layout.root / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path


def report_for(output_dirs: list[Path], fmt: str = "md") -> str:
    """One table over the finished runs of one or more sweeps; the paired test compares every run
    with the best run on the same validation images, whichever sweep it came from."""
    rows = []
    for output_dir in output_dirs:
        layout = SweepLayout(Path(output_dir))
        registry = RunRegistry(layout.registry, create=False)
        try:
            rows += finished_runs(layout, registry)
        finally:
            registry.close()
    return render(ranked_with_statistics(rows), fmt)

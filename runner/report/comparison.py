"""The comparison table of a sweep (markdown, csv, json) and its report.html. Knows no training and
imports no paddle: it reads the registry and the run files.

One row per finished run, best final validation accuracy first, with a 95% Wilson interval and an
exact McNemar test against the best run on the same validation images: the same validation
fingerprint, never a count or a setting (runner/report/pairing.py). Runs that differ only in their seed are
also summarised together: mean ± std and a 95% t-interval of the mean.

`records` is what scripts get (csv, json): plain numbers (accuracies as fractions), an interval as
two fields, None for a missing value, stable snake_case keys. The markdown and HTML tables format
those same records for people.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np

from runner import metrics
from runner.config import dotted, identity, with_defaults
from runner.report import pairing
from runner.store.fingerprint import without_ids
from runner.store.layout import SweepLayout
from runner.store.registry import RunRegistry
from runner.store.runfiles import load_predictions, read_result, result_problem

# The course's figures for iChallenge-PM validation accuracy after 5 epochs at 224x224, batch 10:
# what its prose says, and the last epoch of the run saved in its own notebook
# (PaddlePaddle/awesome-DeepLearning, junior_class/chapter-3-Computer_Vision/notebook/
# 3-2-CV-Image_Classification.ipynb; see docs/results.md).
COURSE_TEXT = {"lenet": 0.5275, "alexnet": 0.94, "vgg16": 0.94, "googlenet": 0.95, "resnet50": 0.95}
COURSE_SAVED_RUN = {"alexnet": 0.925, "vgg16": 0.9475, "googlenet": 0.8575, "resnet50": 0.93}
ALPHA = 0.05
PROBABILITY_FIELDS = ("ece", "brier", "auc_ci_low", "auc_ci_high", "sensitivity_at_95_specificity",
                      "specificity_at_95_sensitivity")


# ---- reading the runs ----------------------------------------------------------------------------

def collect(layout: SweepLayout, registry: RunRegistry) -> tuple[list[dict], list[str]]:
    """Finished runs with their results and statistics, best final accuracy first, and a note for
    each finished run that cannot be shown."""
    rows, skipped = finished_runs(layout, registry)
    return ranked_with_statistics(rows), skipped


def ranked_with_statistics(rows: list[dict]) -> list[dict]:
    """Best final accuracy first, then the intervals and the paired test against the best."""
    rows.sort(key=lambda r: -(r["result"]["final"].get("acc") or 0.0))
    add_statistics(rows)
    return rows


def finished_runs(layout: SweepLayout, registry: RunRegistry) -> tuple[list[dict], list[str]]:
    """A sweep's finished runs with their results and per-image correctness; notes on those skipped."""
    current, source = registry.current()
    rows, skipped = [], []
    for row in registry.rows("done"):
        run = layout.run(row["id"])
        result = read_result(run)
        if not result:
            skipped.append(f"{row['id']}: not shown, {result_problem(run)}")
            continue
        predictions = load_predictions(run)
        correct = None
        if "final" in predictions and "labels" in predictions:
            correct = predictions["final"].argmax(1) == predictions["labels"]
        in_file = current is None or row["id"] in current
        rows.append({"result": result, "correct": correct, "predictions": predictions, "in_file": in_file,
                     "source": source, "run": run})
    return rows, skipped


def add_statistics(rows: list[dict]) -> None:
    """Per run: Wilson interval, calibration, operating points and DeLong's AUC interval; against
    the best run on the same images: McNemar's test, and DeLong's for two-class data; where there is
    no such run to compare with, why ("paired_note")."""
    for row in rows:
        correct = row["correct"]
        row["ci"] = metrics.wilson_interval(int(correct.sum()), len(correct)) if correct is not None else (None, None)
        row["mcnemar"] = row["delong_p"] = row["compared_with"] = None
        row["probability"] = probability_statistics(row["predictions"])
    for row in rows:
        best, row["paired_note"] = pairing.best_on_same_images(row, rows)
        if best is None:
            continue
        if best is row:
            row["mcnemar"] = "best"
            continue
        row["compared_with"] = best["result"]["run_id"]
        row["mcnemar"] = metrics.mcnemar(best["correct"], row["correct"])[2]
        if row["predictions"]["final"].shape[1] == 2:
            row["delong_p"] = metrics.delong_test(best["predictions"]["final"][:, 1],
                                                  row["predictions"]["final"][:, 1], row["predictions"]["labels"])[1]


def probability_statistics(predictions: dict) -> dict:
    """ECE, Brier and, for two classes, the operating points and DeLong's AUC interval, from a
    run's final validation probabilities."""
    if "final" not in predictions or "labels" not in predictions:
        return {}
    probs, labels = predictions["final"], predictions["labels"]
    out = {"ece": metrics.expected_calibration_error(probs, labels), "brier": metrics.brier_score(probs, labels)}
    if probs.shape[1] == 2 and 0 < labels.sum() < len(labels):
        scores = probs[:, 1]
        low, high = metrics.delong_interval(scores, labels)
        out.update(auc_ci_low=low, auc_ci_high=high,
                   sensitivity_at_95_specificity=metrics.sensitivity_at_specificity(scores, labels, 0.95),
                   specificity_at_95_sensitivity=metrics.specificity_at_sensitivity(scores, labels, 0.95))
    return out


def group_by_seed(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Runs alike but for the seed (and, under k-fold cross-validation, the fold), in order of their
    first run, each group named by its model and what sets it apart from the model's other groups."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        key = json.dumps(identity(row["result"]["config"], ignore=("seed", "fold")), sort_keys=True)
        groups.setdefault(key, []).append(row)
    settings = {key: dotted(with_defaults(json.loads(key))) for key in groups}
    return [(members[0]["result"]["config"]["model"] + distinguishing(settings[key], settings.values())
             + folds_of(members), members) for key, members in groups.items()]


def folds_of(members: list[dict]) -> str:
    """' (5 folds)' for a group scored by k-fold cross-validation."""
    return f" ({fold_count(members)} folds)" if fold_count(members) else ""


def fold_count(members: list[dict]) -> int:
    return len({m["result"]["config"].get("fold", 0) for m in members} - {0})


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
        summary["course_text"], summary["course_saved_run"] = course_figures(first["config"])
        summary["per_seed_acc"] = [m["result"]["final"].get("acc") for m in members]
        summary["members"] = members
        summary.update(pairing.group_data(members, fold_count(members)))
        out.append(summary)
    out.sort(key=lambda s: -(s["acc"][0] if not math.isnan(s["acc"][0]) else -1))
    for group in out:  # Welch's t on per-seed accuracy against the best group scored on the same images
        signature = pairing.group_signature(group["members"])
        best = next(g for g in out if pairing.group_signature(g["members"]) == signature) if signature else None
        group["welch_p"] = None if best is group or best is None else \
            metrics.welch_p(best["per_seed_acc"], group["per_seed_acc"])
        group["is_best"] = best is group
        group["welch_note"] = pairing.welch_note(group, out)
    return out


def accuracy_intervals(groups: list[dict]) -> list[tuple[str, float, float, float, str]]:
    """(model group, mean, low, high, kind) of final accuracy in %: a t-interval over the seeds, or for
    a group of one run its Wilson interval over the validation images ("wilson"): one run still has
    an uncertainty, its images are a sample."""
    out = []
    for g in groups:
        mean, _, low, high = g["acc"]
        kind = "t"
        if len(g["members"]) == 1:
            low, high = g["members"][0].get("ci") or (None, None)
            kind = "wilson"
        low, high = (float("nan") if v is None or math.isnan(v) else 100 * min(1.0, max(0.0, v)) for v in (low, high))
        out.append((g["model"], 100 * mean, low, high, kind))
    return out


def plot_groups(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Seed groups as the comparison plots draw them: named results, with the dataset and image size
    in the name where the groups do not all share them."""
    groups = group_by_seed(rows)
    configs = [members[0]["result"]["config"] for _, members in groups]
    shown = [k for k in ("dataset", "image_size") if len({c[k] for c in configs}) > 1]
    return [(label + "".join(f" {c['dataset']}" if k == "dataset" else f" {c['image_size']}px" for k in shown),
             [m["result"] for m in members]) for (label, members), c in zip(groups, configs)]


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
    def shown_value(value):
        return f"{value:.4g}" if isinstance(value, float) else value
    return " (" + ", ".join(f"{k}={shown_value(settings.get(k, 'default'))}" for k in shown) + ")"


def course_figures(config: dict) -> tuple[float | None, float | None]:
    """The course's figures (its text, its saved run), where a run uses the course's setting
    (iChallenge-PM, 224x224, 5 epochs, scored on the official validation images)."""
    same_setting = (config["dataset"] == "ichallenge-pm" and config["image_size"] == 224 and config["epochs"] == 5
                    and config.get("validation", "official") == "official")
    if not same_setting:
        return None, None
    return COURSE_TEXT.get(config["model"]), COURSE_SAVED_RUN.get(config["model"])


# ---- records: the numbers, for scripts -----------------------------------------------------------

def run_record(row: dict) -> dict:
    res, c = row["result"], row["result"]["config"]
    final, best = res["final"], res["best"]
    course_text, course_saved = course_figures(c)
    p = row["mcnemar"]
    return {
        "run_id": res["run_id"], "name": res["name"], "model": c["model"], "dataset": c["dataset"],
        "data_fingerprint": without_ids(pairing.data_of(row)),
        "image_size": c["image_size"], "seed": c["seed"], "validation": c.get("validation", "official"),
        "epochs_run": res["epochs_run"], "parameters": res["parameters"],
        "gmacs": res["flops"] / 1e9 if res.get("flops") else None,
        "final_acc": final.get("acc"), "acc_ci_low": row["ci"][0], "acc_ci_high": row["ci"][1],
        "best_acc": best.get("acc"), "best_epoch": res.get("best_epoch"),
        "auc": final.get("auc"), "sensitivity": final.get("sensitivity"), "specificity": final.get("specificity"),
        "f1": final.get("f1"), "top5": final.get("top5"),
        "train_seconds": res.get("train_seconds"), "images_per_second": res.get("images_per_second"),
        "peak_memory_mb": res.get("peak_memory_mb"), "host": res.get("host"), "node": res.get("node"),
        "latency_ms": res.get("latency_ms"), "throughput_ips": res.get("throughput_ips"),
        "model_mb": res.get("model_mb"),
        **{k: row["probability"].get(k) for k in PROBABILITY_FIELDS},
        "course_text": course_text, "course_saved_run": course_saved,
        "is_best": p == "best", "mcnemar_p": None if p in (None, "best") else p, "delong_p": row.get("delong_p"),
        "compared_with": row.get("compared_with"), "paired_note": row.get("paired_note"),
        "in_file": row.get("in_file", True),
    }


def group_record(group: dict) -> dict:
    out = {k: group[k] for k in ("model", "dataset", "image_size", "seeds", "course_text", "course_saved_run",
                                 "per_seed_acc", "is_best", "welch_p", "welch_note", "train_sets", "val_sets",
                                 "data_note")}
    out["run_ids"] = [m["result"]["run_id"] for m in group["members"]]
    for name in ("acc", "auc"):
        mean, std, low, high = (None if math.isnan(v) else v for v in group[name])
        out.update({f"{name}_mean": mean, f"{name}_std": std, f"{name}_ci_low": low, f"{name}_ci_high": high})
    return out


# ---- tables for people ---------------------------------------------------------------------------

def pct(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def num(x, digits: int = 4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def differs(p) -> str:
    if p is None or p == "best":
        return "— (best)" if p == "best" else "—"
    # on 10 000 test images p underflows to 0.0, and "p=0" would claim a certainty no test gives
    return f"{'yes' if p < ALPHA else 'no'}, " + (f"p={p:.3g}" if p >= 1e-4 else "p<0.0001")


def compared(p, note: str | None = None, sets: int = 1) -> str:
    """differs(p), or "—" with why there is nothing to compare with (`sets`: validation sets in the table)."""
    if note:
        return f"— ({re.split(r':| [(]', note)[0]})"
    return "— (best on its validation images)" if p == "best" and sets > 1 else differs(p)


def table(rows: list[dict]) -> tuple[list[str], list[list]]:
    binary = any(len(r["result"]["class_names"]) == 2 for r in rows)
    multi = any(len(r["result"]["class_names"]) > 5 for r in rows)
    where = any(r["result"].get("node") for r in rows) or len({r["result"].get("host") for r in rows}) > 1
    header = ["run", "model", "dataset", "size", "epochs", "params (M)", "GMACs", "final acc", "95% CI",
              "best acc (epoch)"]
    header += ["AUC", "sensitivity", "specificity", "F1"] if binary else []
    header += ["top-5"] if multi else []
    sets = pairing.image_sets(rows)
    header += ["train s", "img/s", "peak MB", *(["ran on"] if where else []), *(["val images"] if len(sets) > 1 else []),
               "course (text)", "course (its saved run)", "differs from best (McNemar p)"]
    body = []
    for row in rows:
        r = run_record(row)
        marks = ("" if r["in_file"] else " (not in the file)") + \
            (" (selected by search)" if "selected by search" in r["name"] else "") + \
            (f" (other data than in {row['other_data_than']})" if row.get("other_data_than") else "")
        line = [r["run_id"] + marks, r["model"], r["dataset"],
                r["image_size"], r["epochs_run"], num(r["parameters"] / 1e6, 2), num(r["gmacs"], 2),
                pct(r["final_acc"]), f"{pct(r['acc_ci_low'])}–{pct(r['acc_ci_high'])}",
                f"{pct(r['best_acc'])} ({r['best_epoch']})"]
        if binary:
            line += [num(r["auc"]), pct(r["sensitivity"]), pct(r["specificity"]), num(r["f1"])]
        if multi:
            line += [pct(r["top5"])]
        line += [num(r["train_seconds"], 1), num(r["images_per_second"], 1), num(r["peak_memory_mb"], 0)]
        line += [" ".join(str(x) for x in (r["host"], r["node"] and f"node {r['node'][:8]}") if x)] if where else []
        line += [pairing.set_name(pairing.val_key(row))] if len(sets) > 1 else []
        line += [pct(r["course_text"]), pct(r["course_saved_run"]), compared(row["mcnemar"], r["paired_note"], len(sets))]
        body.append(line)
    return header, body


def choice_table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """What a person choosing a network also asks: can its AUC be told from the best one's, where
    would it operate, can its probabilities be trusted, what does it cost to run."""
    binary = any(len(r["result"]["class_names"]) == 2 for r in rows)
    header = ["run", "model"]
    header += ["AUC (95% CI, DeLong)", "AUC differs from best (DeLong p)", "sensitivity at 95% specificity",
               "specificity at 95% sensitivity"] if binary else []
    header += ["ECE", "Brier", "latency ms (batch 1)", "img/s (batch 32)", "model MB", "peak train MB"]
    body = []
    for row in rows:
        r = run_record(row)
        line = [r["run_id"], r["model"]]
        if binary:
            auc = f"{num(r['auc'])} ({num(r['auc_ci_low'], 3)}–{num(r['auc_ci_high'], 3)})" if r["auc_ci_low"] is not None \
                else num(r["auc"])
            line += [auc, compared("best" if r["is_best"] else r["delong_p"], r["paired_note"], len(pairing.image_sets(rows))),
                     pct(r["sensitivity_at_95_specificity"]),
                     pct(r["specificity_at_95_sensitivity"])]
        line += [num(r["ece"], 3), num(r["brier"], 3), num(r["latency_ms"], 1), num(r["throughput_ips"], 1),
                 num(r["model_mb"], 1), num(r["peak_memory_mb"], 0)]
        body.append(line)
    return header, body


def group_table(groups: list[dict]) -> tuple[list[str], list[list]]:
    header = ["model", "dataset", "size", "seeds", "final acc mean ± std", "95% interval", "AUC mean ± std",
              "differs from best group (Welch p)", "course (text)", "course (its saved run)"]
    body = [[g["model"], g["dataset"], g["image_size"], g["seeds"], mean_std(g["acc"]),
             # a t-interval knows nothing of accuracy's bounds: shown clipped to 0-100 %
             f"{pct(max(0.0, g['acc'][2]))}–{pct(min(1.0, g['acc'][3]))}" if not math.isnan(g["acc"][2]) else "—",
             mean_std(g["auc"], percent=False),
             compared("best" if g.get("is_best") else g.get("welch_p"), g.get("welch_note"),
                      len({pairing.group_signature(h["members"]) for h in groups})),
             pct(g["course_text"]), pct(g["course_saved_run"])] for g in groups]
    return header, body


def mean_std(stats, percent: bool = True) -> str:
    mean, std = stats[0], stats[1]
    if math.isnan(mean):
        return "—"
    scale, unit, digits = (100, "%", 2) if percent else (1, "", 3)
    if math.isnan(std):
        return f"{scale * mean:.{digits}f}{unit}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}{unit}"


def ensembles(rows: list[dict]) -> list[dict]:
    """A row per model group of two or more seeds that averages its seeds' final validation
    probabilities. Its members are the group's, never chosen by a validation score; it is compared
    with the best single run on the same images (McNemar, and DeLong for two classes). A group whose
    runs were scored on different images (k folds, or two datasets) is no ensemble: its row says why."""
    out = []
    for label, members in group_by_seed(rows):
        usable = [m for m in members if "final" in m["predictions"] and "labels" in m["predictions"]]
        if len(usable) < 2:
            continue
        problem = pairing.ensemble_problem(usable, fold_count(usable))
        if problem:
            out.append({"model": label, "seeds": len(usable), "acc": None, "acc_ci_low": None, "acc_ci_high": None,
                        "auc": None, "ece": None, "brier": None, "best_run": None, "mcnemar_p": None,
                        "delong_p": None, "reason": problem})
            continue
        labels = usable[0]["predictions"]["labels"]
        probs = np.mean([m["predictions"]["final"] for m in usable], axis=0)
        correct = probs.argmax(1) == labels
        low, high = metrics.wilson_interval(int(correct.sum()), len(correct))
        record = {"model": label, "seeds": len(usable), "acc": float(correct.mean()), "acc_ci_low": low,
                  "acc_ci_high": high, **metrics.summarize(probs, labels),
                  **probability_statistics({"final": probs, "labels": labels})}
        record["acc"] = float(correct.mean())
        best = next((r for r in rows if r.get("mcnemar") == "best" and pairing.val_key(r) == pairing.val_key(usable[0])
                     and pairing.same_predictions(r, usable[0])), None)
        record["best_run"] = best["result"]["run_id"] if best else None
        record["reason"] = None
        record["mcnemar_p"] = metrics.mcnemar(best["correct"], correct)[2] if best else None
        record["delong_p"] = (metrics.delong_test(best["predictions"]["final"][:, 1], probs[:, 1], labels)[1]
                              if best and probs.shape[1] == 2 else None)
        out.append(record)
    return out


def ensemble_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["ensemble of", "seeds", "acc", "95% CI", "AUC (95% CI, DeLong)", "ECE", "Brier",
              "differs from the best run (McNemar p)", "AUC differs (DeLong p)"]
    body = [[e["model"], e["seeds"], pct(e["acc"]), f"{pct(e['acc_ci_low'])}–{pct(e['acc_ci_high'])}",
             f"{num(e.get('auc'))} ({num(e.get('auc_ci_low'), 3)}–{num(e.get('auc_ci_high'), 3)})",
             num(e["ece"], 3), num(e["brier"], 3), differs(e["mcnemar_p"]), differs(e["delong_p"])]
            if not e.get("reason") else [e["model"], e["seeds"], f"— (not an ensemble: {e['reason']})", *["—"] * 6]
            for e in records]
    return header, body


def render(rows: list[dict], fmt: str = "md", skipped: list[str] = (), ensemble: bool = False,
           searches: dict | None = None) -> str:
    """The table in `fmt`; `searches`: {sweep name: search_trials(...)} of the sweeps that searched."""
    searches = searches or {}
    if fmt == "json":
        out = {"runs": [run_record(r) for r in rows], "seed_groups": [group_record(g) for g in seed_groups(rows)],
               "skipped": list(skipped)}
        if ensemble:
            out["ensembles"] = ensembles(rows)
        if searches:
            out["searches"] = {name: [dict(zip(header, line)) for line in body]
                               for name, (header, body) in searches.items()}
        return json.dumps(out, indent=1, default=float)
    if fmt == "csv":
        records = [run_record(r) for r in rows]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["run_id"])
        writer.writeheader()
        writer.writerows(records)
        return buf.getvalue()
    text = markdown(*table(rows))
    if rows:
        text += ("\n\nCost, calibration and operating points (measured on the validation images):\n\n"
                 + markdown(*choice_table(rows)))
    groups = seed_groups(rows)
    if any(g["seeds"] > 1 for g in groups):
        text += "\n\nOver seeds:\n\n" + markdown(*group_table(groups))
        text += "".join(f"\n\n{g['model']}: {g['data_note']}." for g in groups if g["data_note"])
    if ensemble:
        text += "\n\nEnsembles (the mean of each group's seeds' probabilities):\n\n" + markdown(*ensemble_table(ensembles(rows)))
    for name, (header, body) in searches.items():
        text += (f"\n\nSearch {name}: its trials, scored on training images only (the runs marked \"selected by "
                 f"search\" are the best trial's settings on the official images):\n\n" + markdown(header, body))
    if any(not r.get("in_file", True) for r in rows):
        text += f"\n\nRuns marked \"not in the file\" were trained here earlier but are not in {rows[0]['source']} now."
    if skipped:
        text += "\n\nNot shown:\n" + "\n".join(f"- {note}" for note in skipped)
    return text


def markdown(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("—" if v is None else str(v) for v in line) + " |" for line in body]
    return "\n".join(lines)


def report_for(output_dirs: list[Path], fmt: str = "md", ensemble: bool = False) -> tuple[str, list[str]]:
    """One table over the finished runs of one or more sweeps, and what could not be shown. The
    paired test compares every run with the best run on the same validation images, whichever sweep
    it came from; a folder named twice, or a run found in two folders, counts once."""
    rows, skipped, seen, searches = [], [], {}, {}
    for output_dir in dict.fromkeys(Path(d).resolve() for d in output_dirs):
        layout = SweepLayout(output_dir)
        trials = search_trials(output_dir)
        if trials is not None:
            searches[output_dir.name] = trials
        registry = RunRegistry(layout.registry, create=False)
        try:
            found, notes = finished_runs(layout, registry)
        finally:
            registry.close()
        skipped += [f"{output_dir}: {note}" for note in notes]
        for row in found:
            run_id, data = row["result"]["run_id"], (pairing.data_of(row) or {}).get("digest")
            if run_id in seen:
                first, first_data = seen[run_id]
                if first_data == data:  # the same settings on the same data would pass for two seeds at ± 0
                    skipped.append(f"{output_dir}: {run_id}: not shown again, it is the same run as in {first}")
                    continue
                row["other_data_than"] = first.name  # the same settings on other data: another run
            seen.setdefault(run_id, (output_dir, data))
            rows.append(row)
        if not any(r["run"].sweep.root.resolve() == output_dir for r in rows) and not notes:
            skipped.append(f"{output_dir}: no finished run yet")
    return render(ranked_with_statistics(rows), fmt, skipped, ensemble, searches), skipped


# ---- a search's trials ---------------------------------------------------------------------------

def search_trials(folder: Path) -> tuple[list[str], list[list]] | None:
    """The trials of the search stored in `folder` (Optuna's study.sqlite): number, state, score,
    epochs reported, settings; None where there is no study."""
    study = load_study(folder)
    if study is None:
        return None
    names = sorted({k for t in study.trials for k in t.params})
    header = ["trial", "state", "score", "epochs reported", *names]
    body = [[t.number, t.state.name.lower(), num(t.value), len(t.intermediate_values),
             *[num(t.params[k], 6) if isinstance(t.params.get(k), float) else t.params.get(k) for k in names]]
            for t in study.trials]
    return header, body


def load_study(folder: Path):
    path = Path(folder) / "study.sqlite"
    if not path.exists():
        return None
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = optuna.get_all_study_names(storage=f"sqlite:///{path}")
    return optuna.load_study(study_name=names[0], storage=f"sqlite:///{path}") if names else None

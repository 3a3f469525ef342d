"""The comparison of finished runs, built once per rewrite of a sweep's report (and once per
`runner report`): every number the tables, the files and the figures show. Knows no training and
imports no paddle: it reads the registry and the run files (runner.store) only.

One row per finished run, best final validation accuracy first, with a 95% Wilson interval and an
exact McNemar test against the best run on the same validation images: the same validation
fingerprint, never a count or a setting (runner/report/pairing.py). Runs that differ only in their
seed are also summarised together: mean ± std and a 95% t-interval of the mean.

`run_record` and `group_record` are what scripts get (csv, json): plain numbers (accuracies as
fractions), an interval as two fields, None for a missing value, stable snake_case keys. The
tables for people (runner/report/tables.py) format those same records.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from runner import metrics
from runner.config import dotted, full_budget, identity, with_defaults
from runner.report import pairing
from runner.report.sections import Beyond
from runner.store.fingerprint import without_ids
from runner.store.layout import SweepPaths
from runner.store.registry import RunRegistry, registry_to_read
from runner.errors import RunnerError
from runner.store.runfiles import checked_predictions, damaged_message, is_number, read_result, result_problem
from runner.store.study import open_study

# The course's figures for iChallenge-PM validation accuracy after 5 epochs at 224x224, batch 10:
# what its prose says, and the last epoch of the run saved in its own notebook
# (PaddlePaddle/awesome-DeepLearning, junior_class/chapter-3-Computer_Vision/notebook/
# 3-2-CV-Image_Classification.ipynb; see docs/results.md).
COURSE_TEXT = {"lenet": 0.5275, "alexnet": 0.94, "vgg16": 0.94, "googlenet": 0.95, "resnet50": 0.95}
COURSE_SAVED_RUN = {"alexnet": 0.925, "vgg16": 0.9475, "googlenet": 0.8575, "resnet50": 0.93}
PROBABILITY_FIELDS = ("ece", "brier", "auc_ci_low", "auc_ci_high", "sensitivity_at_95_specificity",
                      "specificity_at_95_sensitivity")


@dataclass
class Comparison:
    """Finished runs of one or more sweeps with their statistics, and what is derived from them,
    each computed once however many tables and figures use it."""

    rows: list[dict]  # best final accuracy first, with ci, mcnemar, delong_p and probability statistics
    skipped: list[str] = field(default_factory=list)  # a note per finished run that cannot be shown
    studies: dict = field(default_factory=dict)  # sweep name -> the Optuna study of its search
    # a line per folder whose finished runs were also found in a folder named before it (each shown once)
    shown_once: list[str] = field(default_factory=list)
    # the validation accuracies each run is timed to (`runner report --targets`); None: each run's own
    targets: list[float] | None = None

    @cached_property
    def by_seed(self) -> list[tuple[str, list[dict]]]:
        return group_by_seed(self.rows)

    @cached_property
    def groups(self) -> list[dict]:
        return seed_groups(self.rows, self.by_seed)

    @cached_property
    def plot_groups(self) -> list[tuple[str, list[dict]]]:
        return plot_groups(self.rows, self.by_seed)

    @cached_property
    def ensembles(self) -> list[dict]:
        return ensembles(self.rows, self.by_seed)

    @cached_property
    def curve_groups(self) -> list[tuple[str, list[dict]]]:
        """Runs alike but for the seed and the share of the training images: a network's learning curve."""
        return group_by_seed(self.rows, over=("train_fraction", "fraction_budget"))

    @cached_property
    def warnings(self) -> list[str]:
        """A line per run shown without the numbers its predictions would give: which, why, the fix."""
        return [damaged_message(row["paths"], row["predictions_problem"], row["source"]) for row in self.rows
                if row.get("predictions_problem")]

    @cached_property
    def beyond(self) -> Beyond:
        """Robustness, learning curves, time to accuracy and per-class scores (runner/report/sections.py)."""
        return Beyond(self)


# ---- reading the runs ----------------------------------------------------------------------------

def compare_sweep(sweep: SweepPaths, registry: RunRegistry) -> Comparison:
    """The comparison of one sweep's finished runs, from its open registry (a sweep's own report)."""
    rows, skipped = finished_runs(sweep, registry)
    study = load_study(sweep, skipped)
    return Comparison(ranked_with_statistics(rows), skipped, {sweep.root.name: study} if study else {})


def compare_folders(output_dirs: list[Path], targets: list[float] | None = None) -> Comparison:
    """One comparison over the finished runs of one or more sweeps (`runner report`). The paired
    test compares every run with the best run on the same validation images, whichever sweep it
    came from; a folder named twice, or a run found in two folders, counts once (and one line says so),
    unless the two were trained on other data (their fingerprints differ): then they are two runs."""
    rows, skipped, shown_once, seen, studies = [], [], [], {}, {}
    for output_dir in dict.fromkeys(Path(d).resolve() for d in output_dirs):
        sweep = SweepPaths(output_dir)
        study = load_study(sweep, skipped)
        if study is not None:
            studies[output_dir.name] = study
        registry = registry_to_read(sweep.registry)
        try:
            found, notes = finished_runs(sweep, registry)
        finally:
            registry.close()
        skipped += [f"{output_dir}: {note}" for note in notes]
        again = []  # the same settings trained twice would pass for two seeds at ± 0
        for row in found:
            run_id, data = row["result"]["run_id"], (pairing.data_of(row) or {}).get("digest")
            if run_id in seen:
                first, first_data = seen[run_id]
                if first_data == data:
                    again.append(first)
                    continue
                row["other_data_than"] = first.name  # the same settings on other data: another run
            seen.setdefault(run_id, (output_dir, data))
            rows.append(row)
        if again:
            shown_once.append(shown_once_note(output_dir, len(found), again))
        elif not found and not notes:
            skipped.append(f"{output_dir}: no finished run yet")
    return Comparison(ranked_with_statistics(rows), skipped, shown_once=shown_once, studies=studies, targets=targets)


def shown_once_note(folder: Path, finished: int, first_seen_in: list[Path]) -> str:
    """One line for a folder whose finished runs were also found in a folder named before it."""
    where = " and ".join(map(str, dict.fromkeys(first_seen_in)))
    share = f"all {finished}" if len(first_seen_in) == finished else f"{len(first_seen_in)} of the {finished}"
    return (f"{folder}: {share} finished run(s) are the same runs (same settings and seed) as in {where}: "
            "each is shown once")


def ranked_with_statistics(rows: list[dict]) -> list[dict]:
    """Best final accuracy first, then the intervals and the paired test against the best."""
    rows.sort(key=lambda r: -(finite(r["result"]["final"].get("acc")) or 0.0))
    add_statistics(rows)
    return rows


def finished_runs(sweep: SweepPaths, registry: RunRegistry) -> tuple[list[dict], list[str]]:
    """A sweep's finished runs with their results and per-image correctness; notes on those skipped.
    A run whose predictions.npz does not agree with its result.json is shown with its result.json's
    numbers only: every number that needs its predictions is left out, and `predictions_problem` says why."""
    current, source = registry.current()
    overrides = registry.overrides()
    rows, skipped = [], []
    for row in registry.rows("done"):
        paths = sweep.run_paths(row["id"])
        result = read_result(paths)
        if not result:
            skipped.append(f"{row['id']}: not shown, {result_problem(paths)}")
            continue
        predictions, problem, not_finite = checked_predictions(paths, result)
        if not_finite:  # recorded by a runner that did not check its evaluations: its accuracy is as meaningless
            skipped.append(f"{row['id']}: not shown, {problem}; train it again with a lower learning rate")
            continue
        correct = predictions["final"].argmax(1) == predictions["labels"] if predictions else None
        in_file = current is None or row["id"] in current
        rows.append({"result": result, "correct": correct, "predictions": predictions, "predictions_problem": problem,
                     "in_file": in_file, "overrides": None if in_file else overrides.get(row["id"]), "source": source,
                     "paths": paths})
    return rows, skipped


def finite(value):
    """`value` with every NaN or infinity as None and numpy numbers as Python's: JSON and CSV
    for scripts hold no bare NaN (json.dumps would write one, which no JSON parser accepts)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


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


def group_by_seed(rows: list[dict], over: tuple[str, ...] = ()) -> list[tuple[str, list[dict]]]:
    """Runs alike but for the seed (and, under k-fold cross-validation, the fold, and the keys `over`:
    ("train_fraction", "fraction_budget") for learning curves), in order of their first run, each
    group named by its model and what sets it apart from the model's other groups."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        config = full_budget(row["result"]["config"]) if "train_fraction" in over else row["result"]["config"]
        key = json.dumps(identity(config, ignore=("seed", "fold", *over)), sort_keys=True)
        groups.setdefault(key, []).append(row)
    settings = {key: dotted(with_defaults(json.loads(key))) for key in groups}
    return [(members[0]["result"]["config"]["model"] + distinguishing(settings[key], settings.values())
             + folds_of(members), members) for key, members in groups.items()]


def folds_of(members: list[dict]) -> str:
    """' (5 folds)' for a group scored by k-fold cross-validation."""
    return f" ({fold_count(members)} folds)" if fold_count(members) else ""


def fold_count(members: list[dict]) -> int:
    return len({m["result"]["config"].get("fold", 0) for m in members} - {0})


def seed_groups(rows: list[dict], by_seed: list[tuple[str, list[dict]]] | None = None) -> list[dict]:
    """Runs alike but for the seed, summarised: n, mean ± std and 95% interval of each metric
    (`by_seed`: group_by_seed(rows), where the caller has it already)."""
    out = []
    for label, members in by_seed if by_seed is not None else group_by_seed(rows):
        first = members[0]["result"]
        summary = {"model": label,
                   "dataset": first["config"]["dataset"],
                   "image_size": first["config"]["image_size"], "seeds": len(members)}
        for name in ("acc", "auc"):
            values = [m["result"]["final"].get(name) for m in members]
            summary[name] = metrics.mean_std_interval([v for v in values if v is not None])
        summary["course_text"], summary["course_saved_run"] = course_figures(first["config"])
        summary["per_seed_acc"] = [m["result"]["final"].get("acc") for m in members]
        # the mean is over the runs with an accuracy; the table says how many had none
        summary["seeds_without_acc"] = sum(not is_number(a) for a in summary["per_seed_acc"])
        summary["members"] = members
        summary.update(pairing.group_data(members, fold_count(members)))
        out.append(summary)
    out.sort(key=lambda s: -(s["acc"][0] if math.isfinite(s["acc"][0]) else -1))
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


def plot_groups(rows: list[dict], by_seed: list[tuple[str, list[dict]]] | None = None) -> list[tuple[str, list[dict]]]:
    """Seed groups as the comparison plots draw them: named results, with the dataset and image size
    in the name where the groups do not all share them."""
    groups = by_seed if by_seed is not None else group_by_seed(rows)
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


def ensembles(rows: list[dict], by_seed: list[tuple[str, list[dict]]]) -> list[dict]:
    """A row per model group of two or more seeds that averages its seeds' final validation
    probabilities. Its members are the group's, never chosen by a validation score; it is compared
    with the best single run on the same images (McNemar, and DeLong for two classes). A group whose
    runs were scored on different images (k folds, or two datasets) is no ensemble: its row says why."""
    out = []
    for label, members in by_seed:
        if len(members) < 2:
            continue
        broken = next((m for m in members if m.get("predictions_problem")), None)
        problem = (f"{broken['result']['run_id']}: {broken['predictions_problem']}" if broken
                   else pairing.ensemble_problem(members, fold_count(members)))
        if problem:
            out.append({"model": label, "seeds": len(members), "acc": None, "acc_ci_low": None, "acc_ci_high": None,
                        "auc": None, "ece": None, "brier": None, "best_run": None, "mcnemar_p": None,
                        "delong_p": None, "reason": problem})
            continue
        labels = members[0]["predictions"]["labels"]
        probs = np.mean([m["predictions"]["final"] for m in members], axis=0)
        correct = probs.argmax(1) == labels
        low, high = metrics.wilson_interval(int(correct.sum()), len(correct))
        record = {"model": label, "seeds": len(members), "acc": float(correct.mean()), "acc_ci_low": low,
                  "acc_ci_high": high, **metrics.summarize(probs, labels),
                  **probability_statistics({"final": probs, "labels": labels})}
        record["acc"] = float(correct.mean())
        best = next((r for r in rows if r.get("mcnemar") == "best" and pairing.val_key(r) == pairing.val_key(members[0])
                     and pairing.same_predictions(r, members[0])), None)
        record["best_run"] = best["result"]["run_id"] if best else None
        record["reason"] = None
        record["mcnemar_p"] = metrics.mcnemar(best["correct"], correct)[2] if best else None
        record["delong_p"] = (metrics.delong_test(best["predictions"]["final"][:, 1], probs[:, 1], labels)[1]
                              if best and probs.shape[1] == 2 else None)
        out.append(record)
    return out


# ---- records: the numbers, for scripts -----------------------------------------------------------

def cores_of(result: dict) -> tuple[int, int]:
    """(processes, math threads of each) a run's result.json says it trained on."""
    return (result.get("parallel") or {}).get("processes", 1), result["config"].get("threads", 1)


def run_record(row: dict) -> dict:
    res, c = row["result"], row["result"]["config"]
    final, best = res["final"], res["best"]
    course_text, course_saved = course_figures(c)
    processes, threads = cores_of(res)
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
        "train_seconds": res.get("train_seconds"), "train_cpu_seconds": res.get("train_cpu_seconds"),
        "images_per_second": res.get("images_per_second"),
        "peak_memory_mb": res.get("peak_memory_mb"), "host": res.get("host"), "node": res.get("node"),
        "processes": processes, "threads": threads,
        "latency_ms": res.get("latency_ms"), "throughput_ips": res.get("throughput_ips"),
        "latency_ms_slowest": res.get("latency_ms_slowest"), "throughput_ips_slowest": res.get("throughput_ips_slowest"),
        "cost_load_average": res.get("cost_load_average"), "cost_other_runs": res.get("cost_other_runs"),
        "model_mb": res.get("model_mb"),
        **{k: row["probability"].get(k) for k in PROBABILITY_FIELDS},
        "course_text": course_text, "course_saved_run": course_saved,
        "is_best": p == "best", "mcnemar_p": None if p in (None, "best") else p, "delong_p": row.get("delong_p"),
        "compared_with": row.get("compared_with"), "paired_note": row.get("paired_note"),
        "in_file": row.get("in_file", True), "overrides": row.get("overrides"),
        "predictions_problem": row.get("predictions_problem"),
    }


def group_record(group: dict) -> dict:
    out = {k: group[k] for k in ("model", "dataset", "image_size", "seeds", "seeds_without_acc", "course_text",
                                 "course_saved_run", "per_seed_acc", "is_best", "welch_p", "welch_note",
                                 "train_sets", "val_sets", "data_note")}
    out["run_ids"] = [m["result"]["run_id"] for m in group["members"]]
    for name in ("acc", "auc"):
        mean, std, low, high = (finite(v) for v in group[name])
        out.update({f"{name}_mean": mean, f"{name}_std": std, f"{name}_ci_low": low, f"{name}_ci_high": high})
    return out


# ---- a search's study ----------------------------------------------------------------------------

def load_study(sweep: SweepPaths, skipped: list[str]):
    """The Optuna study of the search run in `sweep`, or None (no search, or no Optuna here); a
    damaged or foreign study.sqlite is a note in `skipped`, and the runs are shown all the same."""
    path = sweep.study
    if not path.exists():
        return None
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        names = open_study(path, None, lambda storage: optuna.get_all_study_names(storage=storage))
        return open_study(path, None, lambda storage: optuna.load_study(study_name=names[0], storage=storage)) \
            if names else None
    except RunnerError as err:
        skipped.append(f"{sweep.root}: its search's trials are not shown: {err}")
        return None

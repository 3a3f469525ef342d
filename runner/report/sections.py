"""The report's sections beyond accuracy: how each network holds up on corrupted images, how its
accuracy grows with the number of training images, how fast it gets there, and which classes it
misses. Their numbers, from a Comparison (runner/report/comparison.py: its rows, its seed groups,
its learning-curve groups and the accuracy targets asked for), each computed once; it reads each
run's robustness.json beside the rows and imports no paddle.

    beyond = comparison.beyond  # Beyond(comparison)
    beyond.records()   # {"robustness", "learning_curves", "time_to_accuracy", "per_class"}: the JSON's
    beyond.figures()   # {file name: a function drawing it}, where there is something to show

The tables for people are runner/report/tables.py's (beyond_sections); the files, files.py's.

Robustness: the mCE of a run is normalised by the AlexNet runs (the protocol's baseline, as
Hendrycks & Dietterich use it) scored on the very same clean images with the same corruption seed
and trained on the same share of the training images (their mean, over seeds); where there is none
it is the unnormalised mean error, and the records say so. Time to accuracy reads the validation
accuracy of every epoch: the first epoch at or above a target is picked by
looking at the validation images, so it is an optimistic, DAWNBench-style figure, not a held-out one.
"""
from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from runner import metrics, plots
from runner.options import CORRUPTIONS
from runner.store.runfiles import read_json

# Validation accuracies whose time to reach is reported, unless a run's accuracy_targets or
# `runner report --targets` says otherwise: within reach of the networks of docs/results.md.
DEFAULT_TARGETS = {"ichallenge-pm": (0.90, 0.95, 0.97), "cifar10": (0.80, 0.90, 0.94)}
OTHER_TARGETS = (0.80, 0.90)
MCE_BASELINE = "alexnet"
DIFFER_MOST = 3  # classes listed where the networks' recalls differ most


def finite_or_none(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def mean_of(values) -> float | None:
    present = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(present)) if present else None


def targets_of(config: dict, override=None) -> list[float]:
    return sorted(override or config.get("accuracy_targets") or DEFAULT_TARGETS.get(config["dataset"], OTHER_TARGETS))


class Beyond:
    def __init__(self, comparison):
        self.rows, self.groups, self.targets = comparison.rows, comparison.by_seed, comparison.targets
        self.curve_groups = comparison.curve_groups
        self.group_of = {id(m): label for label, members in self.groups for m in members}
        self.scored = {id(row): stored for row in self.rows for stored in [read_json(row["paths"].robustness)]
                       if stored and stored.get("sets")}

    # ---- robustness ------------------------------------------------------------------------------

    def accuracies(self, row) -> dict[str, dict[int, float]]:
        """{corruption: {severity: accuracy}} of a scored run, severities 1-5 only."""
        sets = self.scored[id(row)]["sets"]
        return {name: {int(s): v["acc"] for s, v in by.items() if int(s) > 0} for name, by in sets.items()
                if any(int(s) > 0 for s in by)}

    def baseline_for(self, row) -> list[dict]:
        """The AlexNet runs scored on the same clean images with the same corruption seed and package
        as `row`, and trained on the same share of their training images under the same budget (a
        learning curve's AlexNet on a tenth of them is no baseline for a network trained on all)."""
        mine, config = self.scored[id(row)], row["result"]["config"]

        def budget(c):  # a full share is the same run under either budget
            return c.get("fraction_budget", "same_epochs") if c.get("train_fraction", 1.0) < 1.0 else None
        return [other for other in self.rows if id(other) in self.scored
                and other["result"]["config"]["model"] == MCE_BASELINE
                and other["result"]["config"].get("train_fraction", 1.0) == config.get("train_fraction", 1.0)
                and budget(other["result"]["config"]) == budget(config)
                and all(self.scored[id(other)].get(k) == mine.get(k) for k in ("dataset", "pixels", "seed", "package"))]

    def robustness_run(self, row) -> dict:
        stored, res = self.scored[id(row)], row["result"]
        accuracies = self.accuracies(row)
        baseline = self.baseline_for(row)
        base_acc = None
        if baseline:
            base_acc = {name: {s: mean_of(self.accuracies(b).get(name, {}).get(s) for b in baseline)
                               for s in by} for name, by in accuracies.items()}
            if any(v is None for by in base_acc.values() for v in by.values()):
                baseline, base_acc = [], None  # the baseline lacks a set this run has: unnormalised
        mce, ce = metrics.mean_corruption_error(accuracies, base_acc) if accuracies else (None, {})
        sets = [v for by in stored["sets"].values() for s, v in by.items() if int(s) > 0]
        return {"run_id": res["run_id"], "model": res["config"]["model"], "group": self.group_of.get(id(row)),
                "image_size": stored["image_size"], "seed": res["config"]["seed"], "corruption_seed": stored["seed"],
                "package": stored["package"], "engine": stored["engine"], "images": stored["images"],
                "clean_acc": stored["clean"]["acc"], "clean_auc": finite_or_none(stored["clean"].get("auc")),
                "clean_ece": finite_or_none(stored["clean"]["ece"]),
                "mean_corruption_acc": mean_of(v["acc"] for v in sets),
                "mean_corruption_auc": mean_of(v.get("auc") for v in sets),
                "ece_under_corruption": mean_of(v["ece"] for v in sets),
                "mce": finite_or_none(mce), "mce_normalised": bool(baseline),
                "mce_baseline": [b["result"]["run_id"] for b in baseline] or None,
                "ce": {name: finite_or_none(v) for name, v in ce.items()},
                "corruptions": {name: {s: {k: finite_or_none(v.get(k)) for k in ("acc", "auc", "ece")}
                                       for s, v in sorted(by.items(), key=lambda kv: int(kv[0]))}
                                for name, by in stored["sets"].items()}}

    def robustness_groups(self, runs: list[dict]) -> list[dict]:
        out = []
        for label, members in self.groups:
            mine = [r for r in runs if r["group"] == label]
            if not mine:
                continue
            names = [c for c in CORRUPTIONS if any(c in r["corruptions"] for r in mine)]
            severities = sorted({int(s) for r in mine for by in r["corruptions"].values() for s in by} | {0})
            by_corruption = {c: mean_of(v["acc"] for r in mine for s, v in r["corruptions"].get(c, {}).items()
                                        if int(s) > 0) for c in names}
            by_severity = {s: mean_of(r["clean_acc"] for r in mine) if s == 0 else
                           mean_of(v["acc"] for r in mine for by in r["corruptions"].values()
                                   for t, v in by.items() if int(t) == s) for s in severities}
            out.append({"model": label, "seeds": len(mine), "run_ids": [r["run_id"] for r in mine],
                        "clean_acc": mean_of(r["clean_acc"] for r in mine),
                        "mean_corruption_acc": mean_of(r["mean_corruption_acc"] for r in mine),
                        # an mCE relative to AlexNet and a plain mean error do not average: "—" if they mix
                        "mce": mean_of(r["mce"] for r in mine) if len({r["mce_normalised"] for r in mine}) == 1 else None,
                        "mce_normalised": all(r["mce_normalised"] for r in mine),
                        "ece_under_corruption": mean_of(r["ece_under_corruption"] for r in mine),
                        "by_corruption": by_corruption, "by_severity": {str(s): v for s, v in by_severity.items()}})
        return out

    @cached_property
    def robustness(self) -> dict:
        runs = [self.robustness_run(row) for row in self.rows if id(row) in self.scored]
        return {"baseline_model": MCE_BASELINE, "runs": runs, "groups": self.robustness_groups(runs)}

    # ---- learning curves -------------------------------------------------------------------------

    @cached_property
    def learning_curves(self) -> list[dict]:
        """Per network and fraction_budget: final accuracy over its seeds at each share of the training
        images, where it was trained on two or more shares (the full set counts for every budget)."""
        out = []
        for label, members in self.curve_groups:
            def share(m):
                return m["result"]["config"].get("train_fraction", 1.0)

            budgets = sorted({m["result"]["config"].get("fraction_budget", "same_epochs") for m in members
                              if share(m) < 1.0})
            for budget in budgets:
                by_share: dict[float, list[dict]] = {}
                for m in members:
                    if share(m) >= 1.0 or m["result"]["config"].get("fraction_budget") == budget:
                        by_share.setdefault(share(m), []).append(m["result"])
                if len(by_share) >= 2:
                    out.append({"model": label + (f" ({budget})" if len(budgets) > 1 else ""),
                                "fraction_budget": budget, "points": [curve_point(share, results)
                                                                      for share, results in sorted(by_share.items())]})
        return out

    # ---- time to accuracy ------------------------------------------------------------------------

    @cached_property
    def time_to_accuracy(self) -> list[dict]:
        out = []
        for row in self.rows:
            res = row["result"]
            reached = []
            for target in targets_of(res["config"], self.targets):
                hit = metrics.time_to_accuracy(res["history"], target)
                reached.append({"target": target, **(hit or {"epoch": None, "train_seconds": None,
                                                           "train_cpu_seconds": None, "wall_seconds": None})})
            out.append({"run_id": res["run_id"], "model": res["config"]["model"], "group": self.group_of.get(id(row)),
                        "epochs_run": res["epochs_run"], "targets": reached})
        return out

    # ---- per class -------------------------------------------------------------------------------

    @cached_property
    def per_class(self) -> dict:
        runs = []
        for row in self.rows:
            res = row["result"]
            matrix = res.get("confusion_matrix", {}).get("final")
            if not matrix:
                continue
            scores = metrics.per_class_scores(matrix)
            runs.append({"run_id": res["run_id"], "model": res["config"]["model"], "group": self.group_of.get(id(row)),
                         "classes": [{"class": name, **{k: finite_or_none(v) for k, v in s.items()}}
                                     for name, s in zip(res["class_names"], scores)]})
        groups = []
        for label, members in self.groups:
            mine = [r for r in runs if r["group"] == label]
            if mine:
                names = [c["class"] for c in mine[0]["classes"]]
                mine = [r for r in mine if [c["class"] for c in r["classes"]] == names]
                groups.append({"model": label, "seeds": len(mine), "classes": names,
                               "recall": [mean_of(r["classes"][i]["recall"] for r in mine) for i in range(len(names))],
                               "f1": [mean_of(r["classes"][i]["f1"] for r in mine) for i in range(len(names))]})
        return {"runs": runs, "groups": groups, "differ_most": differ_most(groups)}

    def per_class_table(self) -> tuple[list[str], list[dict]] | None:
        """(the classes, the groups with those classes) for the network x class heat map and table:
        the most groups sharing one list of more than two classes (a report over Cifar10 and
        iChallenge-PM shows Cifar10's ten), or None."""
        by_classes: dict[tuple, list[dict]] = {}
        for g in self.per_class["groups"]:
            if len(g["classes"]) > 2:
                by_classes.setdefault(tuple(g["classes"]), []).append(g)
        if not by_classes:
            return None
        classes, groups = max(by_classes.items(), key=lambda kv: len(kv[1]))
        return list(classes), groups

    # ---- outputs ---------------------------------------------------------------------------------

    def records(self) -> dict:
        """Every figure of these sections, for `runner report --format json`."""
        return {"robustness": self.robustness, "learning_curves": self.learning_curves,
                "time_to_accuracy": self.time_to_accuracy, "per_class": self.per_class}

    def figures(self) -> dict:
        """{file name: a function drawing the figure} of each section with something to show."""
        robust = self.robustness
        draw = {}
        groups = robust["groups"]
        if groups:
            names = [c for c in CORRUPTIONS if any(c in g["by_corruption"] for g in groups)]
            values = np.array([[g["by_corruption"].get(c) if g["by_corruption"].get(c) is not None else np.nan
                                for c in names] for g in groups], float)
            draw["robustness_heatmap.png"] = lambda: plots.heatmap_figure(
                values, [g["model"] for g in groups], names,
                "Accuracy under each corruption (%, mean over the severities scored and the seeds)", "accuracy (%)")
            draw["robustness_by_severity.png"] = lambda: plots.severity_figure(
                [(g["model"], {int(s): v for s, v in g["by_severity"].items() if v is not None}) for g in groups])
        curves = self.learning_curves
        if curves:
            draw["learning_curves.png"] = lambda: plots.learning_curve_figure(
                [(c["model"], [(p["train_images"], p["acc_mean"], p["acc_ci_low"] if p["acc_ci_low"] is not None
                                else np.nan, p["acc_ci_high"] if p["acc_ci_high"] is not None else np.nan,
                                [a for a in p["per_seed_acc"] if a is not None]) for p in c["points"]])
                 for c in curves])
        if self.rows:
            targets = sorted({t for row in self.rows for t in targets_of(row["result"]["config"], self.targets)})
            draw["acc_vs_wall_time.png"] = lambda: plots.wall_time_figure(
                [(label, [m["result"] for m in members]) for label, members in self.groups], targets)
        table = self.per_class_table()
        if table:
            classes, by_class = table  # not `groups`: the robustness figures above draw those when called
            draw["per_class_heatmap.png"] = lambda: plots.heatmap_figure(
                np.array([[np.nan if v is None else v for v in g["recall"]] for g in by_class], float),
                [g["model"] for g in by_class], classes, "Recall of each class (%, final epoch, mean over seeds)",
                "recall (%)")
        return draw


def curve_point(share: float, results: list[dict]) -> dict:
    """One share of a learning curve: its runs' final accuracy, mean and 95 % t-interval over seeds."""
    accs = [r["final"].get("acc") for r in results]
    mean, std, low, high = metrics.mean_std_interval(accs)
    # k folds train on slightly different numbers of images: their mean
    return {"train_images": int(round(np.mean([r["train_images"] for r in results]))), "train_fraction": share,
            "epochs": results[0]["config"]["epochs"], "seeds": len(accs), "acc_mean": finite_or_none(mean),
            "acc_std": finite_or_none(std), "acc_ci_low": finite_or_none(low), "acc_ci_high": finite_or_none(high),
            "per_seed_acc": [finite_or_none(a) for a in accs], "run_ids": [r["run_id"] for r in results]}


def differ_most(groups: list[dict], count: int = DIFFER_MOST) -> list[dict]:
    """The classes whose recall differs most between model groups (max - min of the groups' means),
    with the best and worst group for each; only groups of the same classes are compared (a report
    may hold two datasets), and nothing for a class fewer than two groups have."""
    out = []
    by_classes: dict[tuple, list[dict]] = {}
    for g in groups:
        by_classes.setdefault(tuple(g["classes"]), []).append(g)
    for classes, alike in by_classes.items():
        for i, name in enumerate(classes):
            recalls = [(g["recall"][i], g["model"]) for g in alike if g["recall"][i] is not None]
            if len(recalls) < 2:
                continue
            (low, worst), (high, best) = min(recalls), max(recalls)
            out.append({"class": name, "spread": high - low, "best": best, "best_recall": high, "worst": worst,
                        "worst_recall": low})
    return sorted(out, key=lambda d: -d["spread"])[:count]

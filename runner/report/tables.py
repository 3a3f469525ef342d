"""The comparison as tables for people: markdown (results.md, `runner report`), and the header and
body of each table, which report.html shows too; csv and json carry the records unformatted."""
from __future__ import annotations

import csv
import io
import json
import math
import re

from runner.report import pairing
from runner.report.comparison import Comparison, cores_of, finite, group_record, run_record
from runner.report.sections import MCE_BASELINE, Beyond, mean_of

ALPHA = 0.05  # the level at which "differs from best" says yes


def pct(x) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.2f}%"


def bounded_interval(low, high) -> str:
    """A 95 % t-interval of an accuracy as 'low–high', shown within 0-100 % (a t-interval knows nothing
    of accuracy's bounds); '—' for a group of one."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"{pct(max(0.0, low))}–{pct(min(1.0, high))}"


def num(x, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


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
    cores = any(cores_of(r["result"]) != (1, 1) for r in rows)
    header += [*(["processes × threads"] if cores else []), "train s", "train CPU s", "img/s", "peak MB",
               *(["ran on"] if where else []), *(["val images"] if len(sets) > 1 else []),
               "course (text)", "course (its saved run)", "differs from best (McNemar p)"]
    body = []
    for row in rows:
        r = run_record(row)
        marks = file_mark(r) + (" (selected by search)" if "selected by search" in r["name"] else "") + \
            (f" (other data than in {row['other_data_than']})" if row.get("other_data_than") else "")
        line = [r["run_id"] + marks, r["model"], r["dataset"],
                r["image_size"], r["epochs_run"], num(r["parameters"] / 1e6, 2), num(r["gmacs"], 2),
                pct(r["final_acc"]), interval_cell(r),
                f"{pct(r['best_acc'])} ({r['best_epoch']})"]
        if binary:
            line += [num(r["auc"]), pct(r["sensitivity"]), pct(r["specificity"]), num(r["f1"])]
        if multi:
            line += [pct(r["top5"])]
        line += [on_cores(r)] if cores else []
        line += [num(r["train_seconds"], 1), num(r["train_cpu_seconds"], 1), num(r["images_per_second"], 1), num(r["peak_memory_mb"], 0)]
        line += [" ".join(str(x) for x in (r["host"], r["node"] and f"node {r['node'][:8]}") if x)] if where else []
        line += [pairing.set_name(pairing.val_key(row))] if len(sets) > 1 else []
        line += [pct(r["course_text"]), pct(r["course_saved_run"]), compared(row["mcnemar"], r["paired_note"], len(sets))]
        body.append(line)
    return header, body


def on_cores(record: dict) -> str:
    """'2×1': the processes a run trained in (data parallel) and the math threads of each."""
    return f"{record['processes']}×{record['threads']}"


SEVERAL_PROCESSES_NOTE = ("Runs of several processes (processes × threads): train s is their wall time, train CPU s "
                          "is summed over the processes (so it exceeds the wall time), img/s counts the images of "
                          "all of them, and peak MB is the first process's (each holds about as much).")


def runs_note(rows: list[dict]) -> str:
    """What the runs table's timings mean where they need saying ("" where they do not)."""
    return SEVERAL_PROCESSES_NOTE if any(cores_of(r["result"])[0] > 1 for r in rows) else ""


def interval_cell(record: dict) -> str:
    """'60.12%–71.30%', or '—' with why the run's predictions give none."""
    if record["predictions_problem"]:
        return f"— ({record['predictions_problem']})"
    return f"{pct(record['acc_ci_low'])}–{pct(record['acc_ci_high'])}"


def file_mark(record: dict) -> str:
    """' (--set seed=1)' for a run a command line made from the file's, ' (not in the file)' for one
    the file no longer holds, nothing for the file's own."""
    if record["in_file"]:
        return ""
    if record["overrides"]:
        return " (--set " + " ".join(record["overrides"]) + ")"
    return " (not in the file)"


def choice_table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """What a person choosing a network also asks: can its AUC be told from the best one's, where
    would it operate, can its probabilities be trusted, what does it cost to run."""
    binary = any(len(r["result"]["class_names"]) == 2 for r in rows)
    header = ["run", "model"]
    header += ["AUC (95% CI, DeLong)", "AUC differs from best (DeLong p)", "sensitivity at 95% specificity",
               "specificity at 95% sensitivity"] if binary else []
    header += ["ECE", "Brier", "latency ms (batch 1)", "img/s (batch 32)", "measured under", "model MB",
               "peak train MB"]
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
        line += [num(r["ece"], 3), num(r["brier"], 3), with_slowest(r["latency_ms"], r["latency_ms_slowest"]),
                 with_slowest(r["throughput_ips"], r["throughput_ips_slowest"]), load_of(r),
                 num(r["model_mb"], 1), num(r["peak_memory_mb"], 0)]
        body.append(line)
    return header, body


def with_slowest(figure, slowest) -> str:
    """'7.2 (slowest round 9.8)': a cost figure and how far the load of its slowest round moved it."""
    if figure is None or slowest is None or num(figure, 1) == num(slowest, 1):
        return num(figure, 1)
    return f"{num(figure, 1)} (slowest round {num(slowest, 1)})"


def load_of(record: dict) -> str:
    """'load 3.2, 1 other run': the machine's 1-minute load average and the other runs training on
    it while the run's cost was timed ('—' for runs timed before the runner recorded it)."""
    if record["cost_load_average"] is None and record["cost_other_runs"] is None:
        return "—"
    others = record["cost_other_runs"]
    return f"load {num(record['cost_load_average'], 1)}, {others} other run{'' if others == 1 else 's'}"


COST_NOTE = ("Latency and img/s: the exported model on paddle's inference engine, one thread, timed in rounds after "
             "the run's training; the figure is the fastest round, and \"measured under\" the machine's 1-minute "
             "load average and the other runs training on it then: a busy machine makes a figure slower, never "
             "faster.")


def group_table(groups: list[dict]) -> tuple[list[str], list[list]]:
    header = ["model", "dataset", "size", "seeds", "final acc mean ± std", "95% interval", "AUC mean ± std",
              "differs from best group (Welch p)", "course (text)", "course (its saved run)"]
    body = [[g["model"], g["dataset"], g["image_size"], seeds(g), mean_std(g["acc"]), bounded_interval(*g["acc"][2:]),
             mean_std(g["auc"], percent=False),
             compared("best" if g.get("is_best") else g.get("welch_p"), g.get("welch_note"),
                      len({pairing.group_signature(h["members"]) for h in groups})),
             pct(g["course_text"]), pct(g["course_saved_run"])] for g in groups]
    return header, body


def seeds(group: dict) -> str:
    """'3', or '3 (1 without accuracy)' when the mean is over fewer runs than the group holds."""
    missing = group.get("seeds_without_acc", 0)
    return f"{group['seeds']} ({missing} without accuracy)" if missing else str(group["seeds"])


def mean_std(stats, percent: bool = True) -> str:
    mean, std = stats[0], stats[1]
    if not math.isfinite(mean):
        return "—"
    scale, unit, digits = (100, "%", 2) if percent else (1, "", 3)
    if not math.isfinite(std):
        return f"{scale * mean:.{digits}f}{unit}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}{unit}"


def ensemble_table(records: list[dict]) -> tuple[list[str], list[list]]:
    header = ["ensemble of", "seeds", "acc", "95% CI", "AUC (95% CI, DeLong)", "ECE", "Brier",
              "differs from the best run (McNemar p)", "AUC differs (DeLong p)"]
    body = [[e["model"], e["seeds"], pct(e["acc"]), f"{pct(e['acc_ci_low'])}–{pct(e['acc_ci_high'])}",
             f"{num(e.get('auc'))} ({num(e.get('auc_ci_low'), 3)}–{num(e.get('auc_ci_high'), 3)})",
             num(e["ece"], 3), num(e["brier"], 3), differs(e["mcnemar_p"]), differs(e["delong_p"])]
            if not e.get("reason") else [e["model"], e["seeds"], f"— (not an ensemble: {e['reason']})", *["—"] * 6]
            for e in records]
    return header, body


def trials_table(study) -> tuple[list[str], list[list]]:
    """A search's trials: number, state, score, epochs reported, settings."""
    names = sorted({k for t in study.trials for k in t.params})
    header = ["trial", "state", "score", "epochs reported", *names]
    body = [[t.number, t.state.name.lower(), num(t.value), len(t.intermediate_values),
             *[num(t.params[k], 6) if isinstance(t.params.get(k), float) else t.params.get(k) for k in names]]
            for t in study.trials]
    return header, body


def beyond_sections(beyond: Beyond) -> list[dict]:
    """The sections beyond accuracy (runner/report/sections.py) that have something to show: key,
    heading, caption, table (header, body) and the names of their figures (Beyond.figures), for
    results.md and report.html."""
    out = []
    robust = beyond.robustness
    if robust["groups"]:
        normalised = [g["mce_normalised"] for g in robust["groups"]]
        out.append(section("robustness", ["model", "seeds", "clean acc", "mean corruption acc",
                                          f"mCE (% of {MCE_BASELINE})" if all(normalised) else "mCE",
                                          "ECE clean", "ECE under corruption"],
                           [[g["model"], g["seeds"], pct(g["clean_acc"]), pct(g["mean_corruption_acc"]),
                             "—" if g["mce"] is None else f"{g['mce']:.1f}" + ("" if all(normalised) or ok
                                                                                else " (unnormalised)"),
                             num(mean_of(r["clean_ece"] for r in robust["runs"] if r["group"] == g["model"]), 3),
                             num(g["ece_under_corruption"], 3)]
                            for g, ok in zip(robust["groups"], normalised)],
                           ["robustness_heatmap.png", "robustness_by_severity.png"],
                           "" if any(normalised) else f" No {MCE_BASELINE} run was scored on the same images, so "
                           "mCE is unnormalised here: the mean top-1 error (%) over the corruptions and severities."))
    curves = beyond.learning_curves
    if curves:
        out.append(section("learning_curves", ["model", "budget", "training images", "epochs", "seeds",
                                               "final acc mean", "95% interval", "per seed"],
                           [[c["model"], c["fraction_budget"], p["train_images"], p["epochs"], p["seeds"],
                             pct(p["acc_mean"]), bounded_interval(p["acc_ci_low"], p["acc_ci_high"]),
                             ", ".join(pct(a) for a in p["per_seed_acc"])]
                            for c in curves for p in c["points"]], ["learning_curves.png"]))
    times = beyond.time_to_accuracy
    if times:
        targets = sorted({t["target"] for r in times for t in r["targets"]})

        def reached(record, target):
            hit = next((t for t in record["targets"] if t["target"] == target), None)
            if hit is None:
                return "—"
            if hit["epoch"] is None:
                return "not reached"
            cpu = f", {hit['train_cpu_seconds']:.0f} CPU s" if hit.get("train_cpu_seconds") is not None else ""
            return f"{hit['train_seconds']:.0f} s{cpu} (epoch {hit['epoch']})"
        out.append(section("time_to_accuracy", ["run", "model", *(f"training s to {100 * t:g}%" for t in targets)],
                           [[r["run_id"], r["model"], *(reached(r, t) for t in targets)] for r in times],
                           ["acc_vs_wall_time.png"]))
    per_class, table = beyond.per_class, beyond.per_class_table()
    if table:
        classes, groups = table
        out.append(section("per_class", ["model", *classes], [[g["model"], *map(pct, g["recall"])] for g in groups],
                           ["per_class_heatmap.png"]))
        if per_class["differ_most"]:
            out.append(section("differ_most", ["class", "recall spread", "best", "worst"],
                               [[d["class"], pct(d["spread"]), f"{d['best']} ({pct(d['best_recall'])})",
                                 f"{d['worst']} ({pct(d['worst_recall'])})"] for d in per_class["differ_most"]], []))
    return out


HEADINGS = {
    "robustness": ("Robustness to corrupted images",
                   "Each run's final network on its validation images under ImageNet-C's corruptions (Hendrycks & "
                   "Dietterich 2019, the imagecorruptions package) at severities 1-5, through the engine it was "
                   "evaluated with. mCE: each corruption's error summed over the severities, divided by the same sum "
                   f"for the {MCE_BASELINE} runs scored on the same images, averaged over the corruptions (100 = as "
                   f"robust as {MCE_BASELINE}, lower is better)."),
    "learning_curves": ("Learning curves over training-set size",
                        "Final validation accuracy against the number of training images, each network trained on "
                        "nested, class-stratified shares of them (train_fraction): the mean over seeds with its 95 % "
                        "t-interval (shown within 0-100 %), the seeds as dots. Budget: same_epochs trains every share "
                        "for the same epochs, same_steps for about as many steps as the full set."),
    "time_to_accuracy": ("Time to accuracy",
                         "Training seconds (and the epoch) until a run's validation accuracy first reached each "
                         "target, as DAWNBench reports it. It reads the validation accuracy of every epoch, so the "
                         "epoch is picked by looking at the validation images: an optimistic figure for a run stopped "
                         "there, not a held-out one. The plot: every epoch's validation accuracy against the run's "
                         "wall time (training and evaluation)."),
    "per_class": ("Per class",
                  "Recall of each class at the final epoch (the share of its validation images called that class), "
                  "mean over seeds; precision and F1 are in the JSON."),
    "differ_most": ("Classes where the networks differ most",
                    "The classes whose recall differs most between model groups: best and worst group."),
}


def section(key: str, header: list[str], body: list[list], figures: list[str], note: str = "") -> dict:
    heading, caption = HEADINGS[key]
    return {"key": key, "heading": heading, "caption": caption + note, "header": header, "body": body,
            "figures": figures}


def render(comparison: Comparison, fmt: str = "md", ensemble: bool = False) -> str:
    """The comparison as md (what results.md holds and `runner report` prints), csv or json."""
    rows, skipped, shown_once = comparison.rows, comparison.skipped, comparison.shown_once
    searches = {name: trials_table(study) for name, study in comparison.studies.items()}
    if fmt == "json":
        out = {"runs": [run_record(r) for r in rows], "seed_groups": [group_record(g) for g in comparison.groups],
               "skipped": list(skipped), "shown_once": list(shown_once), **comparison.beyond.records()}
        if ensemble:
            out["ensembles"] = comparison.ensembles
        if searches:
            out["searches"] = {name: [dict(zip(header, line)) for line in body]
                               for name, (header, body) in searches.items()}
        return json.dumps(finite(out), indent=1, allow_nan=False)
    if fmt == "csv":
        records = [finite(run_record(r)) for r in rows]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records else ["run_id"])
        writer.writeheader()
        writer.writerows(records)
        return buf.getvalue()
    text, note = markdown(*table(rows)), runs_note(rows)
    if note:
        text += "\n\n" + note
    if rows:
        text += ("\n\nCost, calibration and operating points (measured on the validation images):\n\n"
                 + markdown(*choice_table(rows)) + "\n\n" + COST_NOTE)
    groups = comparison.groups
    if any(g["seeds"] > 1 for g in groups):
        text += "\n\nOver seeds:\n\n" + markdown(*group_table(groups))
        text += "".join(f"\n\n{g['model']}: {g['data_note']}." for g in groups if g["data_note"])
    if ensemble:
        text += "\n\nEnsembles (the mean of each group's seeds' probabilities):\n\n" + markdown(*ensemble_table(comparison.ensembles))
    for part in beyond_sections(comparison.beyond):
        text += f"\n\n{part['heading']}:\n\n" + markdown(part["header"], part["body"])
    for name, (header, body) in searches.items():
        text += (f"\n\nSearch {name}: its trials, scored on training images only (the runs marked \"selected by "
                 f"search\" are the best trial's settings on the official images):\n\n" + markdown(header, body))
    if any(not r.get("in_file", True) and r.get("overrides") for r in rows):
        text += (f"\n\nRuns marked \"--set ...\" are runs of {rows[0]['source']} trained with those settings "
                 "changed on the command line (`runner train` or `runner sweep` with --set).")
    if any(not r.get("in_file", True) and not r.get("overrides") for r in rows):
        text += f"\n\nRuns marked \"not in the file\" were trained here earlier but are not in {rows[0]['source']} now."
    if comparison.warnings:
        text += "\n\nShown without the numbers their predictions would give:\n" + "\n".join(
            f"- {note}" for note in comparison.warnings)
    if skipped:
        text += "\n\nNot shown:\n" + "\n".join(f"- {note}" for note in skipped)
    if shown_once:
        text += "\n\nShown once:\n" + "\n".join(f"- {note}" for note in shown_once)
    return text


def markdown(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("—" if v is None else str(v) for v in line) + " |" for line in body]
    return "\n".join(lines)



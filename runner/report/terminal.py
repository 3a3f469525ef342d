"""`runner report` on a terminal: a compact table that fits 120 columns, led by a one-line verdict.

    best: resnet18 seed 0 (97.50 %); not distinguishable from alexnet seed 0, vgg11 seed 0 on these
    images (McNemar p ≥ 0.05)

Fed by what the comparison has already computed (runner/report/comparison.py's Comparison): the
ranked rows with their intervals and paired tests. The settings that tell runs apart (optimizer, learning rate,
batch size, test-time augmentation, dataset, image size) get a column only where the runs differ in
them. The full markdown stays in results.md and `runner report --format md`.
"""
from __future__ import annotations

import textwrap

from runner.report import pairing
from runner.report.comparison import Comparison, run_record
from runner.report.tables import ALPHA, file_mark, num, pct

WIDTH = 120
GAP = "  "
# (header, how to read it from a run's config): a column only where the runs differ in it
SETTINGS = [
    ("dataset", lambda c: c["dataset"]),
    ("size", lambda c: c["image_size"]),
    ("optimizer", lambda c: c["optimizer"]["name"]),
    ("lr", lambda c: f"{c['optimizer']['learning_rate']:g}"),
    ("batch", lambda c: c["batch_size"]),
    ("tta", lambda c: c.get("tta", 0)),
]


def compact_report(comparison: Comparison, width: int = WIDTH) -> str:
    """The verdict, the table and its notes, every line at most `width` characters."""
    rows, skipped, shown_once = comparison.rows, comparison.skipped, comparison.shown_once
    if not rows:
        lines = ["no finished run to show"]
    else:
        names = short_names(rows)
        said = verdicts(rows, names, width)
        if any(len(line) > width for line in said):  # zoo names are long: paddle.vision/mobilenet_v3_large
            said = verdicts(rows, short_names(rows, bare=True), width)
        lines = [fit(line, width) for line in said]
        lines += [""] + table_lines(rows, names, width)
        lines += [fit(line, width) for line in footnotes(rows)]
    # wrapped, not cut: the line ends in its fix; a path longer than a line stays whole, to be copied
    lines += [part for note in comparison.warnings
              for part in textwrap.wrap(f"warning: {note}", width, subsequent_indent="  ", break_on_hyphens=False,
                                        break_long_words=False)]
    lines += [fit(f"not shown: {note}", width) for note in skipped]
    lines += [fit(note, width) for note in shown_once]
    lines.append("full table: results.md in the sweep's folder, or runner report --format md")
    return "\n".join(lines)


def short_names(rows: list[dict], bare: bool = False) -> dict[str, str]:
    """A name per run for the verdict: its model (`bare`: without its origin, as "paddle.vision/"),
    its seed where the runs have several, and its id's digest where that still leaves two alike."""
    seeds = {r["result"]["config"]["seed"] for r in rows}
    names = {}
    for row in rows:
        c = row["result"]["config"]
        model = c["model"].rsplit("/", 1)[-1] if bare else c["model"]
        names[row["result"]["run_id"]] = model + (f" seed {c['seed']}" if len(seeds) > 1 else "")
    counts = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {run_id: name if counts[name] == 1 else f"{name} #{run_id.rsplit('-', 1)[-1]}"
            for run_id, name in names.items()}


def verdicts(rows: list[dict], names: dict[str, str], width: int = WIDTH) -> list[str]:
    """A line per set of validation images (one validation fingerprint): the best run, and the runs
    McNemar's test cannot tell from it on those images (as many named as the line holds; the table has
    them all)."""
    out, done = [], set()
    for row in rows:  # best first: the first run met of each fingerprint is its best, tested or not
        untestable_best = row.get("predictions_problem") and pairing.val_key(row) is not None
        if id(row) in done or (row["mcnemar"] != "best" and not untestable_best):
            continue
        peers = [r for r in rows if pairing.val_key(r) == pairing.val_key(row)]
        done.update(id(r) for r in peers)
        best = f"best: {names[row['result']['run_id']]} ({pct(row['result']['final'].get('acc'))})"
        if row["mcnemar"] != "best":
            out.append(f"{best}; no run is tested against it: its predictions cannot be used (see the warning below)")
            continue
        alike = [names[r["result"]["run_id"]] for r in peers
                 if isinstance(r["mcnemar"], float) and r["mcnemar"] >= ALPHA]
        untested = sum(r is not row and r["mcnemar"] is None for r in peers)
        tail = f"; {untested} run(s) not tested (no usable per-image predictions)" if untested else ""
        if len(peers) == 1:
            out.append(f"{best}, the only finished run on these images{tail}")
        elif alike:
            out.append(listing(f"{best}; not distinguishable from ", alike,
                               f" on these images (McNemar p ≥ {ALPHA:g}){tail}", width))
        else:
            out.append(f"{best}; every other run differs from it on these images (McNemar p < {ALPHA:g}){tail}")
    return out or ["no run could be tested against another (no per-image predictions, or no data fingerprint)"]


def listing(head: str, names: list[str], tail: str, width: int) -> str:
    """head + 'a, b, c' + tail, or 'a, b and 9 more', or '11 others', as `width` allows."""
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        line = head + ", ".join(names[:shown]) + (f" and {rest} more" if rest else "") + tail
        if len(line) <= width:
            return line
    return head + f"{len(names)} others" + tail


def table_lines(rows: list[dict], names: dict[str, str], width: int) -> list[str]:
    configs = [r["result"]["config"] for r in rows]
    varied = [(header, read) for header, read in SETTINGS if len({str(read(c)) for c in configs}) > 1]
    header = ["run", "model", "seed", *[h for h, _ in varied], "final acc (95% CI)", "AUC", "p vs best",
              "latency ms"]
    body = []
    for row, config in zip(rows, configs):
        r = run_record(row)
        low, high = r["acc_ci_low"], r["acc_ci_high"]
        interval = f" ({100 * low:.1f}–{100 * high:.1f})" if low is not None and high is not None else ""
        p = row["mcnemar"]
        body.append([r["run_id"] + ("*" if file_mark(r) else ""), r["model"], str(r["seed"]),
                     *[str(read(config)) for _, read in varied], pct(r["final_acc"]) + interval, num(r["auc"], 3),
                     "best" if p == "best" else ("—" if p is None else p_value(p)), num(r["latency_ms"], 1)])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    # too wide: the run ids, then the model names give way, cut on the left so that what tells them
    # apart stays (an id's seed and digest, "…-s0-96e27f0d"); the numbers never do
    for column, least in ((0, 14), (1, 16)):
        excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
        if excess > 0:
            widths[column] = max(least, widths[column] - excess)
    numeric = set(range(len(header) - 4, len(header))) | {2}
    return [GAP.join(cell_text(cell, w, i in numeric) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
            for line in [header, *body]]


def cell_text(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = "…" + text[len(text) - width + 1:]
    return text.rjust(width) if right else text.ljust(width)


def p_value(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-4 else "<0.0001"


def footnotes(rows: list[dict]) -> list[str]:
    """What a mark in the table means, and under which load the latencies were measured."""
    out = []
    marked = [(r["run_id"], file_mark(r).strip(" ()")) for r in map(run_record, rows) if file_mark(r)]
    for run_id, mark in marked:
        out.append(f"* {run_id}: {mark}")
    loads = [r for r in map(run_record, rows) if r["latency_ms"] is not None]
    if loads:
        out.append("latency: CPU, batch 1, one thread, fastest round; " + measured_under(loads))
    return out


def measured_under(records: list[dict]) -> str:
    """'measured at load 1.2–3.4 with 0–2 other run(s) training': the 1-minute load average and the
    other runs training on the machine while the runs' costs were timed."""
    def span(key, digits):
        values = [r[key] for r in records if r.get(key) is not None]
        if not values:
            return None
        low, high = min(values), max(values)
        return f"{low:.{digits}f}" if low == high else f"{low:.{digits}f}–{high:.{digits}f}"
    load, others = span("cost_load_average", 1), span("cost_other_runs", 0)
    if load is None:
        return "load not recorded (runs from before the runner recorded it)"
    return f"measured at load {load} with {others} other run(s) training"


def fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[:width - 1] + "…"

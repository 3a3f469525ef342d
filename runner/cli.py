"""The `runner` command: parse, call, print. Everything else lives in the modules it calls."""
from __future__ import annotations

import json
import re
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions
from rich.console import Console
from rich.live import Live
from rich.table import Table

import runner
from runner.errors import RunnerError, UsageError

HELP = {"help_option_names": ["-h", "--help"], "max_content_width": 120}
# No rich markup in help texts: they name extras such as '.[cluster]', which markup would eat.
app = typer.Typer(help="Benchmark image-classification architectures side by side with PaddlePaddle.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, context_settings=HELP,
                  rich_markup_mode=None)
data_app = typer.Typer(help="Inspect datasets on disk.", no_args_is_help=True, context_settings=HELP,
                       rich_markup_mode=None)
app.add_typer(data_app, name="data")
# Piped output (logs, CI) gets wide tables rather than rich's 80-column default with cut-off cells.
# No markup: file names, labels and messages are printed as they are, brackets and all.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 220, markup=False,
              highlight=False)


# Where a sweep or run that has started keeps its results: said by main's Ctrl-C message too.
stopped_note: list[str] = []


def show_version(value: bool) -> None:
    if value:
        out.print(f"runner {runner.__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                      help="Print the version and exit.")):
    """Benchmark image-classification architectures side by side with PaddlePaddle."""

SetOption = typer.Option(None, "--set", help="Override a setting for every run, e.g. --set epochs=1 "
                                             "--set optimizer.learning_rate=0.01")
DataRootOption = typer.Option(None, "--data-root", help="Folder holding the datasets "
                                                        "(default: $RUNNER_DATA_ROOT, else ./data)")
RetrainStaleOption = typer.Option(False, "--retrain-stale", help="Train afresh the runs that finished or were "
                                  "interrupted on other data than there is now, and the finished runs whose "
                                  "predictions.npz disagrees with their result.json (their old files are moved to "
                                  "outputs/<name>/stale/); without it the first are refused")


def stop_cleanly_on_signals() -> None:
    """Ctrl-C and `kill` both stop a run or sweep cleanly (runs marked interrupted, resumable), also
    when it was started in the background, where the shell leaves SIGINT ignored. Called after paddle
    is imported, since paddle installs handlers of its own."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def main() -> None:
    """Console entry point: user mistakes become one line on stderr, never a traceback; a mistake in
    the command line itself (click's, or a value the runner refuses) exits 2, anything else 1."""
    if len(sys.argv) == 1:
        sys.argv.append("--help")  # `runner` alone: the help, not a usage error
    try:
        code = app(standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as e:  # `runner data` alone: its help, as `runner` alone
        print(e.format_message())
        sys.exit(0)
    except click_exceptions.NoSuchOption as e:
        hint = f"; did you mean {', '.join(e.possibilities)}?" if e.possibilities else ""
        usage_error(f"no such option {e.option_name}{hint}")
    except click_exceptions.UsageError as e:
        usage_error(e.format_message())
    except UsageError as e:
        usage_error(str(e))
    except typer.Abort:  # click's Ctrl-C
        code = 130
    except RunnerError as e:
        err.print(f"error: {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # typer turns Ctrl-C into exit code 130
        err.print("interrupted; finished work is kept — run the same command again to resume"
                  + "".join(f"; {note}" for note in stopped_note[-1:]))
    sys.exit(code or 0)


def usage_error(message: str) -> None:
    """One line in one wording for every usage error, click's ("No such command 'x'.") and ours,
    naming the help of the command that was given; exit code 2."""
    message = message.strip().rstrip(".").replace("Value error, ", "")  # typer's prefix to a bad choice
    message = message[:1].lower() + message[1:]
    err.print(f"error: {message} (see `{command_path(sys.argv[1:])} --help`)", highlight=False, soft_wrap=True)
    sys.exit(2)


def command_path(argv: list[str]) -> str:
    """'runner data check' for the words of argv that name commands, however runner was started."""
    group, words = typer.main.get_command(app), ["runner"]
    for word in argv:
        group = getattr(group, "commands", {}).get(word)
        if group is None:
            break
        words.append(word)
    return " ".join(words)


# ---- models ------------------------------------------------------------------------------------

@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="One JSON object per model, as a list."),
           flops: bool = typer.Option(False, "--flops", help="Also count FLOPs at each model's default input "
                                                            "size (builds every network: about a minute)."),
           benchmark: bool = typer.Option(False, "--benchmark", help="Measure each untrained network's CPU "
                                          "inference cost as trained runs are measured (latency at batch 1, "
                                          "throughput at batch 32, exported size)"),
           image_size: Optional[int] = typer.Option(None, "--image-size", min=8, max=4096, help="With --benchmark: this size "
                                                    "instead of each model's default"),
           only: Optional[List[str]] = typer.Option(None, "--model", help="With --benchmark: only these models "
                                                   "(repeat the option)")):
    """Every registered model: name, origin (course, paddle.vision or runner), parameters."""
    from runner.models import describe_models
    from runner.run.assess import benchmark_models

    if benchmark:
        rows = benchmark_models(only or None, image_size,
                                on_model=None if as_json else lambda name: err.print(f"measuring {name} ..."))
        if as_json:
            out.print_json(json.dumps(rows))
            return
        t = Table("name", "input", "parameters", "GMACs", "latency ms (batch 1)", "img/s (batch 32)", "model MB")
        for r in rows:
            if "error" in r:
                t.add_row(r["name"], f"{r['image_size']}px", "", "", f"not measured: {r['error']}", "", "")
                continue
            t.add_row(r["name"], f"{r['image_size']}px", f"{r['parameters']:,}", f"{r['flops'] / 1e9:.2f}",
                      f"{r['latency_ms']:.2f}", f"{r['throughput_ips']:.1f}", f"{r['model_mb']:.1f}")
        out.print(t)
        out.print("one thread, the exported model on paddle's inference engine (oneDNN), as trained runs are measured")
        return
    rows = describe_models(with_flops=flops)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    t = Table("name", "origin", "parameters (2 classes)", "input", *(["GMACs"] if flops else []), "summary")
    for r in rows:
        t.add_row(r["name"], r["origin"], f"{r['parameters']:,}", f"{r['image_size']}px",
                  *([f"{r['flops'] / 1e9:.2f}" if r.get("flops") else "—"] if flops else []), r["summary"])
    out.print(t)


# ---- data --------------------------------------------------------------------------------------

@data_app.command("check")
def data_check(dataset: str = typer.Argument(..., help="ichallenge-pm, cifar10 or folder:<path>"),
               data_root: Optional[Path] = DataRootOption):
    """Validate a dataset on disk: per-split and per-class counts, image sizes, and every problem."""
    from runner.data import check_dataset

    found = check_dataset(dataset, data_root)
    out.print(f"{found.dataset} at {found.location}")
    for split, stats in found.splits.items():
        classes = ", ".join(f"{name}: {n}" for name, n in stats.per_class.items())
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in stats.sizes.most_common(4))
        out.print(f"  {split:<6} {stats.count:>6} images   {classes}")
        if sizes:
            out.print(f"         sizes: {sizes}")
    if found.unused:
        out.print(f"{len(found.unused)} not used:")
        for entry in found.unused:
            out.print(f"  - {entry}", soft_wrap=True)
    if found.problems:
        err.print(f"{len(found.problems)} problem(s):", highlight=False)
        for p in found.problems:
            err.print(f"  - {p}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print("ok: no problems found", style="green")


# ---- train / sweep -----------------------------------------------------------------------------

@app.command()
def train(file: Path = typer.Argument(..., help="Experiment file (TOML)"),
          run: Optional[str] = typer.Option(None, "--run", help="Run id, label or model name (default: the first run)"),
          nproc: Optional[int] = typer.Option(None, "--nproc", min=1, max=1024, help="Data-parallel processes "
                                              "(paddle.distributed.launch; gloo on CPU, NCCL on GPUs)"),
          overrides: Optional[List[str]] = SetOption, data_root: Optional[Path] = DataRootOption,
          retrain_stale: bool = RetrainStaleOption):
    """Train one run of an experiment file in this process (resumes if it was interrupted)."""
    from runner.config import load_experiment
    from runner.store.layout import SweepPaths
    from runner.sweep.in_process import train_one

    experiment = load_experiment(file, [*(overrides or []), *([f"nproc={nproc}"] if nproc else [])])
    spec = experiment.find(run)
    paths = SweepPaths.for_experiment(experiment.name)
    stop_cleanly_on_signals()
    stopped_note.append(where_to_look(paths))
    result = train_one(experiment, spec, data_root, on_event=print_training_event, retrain_stale=retrain_stale)
    out.print(f"done {spec.run_id}: final val acc {result['final'].get('acc', float('nan')):.2%}, "
              f"best {result['best'].get('acc', float('nan')):.2%} at epoch {result['best_epoch']}; "
              + where_to_look(paths))


def where_to_look(paths) -> str:
    """The sentence that ends a sweep or a run, and a Ctrl-C of either: where its results are."""
    return (f"results in {paths.root}: results.md (the table), report.html (open it in a browser), "
            f"`runner board {paths.root}` (VisualDL)")


def print_training_event(kind: str, **d) -> None:
    if kind == "start":
        resumed = f", resuming after epoch {d['resumed_at']}" if d["resumed_at"] else ""
        flops = f", {d['flops'] / 1e9:.2f} GMACs/image" if d.get("flops") else ""
        out.print(f"{d['name']} ({d['run_id']}): {d['parameters']:,} parameters{flops}; "
                  f"{d['train_images']} train / {d['val_images']} val images{resumed}")
    elif kind == "note":
        err.print(f"note: {d['message']}")
    elif kind == "epoch":
        r = d["record"]
        val = "  ".join(f"{k} {v:.4f}" for k, v in r["val"].items())
        out.print(f"epoch {r['epoch']}/{d['epochs']}  train loss {r['train'].get('loss', float('nan')):.4f} "
                  f"acc {r['train'].get('acc', float('nan')):.4f}  |  val {val}  |  {r['train_seconds']:.1f}s "
                  f"+ {r.get('eval_seconds', 0):.1f}s eval", highlight=False)


@app.command()
def sweep(file: Path = typer.Argument(..., help="Experiment file (TOML)"),
          jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, max=1024,
                                             help="CPU cores to keep busy (default: all); a run takes threads x nproc of them"),
          dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and its estimated time, and stop"),
          retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again"),
          devices: Optional[str] = typer.Option(None, "--devices", help="GPUs to use, e.g. 0,1,2,3: one run per "
                                                                       "GPU at a time"),
          cluster: Optional[str] = typer.Option(None, "--cluster", envvar="RUNNER_CLUSTER",
                                                help="Run on the Ray cluster at this address (auto, HOST:PORT, "
                                                     "ray://HOST:PORT); needs pip install -e '.[cluster]'"),
          retries: int = typer.Option(2, "--retries", min=0, max=100, help="With --cluster: times Ray reruns a run whose "
                                                                  "node died (it resumes from its checkpoint)"),
          overrides: Optional[List[str]] = SetOption, data_root: Optional[Path] = DataRootOption,
          retrain_stale: bool = RetrainStaleOption):
    """Every run of an experiment file; finished runs are skipped, interrupted ones resume."""
    from runner.config import load_experiment
    from runner.store.layout import SweepPaths
    from runner.store.registry import RunRegistry
    from runner.sweep.driver import run_sweep
    from runner.sweep.plan import plan_sweep
    from runner.sweep.stale import damaged_notes, stale_message

    gpus = parse_devices(devices)
    if cluster and (gpus or jobs):
        raise UsageError("--cluster runs each run where Ray places it: --jobs and --devices are for local sweeps "
                         "(a run asks Ray for threads x nproc CPUs, or nproc GPUs with device = \"gpu\")")
    if cluster:
        from runner.sweep.executors.ray import import_ray

        import_ray()  # without Ray installed: one line naming the install command, before anything else
    # --devices runs on GPUs: the runs' ids say so before the workers are placed on one GPU each
    experiment = load_experiment(file, [*(overrides or []), *(["device=gpu"] if gpus else [])])
    paths = SweepPaths.for_experiment(experiment.name)
    if experiment.search and retrain_stale:
        raise RunnerError("--retrain-stale is for sweeps: a search's study holds the scores its trials were told, "
                          f"which no retraining changes; move {paths.root} aside to start a new study")
    if experiment.search and dry_run:
        print_search_plan(experiment, jobs or (len(gpus) if gpus else None))
        return
    if dry_run:
        registry = RunRegistry(paths.registry, create=False) if paths.registry.exists() else None
        planned = plan_sweep(experiment, registry, retry_failed, data_root, retrain_stale)
        print_plan(planned, jobs or (len(gpus) if gpus else None))
        for message in [stale_message(planned, paths), *damaged_notes(planned, paths, experiment.path)]:
            if message:
                err.print(f"note: {message}")
        return
    progress = sweep_progress(jobs or (len(gpus) if gpus else None))
    stop_cleanly_on_signals()
    stopped_note.append(where_to_look(paths))
    if out.is_terminal:
        with Live(progress_table(progress, out.width), console=out, refresh_per_second=2) as live:
            def on_event(kind, **d):
                line = progress.on_event(kind, **d)
                live.update(progress_table(progress, out.width))
                if line and kind in ("finished", "plan", "robustness", "note"):
                    live.console.print(line)
            rows = run_sweep(experiment, jobs, retry_failed, data_root, on_event, gpus, cluster, retries,
                             retrain_stale=retrain_stale)
    else:
        def on_event(kind, **d):
            line = progress.on_event(kind, **d)
            if line:
                print(line, flush=True)  # a file or a pipe gets each line as it happens
        rows = run_sweep(experiment, jobs, retry_failed, data_root, on_event, gpus, cluster, retries,
                             retrain_stale=retrain_stale)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "pruned", "failed", "interrupted", "queued")}
    out.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + "; " + where_to_look(paths))
    for r in rows:
        if r["status"] == "failed":
            err.print(f"failed {r['id']}: {r['error']}")
    if counts["failed"]:
        raise typer.Exit(1)


def print_search_plan(experiment, parallel: int | None) -> None:
    from runner.cpu import usable_cores
    from runner.sweep.progress import clock
    from runner.sweep.search import runs_to_come, trial_specs

    search = experiment.search
    base = trial_specs(experiment, {})
    t = Table("setting", "searched over")
    for dim in search.space:
        t.add_row(dim.key, f"{dim.kind} {list(dim.values)}")
    out.print(t)
    slots = parallel or usable_cores()
    progress = sweep_progress(slots)
    per_trial = sum(cost.seconds for s in base for cost in [progress.timings.cost(s.config)] if cost) / 60
    progress.on_event("plan", planned=[])
    progress.on_event("expected", specs=runs_to_come(experiment, search.trials))
    total = progress.seconds_left()
    out.print(f"search: {search.trials} trials of {len(base)} run(s) each, {search.sampler} sampler, {search.pruner} "
              f"pruner, {search.objective} on {base[0].config['validation']}; then seeds {search.final_seeds} on the "
              f"official validation images")
    out.print(f"about {clock(total)} at {slots} at a time if no trial is pruned (a trial of the base "
              f"run: {per_trial:.1f} min; the space's settings change it)")


def parse_devices(text: Optional[str]) -> list[int] | None:
    if not text:
        return None
    numbers = [d.strip() for d in text.split(",") if d.strip()]
    if not numbers or not all(re.fullmatch(r"[0-9]{1,4}", d) for d in numbers):  # int() takes '１' and '1_0'
        raise UsageError(f"--devices {text!r}: give GPU numbers separated by commas, e.g. --devices 0,1")
    return [int(d) for d in numbers]


def sweep_progress(parallel: int | None):
    """The sweep's progress, its estimates from what this machine measured in the output root."""
    from runner.cpu import usable_cores
    from runner.store.layout import output_root
    from runner.sweep.estimate import MachineTimings
    from runner.sweep.progress import SweepProgress

    return SweepProgress(parallel or usable_cores(), MachineTimings.measured_in(output_root()))


def progress_table(progress, width: int) -> Table:
    """One line a run in `width` columns: the short columns keep their text, the name and the
    progress cell share what is left and are cut short with … (never wrapped onto more lines), so a
    sweep of many runs still fits the screen and its plan line stays on it."""
    headers = ("run", "name", "status", "epoch", "elapsed", "left", "progress")
    rows = progress.rows()
    fits = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    borders = 3 * len(headers) + 1  # a bar and a space either side of each cell
    room = max(0, width - borders - sum(fits[i] for i in (0, 2, 3, 4, 5)))
    name = min(fits[1], max(10, room - min(fits[6], 60)))  # the progress cell first: it is what changes
    cut = {1: name, 6: max(10, room - name)}
    t = Table(caption=progress.sweep_times(), caption_justify="left")
    for i, header in enumerate(headers):
        t.add_column(header, no_wrap=True, overflow="ellipsis", min_width=cut.get(i, fits[i]),
                     max_width=cut.get(i, fits[i]))
    for row in rows:
        t.add_row(*row)
    return t


def print_plan(planned, parallel: int | None) -> None:

    progress = sweep_progress(parallel)
    summary = progress.on_event("plan", planned=planned)
    t = Table("run id", "model", "dataset", "size", "epochs", "status", "action", "est. min", "from")
    for p in planned:
        c = p.spec.config
        cost = progress.runs[p.spec.run_id].cost if p.to_do else None
        t.add_row(p.spec.run_id, c["model"], c["dataset"], str(c["image_size"]), str(c["epochs"]), p.status,
                  p.action, "" if not p.to_do else ("?" if cost is None else f"{cost.seconds / 60:.1f}"),
                  "" if cost is None else cost.source)
    out.print(t)
    out.print(summary)


# ---- report / board / predict ------------------------------------------------------------------

def default_output_dir(output_dir: Optional[Path]) -> Path:
    from runner.store.layout import output_root

    if output_dir:
        return output_dir
    sweeps = sorted((p.parent for p in output_root().glob("*/runs.sqlite")), key=lambda p: p.stat().st_mtime)
    if not sweeps:
        raise RunnerError(f"no sweep found under {output_root()}; give OUTPUT_DIR or run `runner sweep` first")
    return sweeps[-1]


class ReportFormat(str, Enum):
    md = "md"
    csv = "csv"
    json = "json"


@app.command()
def report(output_dirs: Optional[List[Path]] = typer.Argument(
               None, help="outputs/<name> (default: the newest sweep); several sweeps make one table"),
           fmt: Optional[ReportFormat] = typer.Option(None, "--format", help="md, csv or json (default: md; on "
                                                      "a terminal, a compact table led by a verdict)"),
           ensemble: bool = typer.Option(False, "--ensemble", help="Add a row per model group that averages its "
                                                                    "seeds' validation probabilities"),
           targets: Optional[str] = typer.Option(None, "--targets", help="Validation accuracies to time each run "
                                                 "to, e.g. 0.9,0.95 (default: each run's accuracy_targets, else "
                                                 "the dataset's)")):
    """The comparison table of a sweep, or of several side by side."""
    from runner.config import parse_targets
    from runner.report.comparison import compare_folders
    from runner.report.tables import render
    from runner.report.terminal import compact_report

    on_terminal = sys.stdout.isatty()
    # `--format md` on a terminal is the markdown; ensembles have their table there only
    compact = on_terminal and fmt is None and not ensemble
    fmt = (fmt or ReportFormat.md).value
    comparison = compare_folders(output_dirs or [default_output_dir(None)], parse_targets(targets) if targets else None)
    print(compact_report(comparison) if compact else render(comparison, fmt, ensemble))
    if not on_terminal or fmt == "csv":  # else the text on the screen already lists them: said once
        for note in comparison.warnings:
            err.print(f"warning: {note}")
        for note in comparison.skipped:
            err.print(f"skipped {note}")
        for note in comparison.shown_once:
            err.print(note)
    if comparison.skipped or comparison.warnings:  # the table is incomplete: say so to scripts too
        raise typer.Exit(1)


@app.command()
def robustness(output_dir: Optional[Path] = typer.Argument(None, help="outputs/<name> (default: the newest sweep)"),
               jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, max=1024, help="CPU cores to keep "
                                                  "busy (default: all); a run takes its threads of them"),
               corruptions: Optional[List[str]] = typer.Option(None, "--corruption", help="Only this corruption "
                                                               "(repeat the option; default: each run's robustness "
                                                               "table, else all 15)"),
               severities: Optional[List[int]] = typer.Option(None, "--severity", min=0, max=5, help="Only this "
                                                              "severity, 0 (unchanged) to 5 (repeat the option)"),
               data_root: Optional[Path] = DataRootOption):
    """Score a sweep's finished runs on corrupted validation images (ImageNet-C's 15 corruptions x 5
    severities); resumes where it stopped. Needs pip install -e '.[robustness]'."""
    from runner.sweep.robustness import run_robustness

    folder = default_output_dir(output_dir)
    stop_cleanly_on_signals()
    scored, failures, notes = run_robustness(folder, jobs, data_root, print_robustness_event, corruptions or (),
                                             severities or ())
    for note in notes:
        err.print(f"note: {note}")
    out.print(f"{len(scored) - len(failures)} run(s) scored, {len(failures)} failed; table: {folder / 'results.md'}")
    for run_id, error in failures:
        err.print(f"failed {run_id}: {error}")
    if failures:
        raise typer.Exit(1)


def print_robustness_event(kind: str, **d) -> None:
    if kind == "robustness":
        print(f"robustness {d['run_id']}: {d['message']}", flush=True)


@app.command()
def board(output_dir: Optional[Path] = typer.Argument(None, help="outputs/<name> (default: the newest sweep)"),
          port: int = typer.Option(8040, "--port", min=0, max=65535, help="Port to serve on; 0 takes a free one"),
          compare: Optional[List[Path]] = typer.Option(None, "--compare", help="Another sweep to show beside it")):
    """Start VisualDL over a sweep's logs and print the URL; Ctrl-C stops it."""
    from runner.board import start_board, stop_board

    dirs = [default_output_dir(output_dir), *(compare or [])]
    stop_cleanly_on_signals()
    proc, url = start_board(dirs, port)
    try:  # from here on, Ctrl-C at any moment (even while the URL is printed) stops the server cleanly
        out.print(f"VisualDL: {url}  (logs: {', '.join(str(d / 'vdl') for d in dirs)}; Ctrl-C to stop)")
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_board(proc)
        out.print("VisualDL stopped")


@app.command()
def predict(checkpoint: Path = typer.Argument(..., help="outputs/<name>/checkpoints/<run-id> or a .pdparams file"),
            images: List[Path] = typer.Argument(..., help="Image files")):
    """Class probabilities for new images."""
    from runner.predict import predict as run_predict

    failed = False
    for r in run_predict(checkpoint, images):
        if "error" in r:
            failed = True
            err.print(f"{r['image']}: error: {r['error']}", highlight=False)
            continue
        probs = "  ".join(f"{k}: {v:.4f}" for k, v in r["probabilities"].items())
        note = f"  ({r['note']})" if r["note"] else ""
        out.print(f"{r['image']}: {r['class']}   {probs}{note}", highlight=False)
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    main()

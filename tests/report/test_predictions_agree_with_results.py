"""A finished run's predictions.npz must agree with its result.json before any number is computed
from it (runner/store/runfiles.py: checked_predictions). A file edited, cut short, replaced by another
run's or missing leaves the run in the table with its result.json's numbers, every number that needs
its predictions (interval, McNemar, DeLong, calibration, ensemble) left out with the reason, and one
line naming the run, the file and the fix; never a traceback, never an interval of other numbers.
Before: the interval and the paired tests of the edited file beside result.json's accuracy, and the
sweep's report ended in matplotlib's "'yerr' must not contain negative values"."""
import html
import json
import shutil

import numpy as np
import pytest

from conftest import cli, first_table, tiny_experiment

RUNS = '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "lenet"\nseed = 1\n'
LEFT_OUT = ("acc_ci_low", "acc_ci_high", "ece", "brier", "auc_ci_low", "auc_ci_high", "mcnemar_p", "delong_p",
            "sensitivity_at_95_specificity", "specificity_at_95_sensitivity")


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"bare {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A two-run sweep, trained once, and its JSON report; each test damages a copy."""
    root = tmp_path_factory.mktemp("agree")
    experiment = tiny_experiment(root, RUNS, epochs=1)
    cli("sweep", experiment, env={"RUNNER_OUTPUT_ROOT": str(root / "outputs")}, check=True)
    report = strict_json(cli("report", root / "outputs" / "tiny", "--format", "json", check=True).stdout)
    return root / "outputs", experiment, report


def copy_of(finished, tmp_path):
    outputs, experiment, report = finished
    shutil.copytree(outputs, tmp_path / "outputs")
    best, other = report["runs"]  # best first: its damage reaches every paired test
    return tmp_path / "outputs", experiment, best, other


def arrays_of(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def wrong_everywhere(a, _):
    a["final"] = np.eye(2, dtype=np.float32)[1 - a["labels"]]  # probabilities, each image's wrong class
    return a


def columns_swapped(a, _):
    a["final"] = a["final"][:, ::-1].copy()
    return a


def negated(a, _):
    a["final"] = -a["final"]
    return a


def fewer_rows(a, _):
    return {k: v[:20] for k, v in a.items()}


def labels_changed(a, _):
    a["labels"] = 1 - a["labels"]
    return a


def one_class_only(a, _):
    a["final"] = a["final"][:, :1].copy()
    return a


def without(key):
    def damage(a, _):
        del a[key]
        return a
    return damage


def other_runs(_, other_file):
    return arrays_of(other_file)


def shuffled_within_labels(a, _):
    """Images of one label swap their rows: every count, accuracy, AUC and confusion matrix stays."""
    final = a["final"].copy()
    for label in np.unique(a["labels"]):
        rows = np.flatnonzero(a["labels"] == label)
        final[rows] = final[np.roll(rows, 1)]
    assert not np.array_equal(final, a["final"])
    a["final"] = final
    return a


def objects(a, _):
    a["final"] = np.array([{"final": 1}] * len(a["labels"]), dtype=object)
    return a


# (how the file is damaged: a function of its arrays and the other run's file, or bytes to write, or
# None to delete it; what the one line says)
DAMAGE = {
    "every image wrong": (wrong_everywhere, "predictions.npz disagrees with result.json: its final probabilities "
                                            "give an accuracy of 0.00 %, result.json"),
    "columns swapped": (columns_swapped, "predictions.npz disagrees with result.json: its final probabilities give"),
    "negated": (negated, "predictions.npz's 'final' are not probabilities (each row in [0, 1], summing to 1) for 32 "
                         "of 32 images"),
    "another run's file": (other_runs, "predictions.npz disagrees with result.json"),
    "fewer rows": (fewer_rows, "predictions.npz holds final probabilities for 20 images, result.json 32 validation "
                               "images"),
    "labels changed": (labels_changed, "predictions.npz's labels are not the validation labels its data fingerprint "
                                       "in result.json records"),
    "one column": (one_class_only, "predictions.npz's 'final' is not a table of probabilities for 2 classes "
                                   "(shape (32, 1), dtype float32)"),
    "no labels": (without("labels"), "predictions.npz has no 'labels' array"),
    "no final": (without("final"), "predictions.npz has no 'final' array"),
    "shuffled within labels": (shuffled_within_labels, "predictions.npz's final probabilities are not the ones the "
                                                         "run recorded (their digest differs from result.json's "
                                                         "predictions_digest)"),
    "objects": (objects, "predictions.npz holds objects, not arrays of numbers"),
    "not an npz": (b"these are not the predictions\n", "predictions.npz is not an .npz archive of arrays"),
    "cut short": (lambda raw: raw[: len(raw) // 2], "predictions.npz is not a readable .npz archive (BadZipFile"),
    "missing": (None, "predictions.npz is missing"),
}


def damage(path, how, other_file):
    if how is None:
        path.unlink()
    elif isinstance(how, bytes):
        path.write_bytes(how)
    elif how.__name__ == "<lambda>":  # of the file's bytes
        path.write_bytes(how(path.read_bytes()))
    else:
        arrays = how(arrays_of(path), other_file)
        np.savez(path, **arrays)


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("case", list(DAMAGE))
def test_predictions_that_disagree_with_the_result_leave_the_run_shown_without_their_numbers(finished, tmp_path,
                                                                                              case):
    outputs, experiment, best, other = copy_of(finished, tmp_path)
    sweep = outputs / "tiny"
    predictions = sweep / "runs" / best["run_id"] / "predictions.npz"
    how, said = DAMAGE[case]
    damage(predictions, how, sweep / "runs" / other["run_id"] / "predictions.npz")

    proc = cli("report", sweep, "--format", "json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr  # the table is incomplete: scripts are told
    (line,) = warnings_in(proc.stderr)
    for piece in (best["run_id"], said, f"({predictions})", "so the report leaves out its interval",
                  f"runner sweep {experiment} --retrain-stale", "Restore the run's own predictions.npz"):
        assert piece in line, (piece, line)
    report = strict_json(proc.stdout)
    shown = {r["run_id"]: r for r in report["runs"]}
    assert list(shown) == [best["run_id"], other["run_id"]] and report["skipped"] == []
    damaged = shown[best["run_id"]]
    assert said in damaged["predictions_problem"] and said in damaged["paired_note"]
    # result.json's own numbers stay; every number of the predictions is left out
    assert {k: damaged[k] for k in ("final_acc", "auc", "best_acc")} == {k: best[k] for k in ("final_acc", "auc",
                                                                                                 "best_acc")}
    assert all(damaged[k] is None for k in LEFT_OUT), {k: damaged[k] for k in LEFT_OUT}
    # the other run keeps its interval, but has no "best" to be tested against: never the second best
    assert shown[other["run_id"]]["acc_ci_low"] == other["acc_ci_low"] and shown[other["run_id"]]["mcnemar_p"] is None
    assert shown[other["run_id"]]["paired_note"].startswith(f"the best run on its validation images, {best['run_id']}, "
                                                            "has no usable predictions")
    assert strict_json(cli("report", sweep, "--format", "json", "--ensemble").stdout)["ensembles"][0]["reason"] \
        .startswith(f"{best['run_id']}: {said}")

    table = cli("report", sweep)
    assert table.returncode == 1 and len(warnings_in(table.stderr)) == 1 and "Traceback" not in table.stderr
    rows = first_table(table.stdout)
    assert len(rows) == 2 and f"| — ({said}" in rows[0]

    # the sweep's own report (its figures too) is rewritten, and the sweep names the run once
    again = cli("sweep", experiment, env={"RUNNER_OUTPUT_ROOT": str(outputs)})
    assert again.returncode == 0 and "Traceback" not in again.stdout + again.stderr, again.stderr
    notes = [line for line in again.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and best["run_id"] in notes[0] and said in notes[0], notes
    # report.html is written after the figures (pareto.png among them): before, the sweep ended there
    assert said in (sweep / "results.md").read_text() and html.escape(said) in (sweep / "report.html").read_text()


def test_retrain_stale_trains_a_run_whose_predictions_disagree_afresh_and_keeps_the_old_files(finished, tmp_path):
    # a folder deep enough that the path to predictions.npz is longer than a terminal line
    outputs, experiment, best, _ = copy_of(finished, tmp_path / ("a-long-folder-name-" * 6))
    sweep = outputs / "tiny"
    predictions = sweep / "runs" / best["run_id"] / "predictions.npz"
    assert len(str(predictions)) > 120
    damage(predictions, columns_swapped, None)
    damaged = predictions.read_bytes()
    # on a terminal: the verdict does not call the second run the best, and the warning is whole
    from runner.report.comparison import compare_folders
    from runner.report.terminal import compact_report

    screen = compact_report(compare_folders([sweep])).splitlines()
    assert screen[0].endswith("no run is tested against it: its predictions cannot be used (see the warning below)")
    assert all(len(line) <= 120 or " " not in line.strip() for line in screen)  # but a path too long for a line
    warning = " ".join(line.strip() for line in screen if line.startswith(("warning:", "  ")))
    assert f"({predictions})" in warning and f"runner sweep {experiment} --retrain-stale" in warning, warning
    env = {"RUNNER_OUTPUT_ROOT": str(outputs)}
    # `runner train` would finish it again from those predictions: refused, in one line
    train = cli("train", experiment, "--run", best["run_id"], env=env)
    assert train.returncode == 1 and "Traceback" not in train.stderr
    (error,) = [line for line in train.stderr.splitlines() if line.startswith("error:")]
    assert best["run_id"] in error and "predictions.npz disagrees with result.json" in error and "--retrain-stale" in error
    assert predictions.read_bytes() == damaged
    proc = cli("sweep", experiment, "--retrain-stale", env=env, check=True)
    kept = sweep / "stale" / f"{best['run_id']}-1"
    assert (f"note: {best['run_id']} finished, but predictions.npz disagrees with result.json" in proc.stdout
            and f"training it afresh; its old files are in {kept}" in proc.stdout)
    assert (kept / "run" / "predictions.npz").read_bytes() == damaged  # nothing is lost
    report = cli("report", sweep, "--format", "json")
    assert report.returncode == 0 and not warnings_in(report.stderr), report.stderr
    retrained = next(r for r in strict_json(report.stdout)["runs"] if r["run_id"] == best["run_id"])
    assert retrained["predictions_problem"] is None and retrained["acc_ci_low"] is not None


def test_the_pareto_figure_draws_no_bar_for_an_interval_that_misses_its_score():
    """Any other disagreement that reached the figure would have been a traceback."""
    from runner import plots

    points = [{"group": "a", "latency": 1.0, "latency_slowest": 1.2, "acc": 0.9, "acc_low": 0.2, "acc_high": 0.5,
               "auc": 0.4, "auc_low": 0.6, "auc_high": 0.9},
              {"group": "a", "latency": 2.0, "latency_slowest": None, "acc": 0.5, "acc_low": 0.4, "acc_high": None,
               "auc": None, "auc_low": None, "auc_high": None}]
    plots.figure_to_png(plots.pareto_figure(points, ["a"]))


def test_robustness_names_predictions_that_disagree_rather_than_blaming_the_checkpoint(finished, tmp_path):
    """Robustness checks the final checkpoint against the run's own predictions: an edited file was
    reported as a checkpoint that "is not the network the run scored"."""
    outputs, _, best, other = copy_of(finished, tmp_path)
    sweep = outputs / "tiny"
    damage(sweep / "runs" / best["run_id"] / "predictions.npz", columns_swapped, None)
    proc = cli("robustness", sweep, "--corruption", "brightness", "--severity", "1",
               env={"RUNNER_OUTPUT_ROOT": str(outputs)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (failed,) = [line for line in proc.stderr.splitlines() if line.startswith("failed ")]
    assert failed.startswith(f"failed {best['run_id']}: {best['run_id']}: predictions.npz disagrees with result.json")
    assert "so its final checkpoint cannot be checked against them and its robustness is not measured" in failed
    assert "otherwise than the run did" not in proc.stderr
    assert not (sweep / "runs" / best["run_id"] / "robustness.json").exists()
    assert (sweep / "runs" / other["run_id"] / "robustness.json").exists()  # the rest carries on

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys

from conftest import REPO, TIMINGS, cli, first_table, tiny_experiment, wait_until, wait_until_no_worker
from runner.store.registry import RunRegistry
from runner.config import load_experiment
from runner.sweep.estimate import MachineTimings
from runner.sweep.plan import plan_sweep
from runner.sweep.session import SweepLock

THREE_RUNS = """
[[runs]]
model = "lenet"
[[runs]]
model = "lenet"
seed = 1
[[runs]]
model = "alexnet"
"""


def registry_rows(outputs, name="tiny"):
    registry = RunRegistry(outputs / name / "runs.sqlite", create=False)
    try:
        return {r["id"]: r for r in registry.rows()}
    finally:
        registry.close()


def final_metrics(outputs, name="tiny"):
    return {run_id: row["metrics"]["final"] for run_id, row in registry_rows(outputs, name).items()}


def table_without_timings(outputs, name="tiny"):
    with open(outputs / name / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def test_sweep_table_skip_and_parallel_equivalence(tmp_path, outputs):
    path = tiny_experiment(tmp_path, THREE_RUNS)
    first = cli("sweep", path, "--jobs", "1", check=True)
    assert "3 done" in first.stdout
    rows = registry_rows(outputs)
    assert len(rows) == 3 and all(r["status"] == "done" and r["attempts"] == 1 for r in rows.values())
    table = (outputs / "tiny" / "results.md").read_text()
    assert sum(line.startswith("| lenet-") or line.startswith("| alexnet-") for line in first_table(table)) == 3
    assert (outputs / "tiny" / "val_acc_per_epoch.png").stat().st_size > 1000
    assert len(list((outputs / "tiny" / "vdl").iterdir())) == 3

    # a second invocation trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in (outputs / "tiny" / "runs").glob("*/result.json")}
    again = cli("sweep", path, check=True)
    assert all(r["attempts"] == 1 for r in registry_rows(outputs).values())
    assert "3 done" in again.stdout and "started" not in again.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # two at a time gives the same numbers as one at a time
    jobs1 = final_metrics(outputs)
    cli("sweep", path, "--jobs", "2", check=True, env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "parallel")})
    assert final_metrics(tmp_path / "parallel") == jobs1

    for fmt in ("md", "csv", "json"):
        report = cli("report", outputs / "tiny", "--format", fmt, check=True)
        assert "alexnet" in report.stdout
    assert len(json.loads(cli("report", outputs / "tiny", "--format", "json").stdout)["runs"]) == 3


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_a_fresh_clone_resumes_a_sweep_from_the_run_files_git_keeps(tmp_path, outputs):
    # curves_pm is one of the experiments whose finished runs .gitignore keeps in the repository
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "lenet"\nseed = 1\n',
                           name="curves_pm", epochs=1)
    cli("sweep", path, check=True)
    before = {r["run_id"]: r for r in json.loads(cli("report", outputs / "curves_pm", "--format", "json").stdout)["runs"]}

    # commit the outputs under the repository's .gitignore, then clone: what a fresh machine gets
    repo, clone = tmp_path / "repo", tmp_path / "clone"
    shutil.copytree(outputs, repo / "outputs")
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "runs", cwd=repo)
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    kept = {p.relative_to(clone / "outputs").as_posix() for p in (clone / "outputs").rglob("*") if p.is_file()}
    # (curves_pm keeps no Grad-CAM heat maps: its learning curves need none)
    assert {k.split("/")[-1] for k in kept} == {"result.json", "predictions.npz", "train.log"}, kept
    assert not (clone / "outputs" / "curves_pm" / "runs.sqlite").exists()

    # the clone's report, before any sweep there, has the same numbers, and writes nothing
    env = {"RUNNER_OUTPUT_ROOT": str(clone / "outputs")}
    report = cli("report", clone / "outputs" / "curves_pm", "--format", "json", env=env, check=True)
    assert {r["run_id"]: r for r in json.loads(report.stdout)["runs"]} == before
    assert {p.relative_to(clone / "outputs").as_posix() for p in (clone / "outputs").rglob("*") if p.is_file()} == kept

    # the same command on the clone trains nothing, and its report has the same numbers
    again = cli("sweep", path, env=env, check=True)
    assert "2 done" in again.stdout and "started" not in again.stdout, again.stdout
    after = json.loads(cli("report", clone / "outputs" / "curves_pm", "--format", "json", env=env).stdout)["runs"]
    assert {r["run_id"]: r for r in after} == before

    # a run added to the file is the only one trained
    path.write_text(path.read_text() + '[[runs]]\nmodel = "lenet"\nseed = 2\n')
    third = cli("sweep", path, env=env, check=True)
    assert third.stdout.count("started ") == 1 and "3 done" in third.stdout, third.stdout


def test_sweep_killed_mid_run_resumes_without_retraining_finished_runs(tmp_path, outputs):
    # the second run (alexnet at 64x64) is slow enough to be caught mid-training
    runs = '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "alexnet"\nimage_size = 64\n[[runs]]\nmodel = "lenet"\nseed = 1\n'
    path = tiny_experiment(tmp_path, runs, epochs=4)
    cli("sweep", path, "--jobs", "1", check=True, env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "reference")})

    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)}
    proc = subprocess.Popen([sys.executable, "-m", "runner", "sweep", str(path), "--jobs", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = outputs / "tiny" / "checkpoints"
    # wait until the second run has a finished epoch, then kill the whole sweep at once
    wait_until(lambda: len([d for d in checkpoints.glob("*") if list(d.glob("epoch-*"))]) >= 2,
               "the second run's first epoch", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_until_no_worker(outputs)  # its worker dies with it (PR_SET_PDEATHSIG)
    before = {k: v["status"] for k, v in registry_rows(outputs).items()}
    assert list(before.values()).count("done") == 1, before
    finished_id = next(k for k, v in before.items() if v == "done")
    result_file = outputs / "tiny" / "runs" / finished_id / "result.json"
    stamp = result_file.stat().st_mtime_ns

    # the plan resumes the killed run from its newest checkpoint and estimates only the epochs left
    plan = {p.spec.run_id: p for p in plan_sweep(load_experiment(path), None)}
    killed = next(p for p in plan.values() if p.spec.config["model"] == "alexnet")
    assert killed.action == "resume" and 1 <= killed.epochs_done < 4
    assert (outputs / "tiny" / "checkpoints" / killed.spec.run_id / f"epoch-{killed.epochs_done:04d}").is_dir()
    assert MachineTimings().cost(killed.spec.config, killed.epochs_done).epochs == 4 - killed.epochs_done
    assert plan[finished_id].action == "skip"

    cli("sweep", path, "--jobs", "1", check=True)
    after = registry_rows(outputs)
    assert all(r["status"] == "done" for r in after.values())
    assert after[finished_id]["attempts"] == 1 and result_file.stat().st_mtime_ns == stamp
    assert table_without_timings(outputs) == table_without_timings(tmp_path / "reference")


def test_unknown_model_is_rejected_before_anything_trains(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "resnet5O"\n')
    proc = cli("sweep", path)
    assert proc.returncode == 1
    assert "runs[1]" in proc.stderr and "resnet5O" in proc.stderr and "resnet50" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (outputs / "tiny").exists()


def test_failing_run_is_recorded_and_the_others_finish(tmp_path, outputs):
    runs = THREE_RUNS + '[[runs]]\nmodel = "alexnet"\nlabel = "diverges"\n' \
                        'optimizer = { name = "momentum", learning_rate = 1e6, momentum = 0.9 }\n'
    path = tiny_experiment(tmp_path, runs, epochs=1)
    proc = cli("sweep", path, "--jobs", "2")
    assert proc.returncode == 1
    rows = registry_rows(outputs)
    statuses = sorted(r["status"] for r in rows.values())
    assert statuses == ["done", "done", "done", "failed"]
    failed = next(r for r in rows.values() if r["status"] == "failed")
    assert "loss is nan at epoch 1" in failed["error"] and "loss is nan" in proc.stderr
    # failed runs are held, not retried, unless asked
    cli("sweep", path)
    assert registry_rows(outputs)[failed["id"]]["attempts"] == 1
    cli("sweep", path, "--retry-failed")
    assert registry_rows(outputs)[failed["id"]]["attempts"] == 2


def test_second_sweep_on_the_same_folder_refuses(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n')
    with SweepLock(outputs / "tiny" / ".sweep.lock"):
        proc = cli("sweep", path)
    assert proc.returncode == 1 and "another sweep is already running" in proc.stderr
    assert not (outputs / "tiny" / "runs.sqlite").exists()


def test_dry_run_prints_plan_and_trains_nothing(tmp_path, outputs):
    path = tiny_experiment(tmp_path, THREE_RUNS, extra="[grid]\nseed = [0, 1]\n")
    proc = cli("sweep", path, "--dry-run", check=True)
    assert proc.stdout.count("lenet-s") == 2 and proc.stdout.count("alexnet-s") == 2  # (lenet, seed 1) collapses
    assert not (outputs / "tiny").exists()


def test_scheduler_packs_runs_by_the_cores_they_use():
    from types import SimpleNamespace

    from runner.sweep.executors.local import next_to_start

    def run(threads=1, nproc=1):
        return SimpleNamespace(spec=SimpleNamespace(config={"threads": threads, "nproc": nproc}))

    wide, narrow = run(threads=2), run()
    assert next_to_start([wide, narrow], free_slots=2, idle=True, on_gpus=False) == 0
    assert next_to_start([wide, narrow], free_slots=1, idle=False, on_gpus=False) == 1  # backfills a free core
    assert next_to_start([wide, run(nproc=2)], free_slots=1, idle=False, on_gpus=False) is None
    assert next_to_start([run(threads=2, nproc=2)], free_slots=2, idle=True, on_gpus=False) == 0  # too wide: alone
    assert next_to_start([wide], free_slots=1, idle=False, on_gpus=True) == 0  # a GPU run takes one GPU


def test_sweep_never_runs_more_threads_than_cores(tmp_path, outputs):
    path = tiny_experiment(tmp_path, """
        [[runs]]
        model = "lenet"
        threads = 2
        [[runs]]
        model = "lenet"
        seed = 1
        [[runs]]
        model = "lenet"
        seed = 2
    """)
    cli("sweep", path, "--jobs", "2", check=True)
    rows = sorted(registry_rows(outputs).values(), key=lambda r: r["position"])
    wide, first, second = [(r["started_at"], r["finished_at"]) for r in rows]
    assert first[0] >= wide[1] and second[0] >= wide[1]  # the 2-thread run had both cores to itself
    assert first[0] < second[1] and second[0] < first[1]  # the two 1-thread runs shared them


def test_report_over_two_sweeps_tests_every_run_against_the_overall_best(tmp_path, outputs):
    one = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', name="first")
    two = tiny_experiment(tmp_path, '[[runs]]\nmodel = "alexnet"\n[[runs]]\nmodel = "lenet"\nseed = 1\n', name="second")
    cli("sweep", one, check=True)
    cli("sweep", two, check=True)
    rows = json.loads(cli("report", outputs / "first", outputs / "second", "--format", "json", check=True).stdout)["runs"]
    assert len(rows) == 3 and {r["dataset"] for r in rows} == {"ichallenge-pm"}
    assert rows[0]["is_best"] and rows[0]["mcnemar_p"] is None
    assert all(not r["is_best"] and 0.0 <= r["mcnemar_p"] <= 1.0 for r in rows[1:])
    table = cli("report", outputs / "first", outputs / "second", check=True).stdout
    marks = [line.split("|")[-2].strip() for line in table.splitlines()[2:5]]
    assert marks[0] == "— (best)" and all(re.fullmatch(r"(yes|no), (p=[0-9.e+-]+|p<0\.0001)", m) for m in marks[1:])
    alone = json.loads(cli("report", outputs / "first", "--format", "json", check=True).stdout)["runs"]
    assert len(alone) == 1 and alone[0]["is_best"]

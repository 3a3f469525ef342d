"""The Ray executor on a real multi-node Ray cluster on this machine, inside a network namespace with
only the loopback interface (tests/sweep/cluster_scenarios.py). Each scenario's metrics are compared with
the local executor's on the same experiment: the executor must not change what is trained."""
import json
import os
import subprocess
import sys

import pytest

from conftest import HANG_SECONDS, REPO, cli, tiny_experiment
from runner.store.registry import RunRegistry

pytestmark = pytest.mark.slow

FOUR_RUNS = '[[runs]]\nmodel = "lenet"\n[grid]\nseed = [0, 1, 2, 3]\n'
LONGER = "train_limit = 160\n"  # in a run: epochs of a second or so, long enough to act while it trains


def in_namespace(scenario: str, experiment, outputs, timeout: float = 4 * HANG_SECONDS) -> dict:
    """A scenario of tests/cluster_scenarios.py; it waits for what it needs, each wait bounded by
    HANG_SECONDS, so `timeout` bounds a hang of several of them."""
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)}
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", sys.executable,
                           str(REPO / "tests" / "sweep" / "cluster_scenarios.py"), scenario, str(experiment), str(outputs)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"scenario {scenario} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])


def finals(outputs, name) -> dict:
    registry = RunRegistry(outputs / name / "runs.sqlite", create=False)
    try:
        return {r["id"]: (r["status"], r["metrics"]["final"] if r["metrics"] else None) for r in registry.rows()}
    finally:
        registry.close()


def results(outputs, name) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in (outputs / name / "runs").glob("*/result.json")}


def local_reference(tmp_path, experiment, name):
    local = tmp_path / "local"
    cli("sweep", experiment, "--jobs", "1", env={"RUNNER_OUTPUT_ROOT": str(local)}, check=True)
    return finals(local, name)


def test_four_runs_spread_over_both_nodes_with_the_local_metrics(tmp_path):
    experiment = tiny_experiment(tmp_path, FOUR_RUNS, name="spread")
    reference = local_reference(tmp_path, experiment, "spread")
    outputs = tmp_path / "cluster"
    outcome = in_namespace("sweep", experiment, outputs)
    assert outcome["code"] == 0, outcome["log"]
    assert finals(outputs, "spread") == reference  # bit for bit: the same floats
    ran_on = {run_id: (r["host"], r["node"]) for run_id, r in results(outputs, "spread").items()}
    assert len(ran_on) == 4 and len({node for _, node in ran_on.values()}) == 2
    assert {node for _, node in ran_on.values()} <= set(outcome["node_ids"])
    table = cli("report", outputs / "spread", check=True).stdout
    assert "ran on" in table and "node " in table


def test_a_run_whose_node_dies_finishes_on_the_other_node_from_its_checkpoint(tmp_path):
    experiment = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n' + LONGER, name="nodeloss", epochs=6)
    reference = local_reference(tmp_path, experiment, "nodeloss")
    outputs = tmp_path / "cluster"
    outcome = in_namespace("remove_node", experiment, outputs)
    assert outcome["code"] == 0, outcome["log"]
    assert finals(outputs, "nodeloss") == reference
    (run_id, result), = results(outputs, "nodeloss").items()
    assert result["node"] == outcome["survivor"] != outcome["removed"]
    starts = [json.loads(line.split(" ", 1)[1]) for line in
              (outputs / "nodeloss" / "runs" / run_id / "train.log").read_text().splitlines() if line.startswith("start ")]
    # the first worker started afresh; Ray's rerun resumed after the epochs already checkpointed
    assert len(starts) == 2 and starts[0]["resumed_at"] == 0 and starts[1]["resumed_at"] >= 1


def test_kill_9_of_the_driver_ends_its_workers_and_the_rerun_completes(tmp_path):
    experiment = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n' + LONGER + '[grid]\nseed = [0, 1]\n',
                                 name="driverkill", epochs=5)
    reference = local_reference(tmp_path, experiment, "driverkill")
    outputs = tmp_path / "cluster"
    outcome = in_namespace("kill_driver", experiment, outputs)
    assert outcome["training_at_kill"] >= 1
    assert outcome["orphans"] is None, f"workers still running long after the driver died: {outcome}"
    assert outcome["code"] == 0, outcome["log"]
    assert finals(outputs, "driverkill") == reference


def test_cluster_without_ray_names_the_install_command(tmp_path, outputs):
    experiment = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n')
    blocker = tmp_path / "no_ray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('No module named ray')\n")
    proc = cli("sweep", experiment, "--cluster", "auto", env={"PYTHONPATH": str(blocker)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: --cluster needs Ray, which is not installed: pip install -e '.[cluster]'"


def test_cluster_address_with_nothing_there_is_one_line(tmp_path, outputs):
    experiment = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n')
    proc = cli("sweep", experiment, "--cluster", "127.0.0.1:1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot join the Ray cluster at '127.0.0.1:1'" in proc.stderr

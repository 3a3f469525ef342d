"""Numbers: evaluations that are not finite fail the run, nothing non-finite reaches a table or the
JSON, every integer key is bounded before anything trains, numbers in strings are ASCII digits, and
an output folder may be a link to another disk."""
import copy
import json
import math
import pickle

import numpy as np
import pytest

from conftest import cli, tiny_experiment
from runner.config import RUN_FIELDS, TABLE_FIELDS, out_of_bounds, resolve, set_dotted
from runner.models import build_network
from runner.store.registry import RunRegistry
from test_nothing_silently_wrong import one_line_error

ONE = '[[runs]]\nmodel = "lenet"\n'
HUGE = 123456789012345678901  # 21 digits
MOBILENET = "paddle.vision/mobilenet_v3_small"


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as every JSON parser but Python's does."""
    def refuse(constant):
        raise ValueError(f"bare {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


# ---- evaluations that are not finite ------------------------------------------------------------------

# The last batch norm of MobileNetV3 feeds a hardswish, which passes NaN on (a ReLU turns it into 0).
@pytest.mark.parametrize("tensor, value, engine", [
    ("lastconv.1._mean", math.nan, "inference"),
    ("lastconv.1._mean", math.inf, "dygraph"),
    ("lastconv.1._variance", math.nan, "dygraph"),
])
def test_validation_outputs_that_are_not_finite_fail_the_run_naming_the_epoch(tmp_path, outputs, tensor, value,
                                                                              engine):
    """Batch norm's running statistics poisoned: every training loss stays finite (training uses each
    batch's own statistics), but evaluation, which uses the running ones, gives NaN. Before, the run
    was `done` with the share of class 0 as its accuracy."""
    state = {k: v.numpy() for k, v in build_network(MOBILENET, 2, 32).state_dict().items()}
    state[tensor][:] = value
    weights = tmp_path / "poisoned.pdparams"
    weights.write_bytes(pickle.dumps(state))
    experiment = tiny_experiment(tmp_path, f'[[runs]]\nmodel = "{MOBILENET}"\nweights = "{weights}"\n'
                                           f'eval_engine = "{engine}"\n', epochs=2)
    proc = cli("train", experiment)
    one_line_error(proc, "validation images are not finite (NaN or inf) at epoch 1", "lower the learning rate")
    assert "epoch 1/2" not in proc.stdout  # the epoch was not recorded
    (row,) = RunRegistry(outputs / "tiny" / "runs.sqlite", create=False).rows()
    assert row["status"] == "failed" and "at epoch 1" in row["error"]
    assert not list(outputs.glob("tiny/runs/*/result.json"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch LeNet run, copied by each test that damages it."""
    root = tmp_path_factory.mktemp("finished")
    experiment = tiny_experiment(root, ONE, epochs=1)
    cli("train", experiment, env={"RUNNER_OUTPUT_ROOT": str(root / "outputs")}, check=True)
    return root / "outputs" / "tiny"


def copy_of(finished, tmp_path):
    import shutil

    target = tmp_path / "outputs" / "tiny"
    shutil.copytree(finished, target)
    (result,) = target.glob("runs/*/result.json")
    return target, result


@pytest.mark.parametrize("damage, shown_as_none", [
    ({"final": {"acc": math.nan, "auc": math.nan}}, ["final_acc", "auc"]),
    # the accuracy as recorded: another would disagree with predictions.npz (tests/report/test_predictions_agree_…)
    ({"final": {"auc": math.inf}, "train_seconds": math.nan}, ["auc", "train_seconds"]),
    ({"best": {"acc": -math.inf}, "images_per_second": math.inf, "peak_memory_mb": math.nan},
     ["best_acc", "images_per_second", "peak_memory_mb"]),
])
def test_non_finite_numbers_written_by_older_runners_never_reach_a_table(finished, tmp_path, damage, shown_as_none):
    folder, result = copy_of(finished, tmp_path)
    data = json.loads(result.read_text())
    for key, value in damage.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    result.write_text(json.dumps(data))  # Python writes NaN and Infinity bare, as older runners did
    (run,) = strict_json(cli("report", folder, "--format", "json", check=True).stdout)["runs"]
    assert all(run[field] is None for field in shown_as_none), {f: run[f] for f in shown_as_none}
    table = cli("report", folder, check=True).stdout
    csv = cli("report", folder, "--format", "csv", check=True).stdout
    for text in (table, csv):
        assert not any(word in text.lower() for word in ("nan", "inf%", " inf ", ",inf")), text


def test_a_run_whose_recorded_outputs_are_not_finite_is_named_not_shown(finished, tmp_path):
    """Predictions of NaN, as a runner that did not check its evaluations recorded them: argmax
    makes them class 0, so the run's accuracy was the share of class 0."""
    folder, result = copy_of(finished, tmp_path)
    predictions = result.parent / "predictions.npz"
    with np.load(predictions) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["final"][3:] = np.nan
    np.savez(predictions, **arrays)
    for fmt in ("md", "json"):
        proc = cli("report", folder, "--format", fmt)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "not shown, its final validation outputs are not finite for" in proc.stderr
    assert strict_json(cli("report", folder, "--format", "json").stdout)["runs"] == []


# ---- every integer key is bounded ----------------------------------------------------------------------

def integer_keys() -> list[str]:
    keys = [k for k, (types, _) in RUN_FIELDS.items() if types == (int,)]
    keys += [f"{table}.{k}" for table, fields in TABLE_FIELDS.items() for k, t in fields.items() if t == (int,)]
    return keys


def test_every_whole_number_of_a_run_is_bounded():
    """Every integer key, those added later and model_args too: each refused at 2^31 and at 2^63."""
    base = resolve({"model": "lenet"}, [], [], "exp.toml", "runs[0]")
    for key in integer_keys() + ["model_args.depth"]:
        for value in (2 ** 31, 2 ** 63, -2 ** 63):
            config = copy.deepcopy(base)
            set_dotted(config, key, value)
            assert out_of_bounds(config) and key in out_of_bounds(config), (key, value)


SET_BEFORE = {"scheduler.step_size": ["scheduler.name=step"], "scheduler.warmup_epochs": [],
              "augment.pad_crop": ["augment=true"], "early_stopping.patience": ["early_stopping=true"]}


@pytest.mark.parametrize("key", integer_keys())
@pytest.mark.parametrize("value", [HUGE, -HUGE])
def test_a_21_digit_integer_for_any_key_is_one_line_before_anything_trains(tmp_path, outputs, key, value):
    experiment = tiny_experiment(tmp_path, ONE)
    sets = [x for s in SET_BEFORE.get(key, []) + [f"{key}={value}"] for x in ("--set", s)]
    proc = cli("sweep", experiment, "--dry-run", *sets)
    one_line_error(proc, f"{key} = {value}", code=2)  # a --set the runner cannot take is a usage error
    in_file = tiny_experiment(tmp_path, f"{ONE}{key} = {value}\n")  # a dotted key makes the table
    one_line_error(cli("sweep", in_file, "--dry-run"), f"{key} = {value}")
    assert not outputs.exists() or not list(outputs.glob("*/runs/*"))


# ---- numbers in strings: ASCII digits only ------------------------------------------------------------

@pytest.mark.parametrize("setting, expected", [
    ("validation=kfold:５", "validation = 'kfold:５': expected"),
    ("validation=kfold:²", "validation = 'kfold:²': expected"),  # str.isdigit, then int() failed: a traceback
    ("validation=kfold:1_0", "validation = 'kfold:1_0': expected"),
    ("validation=holdout:０.２", "validation = 'holdout:０.２': expected"),
    ("validation=holdout:0.2_5", "validation = 'holdout:0.2_5': expected"),
    ("validation='holdout: 0.2'", "validation = 'holdout: 0.2': expected"),
    ("validation=holdout:٠.٢", "validation = 'holdout:٠.٢': expected"),  # Arabic-Indic digits
    ("device=gpu:１", "device = 'gpu:１'; use"),
    ("device=gpu:٣", "device = 'gpu:٣'; use"),
])
def test_numbers_inside_strings_take_ascii_digits_only(tmp_path, outputs, setting, expected):
    experiment = tiny_experiment(tmp_path, ONE)
    one_line_error(cli("sweep", experiment, "--dry-run", "--set", setting), expected, code=2)


@pytest.mark.parametrize("setting", ["validation=kfold:5", "validation=holdout:0.25", "validation=holdout:.2"])
def test_ascii_numbers_inside_strings_still_read(tmp_path, outputs, setting):
    experiment = tiny_experiment(tmp_path, ONE)
    assert cli("sweep", experiment, "--dry-run", "--set", setting).returncode == 0


@pytest.mark.parametrize("devices", ["１", "0,１", "-1", "1_0", ","])
def test_devices_take_ascii_gpu_numbers_only(tmp_path, outputs, devices):
    experiment = tiny_experiment(tmp_path, ONE)
    one_line_error(cli("sweep", experiment, "--dry-run", "--devices", devices), f"--devices {devices!r}: give GPU numbers",
                   code=2)


# ---- an output folder that is a link ------------------------------------------------------------------

def test_an_output_folder_that_links_to_another_disk_is_used(tmp_path, outputs):
    """outputs/<name> moved to another disk and linked back. Before: `name = 'tiny' does not name a
    folder inside the output root`."""
    elsewhere = tmp_path / "other-disk" / "tiny"
    elsewhere.mkdir(parents=True)
    outputs.mkdir()
    (outputs / "tiny").symlink_to(elsewhere)
    experiment = tiny_experiment(tmp_path, ONE, epochs=1)
    assert cli("sweep", experiment, "--dry-run").returncode == 0
    cli("train", experiment, check=True)
    assert list(elsewhere.glob("runs/*/result.json")) and (elsewhere / "runs.sqlite").exists()
    assert "lenet-s0" in cli("report", outputs / "tiny", check=True).stdout


def test_an_output_root_that_is_a_link_is_used(tmp_path, monkeypatch):
    (tmp_path / "big-disk").mkdir()
    (tmp_path / "outputs").symlink_to(tmp_path / "big-disk")
    monkeypatch.setenv("RUNNER_OUTPUT_ROOT", str(tmp_path / "outputs"))
    experiment = tiny_experiment(tmp_path, ONE)
    assert cli("sweep", experiment, "--dry-run").returncode == 0


@pytest.mark.parametrize("what", ["dangling link", "file"])
def test_an_output_folder_that_cannot_be_one_is_refused_with_the_true_reason(tmp_path, outputs, what):
    outputs.mkdir()
    if what == "file":
        (outputs / "tiny").write_text("not a folder")
        expected = f"{outputs / 'tiny'} is a file, not a folder"
    else:
        (outputs / "tiny").symlink_to(tmp_path / "unmounted" / "tiny")
        expected = f"{outputs / 'tiny'} is a link to {tmp_path / 'unmounted' / 'tiny'}, which does not exist"
    proc = cli("train", tiny_experiment(tmp_path, ONE, epochs=1))
    one_line_error(proc, expected)
    assert "does not name a folder" not in proc.stderr

"""A search's study matches its file: a rerun whose [search] changed what it searches for (objective,
direction, space, the run searched around) is one line saying what changed, a change of how much or
how it searches carries on, and a damaged or foreign study.sqlite is named and left untouched."""
import hashlib
import shutil
import sqlite3

import optuna
import pytest

from conftest import cli
from runner.store.registry import RunRegistry
from test_nothing_silently_wrong import one_line_error
from test_search import SPACE, search_file

pytestmark = pytest.mark.slow

LR = '"optimizer.learning_rate" = { log = [1e-4, 1e-2] }'


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """outputs/srch of a finished two-trial search (objective auc, the space of test_search.SPACE)."""
    root = tmp_path_factory.mktemp("searched")
    cli("sweep", search_file(root, trials=2, pruner="none"), "--jobs", "2",
        env={"RUNNER_OUTPUT_ROOT": str(root / "outputs")}, check=True)
    return root / "outputs" / "srch"


@pytest.fixture
def copy(searched, tmp_path, outputs):
    shutil.copytree(searched, outputs / "srch")
    return outputs / "srch"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_ids(folder):
    return {r["id"] for r in RunRegistry(folder / "runs.sqlite", create=False).rows()}


def rerun(tmp_path, *sets, objective="auc", sampler="tpe", **changes):
    path = search_file(tmp_path, **{"trials": 2, "pruner": "none", **changes})
    path.write_text(path.read_text().replace('objective = "auc"', f'objective = "{objective}"')
                    .replace('sampler = "tpe"', f'sampler = "{sampler}"'))
    return cli("sweep", path, "--jobs", "2", *sets)


@pytest.mark.parametrize("changes, sets, expected", [
    ({"objective": "loss"}, [], "it searched for objective = 'auc', the file now asks for 'loss'"),
    ({"objective": "acc"}, [], "it searched for objective = 'auc', the file now asks for 'acc'"),
    ({"space": SPACE.replace("1e-2", "1e-1")}, [], 'search.space.optimizer.learning_rate was { log = [0.0001, 0.01] } '
     'and is now { log = [0.0001, 0.1] }'),
    ({"space": SPACE.replace("log = [1e-4", "range = [1e-4")}, [], "search.space.optimizer.learning_rate was "
     "{ log = [0.0001, 0.01] } and is now { range = [0.0001, 0.01] }"),
    ({"space": SPACE.replace("range = [0.0, 0.2]", "choice = [0.0, 0.1]")}, [],
     "search.space.label_smoothing was { range = [0.0, 0.2] } and is now { choice = [0.0, 0.1] }"),
    ({"space": LR}, [], "its space has search.space.label_smoothing = { range = [0.0, 0.2] }, the file's has no "
     "label_smoothing"),
    ({"space": SPACE + "\nbatch_size = { choice = [8, 16] }"}, [],
     "the file's space has search.space.batch_size = { choice = [8, 16] }, its space had none"),
    ({"epochs": 3}, [], "the run it searches around had epochs = 2 and now has epochs = 3"),
    ({}, ["--set", "seed=1"], "the run it searches around had seed = 0 and now has seed = 1"),
    ({"validation": "kfold:3"}, [], "the run it searches around had validation = 'holdout:0.25' and now has "
     "validation = 'kfold:3'"),
])
def test_a_rerun_that_searches_for_something_else_is_one_line(copy, tmp_path, changes, sets, expected):
    """Before: the study kept its direction (a loss maximised), mixed trials of two spaces or two
    base runs, or ended in Optuna's ValueError for a dimension of another kind."""
    study, before = copy / "study.sqlite", run_ids(copy)
    untouched = digest(study)
    proc = rerun(tmp_path, *sets, **changes)
    one_line_error(proc, f"{study} is the study of another search: {expected}", 'set name = "srch-2"')
    assert digest(study) == untouched and run_ids(copy) == before  # nothing trained, the study as it was


@pytest.mark.parametrize("changes", [{"trials": 3}, {"sampler": "random", "pruner": "median"},
                                     {"extra": "prune_after = 1"}])
def test_a_rerun_that_changes_how_much_or_how_it_searches_carries_on(copy, tmp_path, changes):
    proc = rerun(tmp_path, **changes)
    assert proc.returncode == 0, proc.stderr
    counted = [t for t in optuna.load_study(study_name="srch", storage=f"sqlite:///{copy / 'study.sqlite'}").trials
               if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == changes.get("trials", 2)


def forget_the_record(study):
    """As a study written before the runner recorded what it searched for."""
    db = sqlite3.connect(study)
    db.execute("DELETE FROM study_user_attributes")
    db.commit()
    db.close()


@pytest.mark.parametrize("changes, expected", [
    ({"objective": "loss"}, "it searched for direction = 'maximize', the file now asks for 'minimize'"),
    ({"space": SPACE.replace("1e-2", "1e-1")}, "search.space.optimizer.learning_rate was { log = [0.0001, 0.01] }"),
])
def test_a_study_of_an_older_runner_is_checked_against_what_optuna_recorded(copy, tmp_path, changes, expected):
    forget_the_record(copy / "study.sqlite")
    one_line_error(rerun(tmp_path, **changes), expected)
    assert rerun(tmp_path).returncode == 0  # the same file carries on, and the study now has its record
    one_line_error(rerun(tmp_path, objective="acc"), "it searched for objective = 'auc'")


def damage(study, how, tmp_path, registry):
    if how == "text":
        study.write_text("not a database at all\n")
    elif how == "truncated":
        study.write_bytes(study.read_bytes()[:4096])
    elif how == "a run registry":
        shutil.copy(registry, study)
    elif how in ("another study", "another optuna"):
        db = sqlite3.connect(study)
        db.execute("UPDATE studies SET study_name = 'other'" if how == "another study"
                   else "UPDATE alembic_version SET version_num = 'v99.0.0.a'")
        db.commit()
        db.close()


@pytest.mark.parametrize("how, expected", [
    ("text", "is not a readable Optuna study (file is not a database); it was left untouched. Move it aside"),
    ("truncated", "is not a readable Optuna study ("),
    ("a run registry", "is an sqlite file but not an Optuna study; it was left untouched"),
    ("another study", "holds the study 'other', not 'srch' (copied from another search?); it was left untouched"),
    ("another optuna", "is not a readable Optuna study (RuntimeError: "),
])
def test_a_damaged_or_foreign_study_is_one_line_and_left_untouched(copy, tmp_path, how, expected):
    study = copy / "study.sqlite"
    damage(study, how, tmp_path, copy / "runs.sqlite")
    untouched = digest(study)
    one_line_error(rerun(tmp_path), f"{study} {expected}")
    assert digest(study) == untouched
    report = cli("report", copy)  # a report reads any study (a folder may be copied under another name)
    assert "Traceback" not in report.stderr and "lenet" in report.stdout  # the runs are shown all the same
    if how != "another study":
        assert report.returncode == 1 and "its search's trials are not shown" in report.stderr
    assert digest(study) == untouched


# ---- the whole numbers of a [search] are bounded (as every run key is: tests/test_numbers.py) ---------

HUGE = 123456789012345678901  # 21 digits


@pytest.mark.parametrize("extra, space, expected", [
    ("", '"optimizer.learning_rate" = { log = [1e-4, 1e-2] }', "trials = 123456789012345678901 is out of range"),
    ("", 'epochs = { int = [2, 123456789012345678901] }', "epochs = 123456789012345678901 is out of range"),
    ("", 'batch_size = { choice = [16, 123456789012345678901] }', "batch_size = 123456789012345678901 is out of range"),
    ("", 'seed = { int = [0, 123456789012345678901] }', "seed = 123456789012345678901 is out of range"),
])
def test_a_21_digit_integer_in_a_search_is_one_line(tmp_path, outputs, extra, space, expected):
    path = search_file(tmp_path, trials=HUGE if "trials" in expected else 4, space=space, extra=extra)
    one_line_error(cli("sweep", path, "--dry-run"), expected)


def test_21_digit_final_seeds_are_one_line(tmp_path, outputs):
    path = search_file(tmp_path)
    path.write_text(path.read_text().replace("final_seeds = [0]", f"final_seeds = [0, {HUGE}]"))
    one_line_error(cli("sweep", path, "--dry-run"), f"final_seeds = [0, {HUGE}]: give whole numbers in [0, 2147483647]")

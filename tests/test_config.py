import pytest

from conftest import TINY, cli, write_toml
from runner.config import load_experiment
from runner.errors import ConfigError

BASE = """
name = "cfg"
[defaults]
epochs = 5
optimizer = { name = "momentum", learning_rate = 0.001, momentum = 0.9 }
[[runs]]
model = "lenet"
[[runs]]
model = "alexnet"
optimizer = { name = "adam", learning_rate = 0.001 }
[grid]
seed = [0, 1, 2]
"""


def test_runs_times_grid_with_overrides(tmp_path):
    experiment = load_experiment(write_toml(tmp_path, BASE), ["epochs=1", "optimizer.learning_rate=0.01"])
    assert len(experiment.runs) == 6
    alexnet = [r for r in experiment.runs if r.config["model"] == "alexnet"]
    assert {r.config["seed"] for r in alexnet} == {0, 1, 2}
    # a run's table replaces the default's whole: Adam does not inherit Momentum's momentum
    assert alexnet[0].config["optimizer"] == {"name": "adam", "learning_rate": 0.01}
    assert all(r.config["epochs"] == 1 for r in experiment.runs)
    assert len({r.run_id for r in experiment.runs}) == 6


def test_run_id_is_stable_and_changes_only_with_the_config(tmp_path):
    a = load_experiment(write_toml(tmp_path, BASE)).runs
    b = load_experiment(write_toml(tmp_path, BASE.replace('model = "alexnet"', 'model = "alexnet"\nepochs = 6'))).runs
    assert [r.run_id for r in a][:3] == [r.run_id for r in b][:3]  # lenet runs untouched
    assert [r.run_id for r in a][3:] != [r.run_id for r in b][3:]


@pytest.mark.parametrize("text, overrides, expected", [
    (BASE.replace("epochs = 5", "epochs = 5\noptimzer = 1"), [], "unknown key defaults.optimzer; did you mean optimizer?"),
    (BASE.replace("epochs = 5", 'epochs = "five"'), [], "defaults.epochs = 'five' is a string; expected integer"),
    (BASE.replace('model = "lenet"', 'model = "lenett"'), [], "runs[0]: model: unknown model 'lenett'"),
    (BASE.replace('model = "lenet"', 'model = "lenet"\ndataset = "ichallenge"'), [], "unknown dataset 'ichallenge'"),
    (BASE.replace('name = "adam"', 'name = "rmsprop"'), [], "optimizer.name = 'rmsprop'; allowed: sgd, momentum, adam, adamw"),
    (BASE, ["batch_size=0"], "batch_size = 0 is out of range: it must be in [1, ∞)"),
    (BASE, ["scheduler.name=linearly"], "scheduler.name = 'linearly'; allowed: constant, step, cosine, linear"),
    (BASE, ["epochs"], "--set 'epochs': expected key=value"),
    (BASE, ["optimiser.learning_rate=1"], "--set: unknown key optimiser; did you mean optimizer?"),
    ('name = "x"\n[defaults]\nepochs = 1\n', [], "no [[runs]]"),
    ('name = "x"\n[[runs]]\nmodel = "lenet"\nepochs = [1\n', [], "not valid TOML"),
    (BASE, ["validation=holdout:2"], "expected \"official\", \"holdout:F\" with 0 < F < 1, or \"kfold:K\""),
    (BASE, ["validation=kfold:1"], "\"kfold:K\" with 2 <= K <= 20"),
    (BASE, ["fold=2"], "fold = 2 needs validation = \"kfold:K\""),
    (BASE, ["validation=kfold:3", "fold=4"], "fold = 4 is out of range: it must be in [1, 3]"),
    (BASE, ["robustness.corruptions=['fogg']"], "robustness.corruptions: unknown corruption 'fogg'; did you mean fog"),
    (BASE, ["robustness.severities=[1, 6]"], "robustness.severities: 6 is not a severity; use whole numbers from 0"),
    (BASE, ["robustness=true", "image_size=28"], "robustness needs image_size >= 32"),
    (BASE, ["train_fraction=0"], "train_fraction = 0.0 is out of range: it must be in (0.0, 1.0]"),
    (BASE, ["fraction_budget=steps"], "fraction_budget = 'steps'; allowed: same_epochs, same_steps"),
    (BASE, ["accuracy_targets=[95]"], "accuracy_targets: 95 is not an accuracy; give fractions in (0, 1]"),
])
def test_bad_experiment_files(tmp_path, outputs, text, overrides, expected):
    """As a user meets them: `runner sweep` stops before anything trains, with one line."""
    path = write_toml(tmp_path, text)
    proc = cli("sweep", path, "--dry-run", *[arg for o in overrides for arg in ("--set", o)])
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in proc.stderr, proc.stderr
    assert str(path) in errors[0] or errors[0].startswith("error: --set"), errors[0]
    # a wrong --set is the command line's mistake (a usage error, 2), a wrong file the file's (1)
    assert proc.returncode == (2 if errors[0].startswith("error: --set") else 1), proc.returncode
    assert not outputs.exists()
    with pytest.raises(ConfigError):  # the library says the same to a script
        load_experiment(path, overrides)


def test_cli_reports_toml_line_and_file(tmp_path):
    path = write_toml(tmp_path, 'name = "x"\n[[runs]]\nmodel = "lenet"\nepochs = = 3\n')
    proc = cli("train", path)
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "line 4" in proc.stderr and "Traceback" not in proc.stderr


def test_display_name_shows_the_model_arguments(tmp_path):
    text = TINY.format(name="names", epochs=1) + '[[runs]]\nmodel = "googlenet"\nmodel_args = { aux_heads = false }\n'
    run = load_experiment(write_toml(tmp_path, text)).runs[0]
    assert run.display_name == "googlenet seed=0 aux_heads=False adam lr=0.001 32px"

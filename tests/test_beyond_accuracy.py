"""Beyond accuracy (issue 31): robustness to ImageNet-C's corruptions, learning curves over nested
shares of the training images, time to accuracy and per-class scores, with known answers."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from browser import CHROMIUM, Browser
from conftest import DATA_ROOT, cli, one_line_error, tiny_experiment, write_toml
from runner import metrics
from runner.config import load_experiment
from runner.errors import ConfigError
from runner.options import CORRUPTIONS

# corruptions that draw no random numbers: the same pixels whatever the seed
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}


def images(n=3, size=32, seed=0):
    return (np.random.RandomState(seed).rand(n, size, size, 3) * 255).astype(np.uint8)


# ---- corruptions -----------------------------------------------------------------------------------

def test_same_seed_same_pixels_for_every_corruption_and_numpy_left_as_it_was():
    from runner.data.corruptions import corrupt_images

    x = images()
    for name in CORRUPTIONS:
        np.random.seed(1)
        first = corrupt_images(x, name, 3, seed=0, dataset="d")
        after = np.random.rand()
        np.random.seed(99)  # whatever the global generator holds before, the pixels are the same
        np.random.rand(17)
        again = corrupt_images(x, name, 3, seed=0, dataset="d")
        assert np.array_equal(first, again), name
        np.random.seed(1)
        corrupt_images(x, name, 3, seed=0, dataset="d")
        assert np.random.rand() == after, f"{name} moved numpy's global generator"
        assert first.shape == x.shape and first.dtype == np.uint8 and not np.array_equal(first, x), name
        other = corrupt_images(x, name, 3, seed=1, dataset="d")
        assert np.array_equal(other, first) == (name in DETERMINISTIC), name
    # each image its own noise: two equal images at two positions get the same corrupted pixels
    same = np.stack([x[0], x[0]])
    out = corrupt_images(same, "gaussian_noise", 2, seed=0, dataset="d")
    assert np.array_equal(out[0], out[1])


def test_severity_zero_is_the_image_itself_and_small_images_are_refused():
    from runner.data.corruptions import corrupt_images
    from runner.errors import RunnerError

    x = images()
    for name in CORRUPTIONS:
        assert np.array_equal(corrupt_images(x, name, 0), x)
    with pytest.raises(RunnerError, match="at least 32 x 32 pixels"):
        corrupt_images(images(size=28), "fog", 1)


def test_the_cache_gives_what_making_gives_and_one_copy_per_set(tmp_path):
    from runner.data.corruptions import corrupt_images, corrupted_sets

    x = images(4)
    sets = [("shot_noise", 1), ("brightness", 0), ("glass_blur", 2)]
    made = {(c, s): a for c, s, a in corrupted_sets(x, "d", sets, 0, tmp_path)}
    assert set(made) == set(sets)
    for (name, severity), array in made.items():
        assert np.array_equal(array, corrupt_images(x, name, severity, 0, "d"))
    copies = sorted(p.name.split("-")[0] for p in (tmp_path / "corrupted").rglob("*.npy"))
    assert copies == ["glass_blur", "shot_noise"]  # severity 0 is not stored
    again = {(c, s): a for c, s, a in corrupted_sets(x, "d", sets, 0, tmp_path)}
    assert all(np.array_equal(again[k], made[k]) for k in sets)


class Constant:
    """A classifier blind to its input (it returns the same logits for every image)."""

    def __new__(cls, logits=(0.3, -0.2)):
        import paddle

        class Net(paddle.nn.Layer):
            def __init__(self):
                super().__init__()
                self.logits = paddle.create_parameter([2], "float32",
                                                      default_initializer=paddle.nn.initializer.Assign(list(logits)))

            def forward(self, x):
                return x.mean(axis=[1, 2, 3], keepdim=False).unsqueeze(1) * 0.0 + self.logits

        return Net()


class Brightness:
    """A classifier that calls an image positive when it is brighter than `threshold` (in [-1, 1])."""

    def __new__(cls, threshold=0.0):
        import paddle

        class Net(paddle.nn.Layer):
            def forward(self, x):
                z = (x.mean(axis=[1, 2, 3], keepdim=False) - threshold).unsqueeze(1) * 50.0
                return paddle.concat([-z, z], axis=1)

        return Net()


@pytest.mark.parametrize("engine", ["inference", "dygraph"])
def test_a_network_blind_to_brightness_scores_the_same_under_brightness(tmp_path, engine):
    from runner.data.corruptions import corrupt_images
    from runner.run.robustness import engine_forward, probabilities, scores

    x = images(24, seed=3)
    labels = np.array([0, 1] * 12)
    config = {"image_size": 32, "threads": 1, "eval_engine": engine, "device": "cpu"}

    def no_fallback(event, message):
        raise AssertionError(message)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    blind, used = engine_forward(Constant(), config, tmp_path / "a", no_fallback)
    assert used == engine
    clean = scores(probabilities(blind, x, 8), labels)
    for severity in range(1, 6):
        corrupted = scores(probabilities(blind, corrupt_images(x, "brightness", severity), 8), labels)
        assert corrupted == clean, severity
    # the corruption did reach the network: one that reads brightness moves
    x = (x * 0.5).astype(np.uint8)  # dark images: all called negative when clean
    seeing = engine_forward(Brightness(), config, tmp_path / "b", no_fallback)[0]
    assert probabilities(seeing, x, 8).argmax(1).sum() == 0
    assert probabilities(seeing, corrupt_images(x, "brightness", 5), 8).argmax(1).sum() == len(x)


# ---- mCE, time to accuracy, per class: by hand ---------------------------------------------------

def test_mce_is_100_for_the_baseline_itself_and_by_hand():
    baseline = {"fog": {1: 0.8, 2: 0.6}, "contrast": {1: 0.9, 2: 0.5}}
    mce, ce = metrics.mean_corruption_error(baseline, baseline)
    assert mce == pytest.approx(100.0) and ce == {"fog": pytest.approx(100.0), "contrast": pytest.approx(100.0)}
    run = {"fog": {0: 1.0, 1: 0.9, 2: 0.8}, "contrast": {1: 0.7, 2: 0.7}}  # severity 0 is left out
    mce, ce = metrics.mean_corruption_error(run, baseline)
    # fog: (0.1 + 0.2) / (0.2 + 0.4) = 50 %; contrast: (0.3 + 0.3) / (0.1 + 0.5) = 100 %
    assert ce["fog"] == pytest.approx(50.0) and ce["contrast"] == pytest.approx(100.0) and mce == pytest.approx(75.0)
    unnormalised, per = metrics.mean_corruption_error(run)
    assert per == {"fog": pytest.approx(15.0), "contrast": pytest.approx(30.0)} and unnormalised == pytest.approx(22.5)
    with pytest.raises(ValueError, match="baseline has no score for fog at severity 3"):
        metrics.mean_corruption_error({"fog": {3: 0.5}}, baseline)


def test_time_to_accuracy_on_a_constructed_history():
    history = [{"epoch": 1, "train_seconds": 10.0, "train_cpu_seconds": 8.0, "eval_seconds": 1.0, "val": {"acc": 0.50}},
               {"epoch": 2, "train_seconds": 12.0, "train_cpu_seconds": 9.0, "eval_seconds": 1.5, "val": {"acc": 0.91}},
               {"epoch": 3, "train_seconds": 11.0, "train_cpu_seconds": 8.5, "eval_seconds": 1.0, "val": {"acc": 0.88}},
               {"epoch": 4, "train_seconds": 9.0, "train_cpu_seconds": 7.5, "eval_seconds": 1.0, "val": {"acc": 0.95}}]
    assert metrics.time_to_accuracy(history, 0.9) == {"epoch": 2, "train_seconds": 22.0, "train_cpu_seconds": 17.0,
                                                      "wall_seconds": 24.5}
    assert metrics.time_to_accuracy(history, 0.95) == {"epoch": 4, "train_seconds": 42.0, "train_cpu_seconds": 33.0,
                                                       "wall_seconds": 46.5}
    # an epoch up to the target without CPU time (an older runner's, before a resume): no CPU total
    older = [{k: v for k, v in history[0].items() if k != "train_cpu_seconds"}, *history[1:]]
    assert metrics.time_to_accuracy(older, 0.9)["train_cpu_seconds"] is None
    assert metrics.time_to_accuracy(history, 0.5)["epoch"] == 1  # reached exactly counts
    assert metrics.time_to_accuracy(history, 0.96) is None
    # an epoch that recorded no accuracy reaches no target, and the count goes on past it
    gap = [{**history[0], "val": {"acc": None}}, *history[1:]]
    assert metrics.time_to_accuracy(gap, 0.4) == {"epoch": 2, "train_seconds": 22.0, "train_cpu_seconds": 17.0,
                                                  "wall_seconds": 24.5}


def test_a_groups_mce_never_averages_one_relative_to_alexnet_with_a_plain_error():
    from types import SimpleNamespace

    from runner.report.sections import Beyond

    def run(seed, mce, normalised):
        return {"run_id": f"lenet-s{seed}", "group": "lenet", "clean_acc": 0.9, "mean_corruption_acc": 0.2,
                "mce": mce, "mce_normalised": normalised, "ece_under_corruption": 0.1,
                "corruptions": {"fog": {"1": {"acc": 0.2}}}}
    owner = SimpleNamespace(groups=[("lenet", [])])
    (mixed,) = Beyond.robustness_groups(owner, [run(0, 100.0, True), run(1, 20.0, False)])
    assert mixed["mce"] is None and mixed["mce_normalised"] is False  # before: 60, "unnormalised"
    (alike,) = Beyond.robustness_groups(owner, [run(0, 100.0, True), run(1, 80.0, True)])
    assert alike["mce"] == pytest.approx(90.0) and alike["mce_normalised"] is True


def test_classes_are_compared_only_between_groups_of_the_same_classes():
    from runner.report.sections import differ_most

    pm = ["normal", "myopia"]
    cifar = ["airplane", "automobile", "bird"]
    groups = [{"model": "lenet pm", "classes": pm, "recall": [0.9, 0.5]},
              {"model": "alexnet pm", "classes": pm, "recall": [0.8, 0.9]},
              {"model": "lenet cifar10", "classes": cifar, "recall": [0.1, 0.2, 0.3]}]
    for order in (groups, groups[::-1]):  # before: pm's "normal" against airplane's recall, or an IndexError
        found = {d["class"]: d for d in differ_most(order)}
        assert set(found) == {"normal", "myopia"}
        assert found["myopia"]["spread"] == pytest.approx(0.4) and found["myopia"]["worst"] == "lenet pm"
        assert found["normal"]["spread"] == pytest.approx(0.1)


def test_per_class_scores_by_hand():
    # rows true, columns predicted: class 2 is never predicted
    matrix = [[5, 1, 0], [2, 6, 0], [1, 1, 0]]
    a, b, c = metrics.per_class_scores(matrix)
    assert a["recall"] == pytest.approx(5 / 6) and a["precision"] == pytest.approx(5 / 8)
    assert a["f1"] == pytest.approx(2 * (5 / 6) * (5 / 8) / (5 / 6 + 5 / 8)) and a["images"] == 6
    assert b["recall"] == pytest.approx(6 / 8) and b["precision"] == pytest.approx(6 / 8)
    assert c["recall"] == 0.0 and np.isnan(c["precision"]) and c["f1"] == 0.0


# ---- training on a share of the images -----------------------------------------------------------

def test_nested_fractions_are_nested_stratified_and_fixed_whatever_the_seed():
    from runner.validation import nested_subset

    labels = np.array([0] * 150 + [1] * 50 + [2] * 7)
    shares = {f: set(nested_subset(labels, f)) for f in (0.1, 0.25, 0.5, 1.0)}
    assert shares[0.1] < shares[0.25] < shares[0.5] < shares[1.0] == set(range(len(labels)))
    for f, chosen in shares.items():
        counts = np.bincount(labels[sorted(chosen)], minlength=3)
        assert list(counts) == [max(1, round(150 * f)), max(1, round(50 * f)), max(1, round(7 * f))], f
    np.random.seed(7)  # the run's own seed does not move them
    assert set(nested_subset(labels, 0.25)) == shares[0.25]


def test_train_fraction_is_a_nested_share_of_a_holdouts_training_images(tmp_path):
    from runner.data import load_splits

    def splits(fraction):
        return load_splits("ichallenge-pm", 32, DATA_ROOT, validation="holdout:0.2", train_limit=80,
                           cache_dir=tmp_path, train_fraction=fraction)

    full, shares = splits(1.0), {f: splits(f) for f in (0.1, 0.25)}
    for fraction, share in shares.items():
        assert np.array_equal(share.val.images, full.val.images)  # the held-out images do not move
        assert list(np.bincount(share.train.labels)) == [round(n * fraction) for n in np.bincount(full.train.labels)]
    pixels = {f: {image.tobytes() for image in s.train.images} for f, s in shares.items()}
    assert pixels[0.1] < pixels[0.25] < {image.tobytes() for image in full.train.images}


def test_same_steps_scales_the_epochs_and_a_full_share_is_one_run(tmp_path):
    text = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[grid]\ntrain_fraction = [0.25, 0.5, 1.0]\n'
                                     'fraction_budget = ["same_epochs", "same_steps"]\n', epochs=3)
    runs = load_experiment(text).runs
    got = sorted((r.config["train_fraction"], r.config["fraction_budget"], r.config["epochs"]) for r in runs)
    assert got == [(0.25, "same_epochs", 3), (0.25, "same_steps", 12), (0.5, "same_epochs", 3),
                   (0.5, "same_steps", 6), (1.0, "same_epochs", 3)]
    plain = load_experiment(tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', epochs=3)).runs[0]
    full = next(r for r in runs if r.config["train_fraction"] == 1.0)
    assert full.run_id == plain.run_id  # adding the key at its default keeps every id


def test_learning_curves_one_per_budget_each_with_the_full_set(tmp_path):
    from runner.report.comparison import Comparison
    from runner.store.layout import SweepPaths

    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[grid]\ntrain_fraction = [0.5, 1.0]\n'
                                     'fraction_budget = ["same_epochs", "same_steps"]\nseed = [0, 1]\n', epochs=3)
    rows = [{"result": {"run_id": spec.run_id, "config": spec.config, "train_images": round(48 * spec.config["train_fraction"]),
                        "final": {"acc": 0.5 + spec.config["train_fraction"] / 4 + spec.config["seed"] / 100},
                        "history": [], "epochs_run": spec.config["epochs"], "class_names": ["a", "b"]},
             "paths": SweepPaths(tmp_path).run_paths(spec.run_id)} for spec in load_experiment(path).runs]
    assert len(rows) == 6  # the full set once per seed, whatever the budget
    curves = {c["model"]: c for c in Comparison(rows).beyond.records()["learning_curves"]}
    assert set(curves) == {"lenet (same_epochs)", "lenet (same_steps)"}
    for name, curve in curves.items():
        points = [(p["train_images"], p["epochs"], p["seeds"]) for p in curve["points"]]
        assert points == [(24, 3 if "epochs" in name else 6, 2), (48, 3, 2)], name
        assert curve["points"][1]["acc_mean"] == pytest.approx(0.755) and curve["points"][1]["acc_ci_low"] < 0.75
    # a seed that answers one class for every image: the table shows each seed, and its t-interval
    # (which runs past 100 %) within 0-100 %
    from runner.report.tables import beyond_sections

    rows[0]["result"]["final"]["acc"] = 0.10
    (section,) = [s for s in beyond_sections(Comparison(rows).beyond) if s["key"] == "learning_curves"]
    body = {(r[0], r[2]): dict(zip(section["header"], r)) for r in section["body"]}
    widest = max(body.values(), key=lambda r: r["per seed"].count("10.00%"))
    assert "10.00%" in widest["per seed"] and len(widest["per seed"].split(", ")) == 2
    low, high = widest["95% interval"].split("–")
    assert low == "0.00%" and float(high.rstrip("%")) <= 100.0


def test_a_share_of_the_training_images_is_in_the_data_fingerprint(tmp_path):
    from runner.data import fingerprint_of

    full = fingerprint_of("ichallenge-pm", DATA_ROOT, "holdout:0.2", 80, cache_dir=tmp_path)
    share = fingerprint_of("ichallenge-pm", DATA_ROOT, "holdout:0.2", 80, cache_dir=tmp_path, train_fraction=0.25)
    assert share["val"]["digest"] == full["val"]["digest"]  # scored on the same images: paired in the report
    assert share["train"]["images"] == 20 and set(share["train"]["ids"]) < set(full["train"]["ids"])
    assert share["digest"] != full["digest"]  # a sweep tells a run on the share from one on all of them


def test_robustness_refuses_a_run_whose_validation_images_changed(tmp_path):
    from runner.data import fingerprint_of
    from runner.errors import RunnerError
    from runner.run.robustness import check_same_images
    from runner.store.layout import SweepPaths

    then = fingerprint_of("ichallenge-pm", DATA_ROOT, val_limit=10, cache_dir=tmp_path)
    now = fingerprint_of("ichallenge-pm", DATA_ROOT, val_limit=12, cache_dir=tmp_path)
    paths = SweepPaths(tmp_path).run_paths("lenet-s0-0123abcd")
    with pytest.raises(RunnerError, match=r"^lenet-s0-0123abcd: its validation images are not the ones it was scored "
                                          r"on when it trained \(validation images .*: 12 now, 10 then\); restore the "
                                          r"data, or train it afresh with `runner sweep --retrain-stale`$"):
        check_same_images(paths, {"data": then}, now)
    check_same_images(paths, {"data": then}, then)
    check_same_images(paths, {}, now)  # written by an older runner: no fingerprint to check against


def test_robustness_and_targets_do_not_change_what_is_trained(tmp_path):
    plain = load_experiment(tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n')).runs[0]
    asked = load_experiment(tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nrobustness = true\n'
                                                      'accuracy_targets = [0.6]\n')).runs[0]
    assert asked.run_id == plain.run_id
    assert asked.config["robustness"] == {"corruptions": list(CORRUPTIONS), "severities": [1, 2, 3, 4, 5], "seed": 0}
    table = load_experiment(tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nrobustness = { seed = 3 }\n')).runs[0]
    assert table.config["robustness"]["seed"] == 3 and len(table.config["robustness"]["corruptions"]) == 15


def test_robustness_in_a_search_is_refused_with_the_command_to_run(tmp_path):
    path = write_toml(tmp_path, 'name = "s"\n[defaults]\nrobustness = true\n[[runs]]\nmodel = "lenet"\n'
                                '[search]\ntrials = 2\nspace = { "optimizer.learning_rate" = [0.001, 0.01] }\n')
    with pytest.raises(ConfigError, match=r"robustness is not measured during a \[search\].*runner robustness outputs/s"):
        load_experiment(path)


# ---- end to end ----------------------------------------------------------------------------------

ROBUST = 'robustness = { corruptions = ["brightness", "gaussian_noise"], severities = [0, 1, 5] }\n'


@pytest.fixture
def robust_sweep(tmp_path, outputs):
    # LeNet's last evaluation averages each image with its mirror (tta = 1): robustness must score it so too
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\ntta = 1\n[[runs]]\nmodel = "alexnet"\n', epochs=2,
                           extra=ROBUST)
    proc = cli("sweep", path, "--jobs", "2", check=True)
    assert proc.stdout.count("robustness ") >= 2 and "done:" in proc.stdout
    return outputs / "tiny"


def scored(folder):
    return {p.parent.name: json.loads(p.read_text()) for p in (folder / "runs").glob("*/robustness.json")}


def test_a_sweep_scores_robustness_and_the_report_carries_it(robust_sweep):
    files = scored(robust_sweep)
    assert len(files) == 2
    report = json.loads(cli("report", robust_sweep, "--format", "json", check=True).stdout)
    finals = {r["run_id"]: r["final_acc"] for r in report["runs"]}
    eces = {r["run_id"]: r["ece"] for r in report["runs"]}
    by_run = {r["run_id"]: r for r in report["robustness"]["runs"]}
    for run_id, stored in files.items():
        # severity 0 is the clean images through the same engine: the run's own final accuracy
        assert stored["clean"]["acc"] == finals[run_id]
        assert stored["clean"]["ece"] == pytest.approx(eces[run_id], abs=1e-5)  # the same probabilities
        for name in ("brightness", "gaussian_noise"):
            assert stored["sets"][name]["0"]["acc"] == finals[run_id]
            assert set(stored["sets"][name]) == {"0", "1", "5"}
        assert stored["engine"] == "inference" and stored["package"].startswith("imagecorruptions")
        record = by_run[run_id]
        sets = [v["acc"] for by in stored["sets"].values() for s, v in by.items() if s != "0"]
        assert record["mean_corruption_acc"] == pytest.approx(np.mean(sets))
        assert record["mce_normalised"] and record["ece_under_corruption"] is not None
    alexnet = next(r for r in by_run.values() if r["model"] == "alexnet")
    lenet = next(r for r in by_run.values() if r["model"] == "lenet")
    assert alexnet["mce"] == pytest.approx(100.0)  # the baseline against itself
    assert lenet["mce_baseline"] == [alexnet["run_id"]]
    assert {g["model"] for g in report["robustness"]["groups"]} == {"lenet", "alexnet"}
    assert report["per_class"]["runs"] and all(len(r["classes"]) == 2 for r in report["per_class"]["runs"])
    assert all(len(r["targets"]) == 3 for r in report["time_to_accuracy"])  # iChallenge-PM's default targets
    assert "Robustness to corrupted images" in (robust_sweep / "results.md").read_text()
    bad = cli("report", robust_sweep, "--targets", "0.9,95")  # a usage error: exit 2
    one_line_error(bad, "error: --targets '0.9,95': 95.0 is not an accuracy; give fractions in (0, 1]",
                   "(see `runner report --help`)", code=2)
    timed = json.loads(cli("report", robust_sweep, "--format", "json", "--targets", "0.2", check=True).stdout)
    assert all([t["target"] for t in r["targets"]] == [0.2] for r in timed["time_to_accuracy"])

    # a checkpoint that does not give the run's own final predictions is refused, the other run scored:
    # LeNet's last layer negated, so that it calls every image the other class
    import paddle

    weights = robust_sweep / "checkpoints" / lenet["run_id"] / "epoch-0002" / "model.pdparams"
    state = paddle.load(str(weights))
    for name in list(state)[-2:]:  # fc2.weight, fc2.bias
        state[name] = -state[name]
    paddle.save(state, str(weights))
    proc = cli("robustness", robust_sweep, "--corruption", "snow", "--severity", "1")
    assert proc.returncode == 1
    assert f"failed {lenet['run_id']}: {lenet['run_id']}: its final checkpoint predicts" in proc.stderr
    assert "clean validation images otherwise than the run did" in proc.stderr
    assert "snow" in scored(robust_sweep)[alexnet["run_id"]]["sets"]
    assert "snow" not in scored(robust_sweep)[lenet["run_id"]]["sets"]


def test_runner_robustness_adds_sets_and_resumes_after_kill_9(robust_sweep, tmp_path):
    before = scored(robust_sweep)
    # killed with its sweep right after the first new set is saved: one run holds one of its two new sets
    env = {"RUNNER_FAULT": "robustness-set:1", "RUNNER_FAULT_ONCE": str(tmp_path / "once")}
    proc = cli("robustness", robust_sweep, "--corruption", "contrast", "--corruption", "fog", "--severity", "2",
               "--jobs", "1", env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    partial = scored(robust_sweep)
    assert sum(len(p["sets"].get("contrast", {})) + len(p["sets"].get("fog", {})) for p in partial.values()) == 1
    proc = cli("robustness", robust_sweep, "--corruption", "contrast", "--corruption", "fog", "--severity", "2",
               check=True)
    assert "2 run(s) scored, 0 failed" in proc.stdout
    after = scored(robust_sweep)
    for run_id, stored in after.items():
        assert set(stored["sets"]) == {"brightness", "gaussian_noise", "contrast", "fog"}
        for name in ("brightness", "gaussian_noise"):  # kept, not scored again
            assert stored["sets"][name] == before[run_id]["sets"][name]
        for name in ("contrast", "fog"):
            if name in partial[run_id]["sets"]:
                assert stored["sets"][name] == partial[run_id]["sets"][name]
    proc = cli("robustness", robust_sweep, "--corruption", "contrast", "--severity", "2", check=True)
    assert "0 run(s) scored" in proc.stdout  # nothing left to do
    bad = cli("robustness", robust_sweep, "--corruption", "fogg")
    one_line_error(bad, "error: --corruption fogg: unknown corruption 'fogg'; did you mean fog?",
                   "(see `runner robustness --help`)", code=2)
    # without imagecorruptions: one line naming the extra, and nothing scored or lost
    missing = without_the_package(robust_sweep)
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: robustness needs the imagecorruptions package, which is not installed: pip install -e '.[robustness]'")
    assert scored(robust_sweep) == after
    # sets scored on another engine before (as an older runner recorded it, once for the file) are kept
    # and still say which engine scored them; the new set names this one, and "engines" lists both
    path = sorted((robust_sweep / "runs").glob("*/robustness.json"))[0]
    older = json.loads(path.read_text())
    this = older["engine"]
    other = {"inference": "dygraph", "dygraph": "inference"}[this]
    for entries in older["sets"].values():
        for entry in entries.values():
            del entry["engine"]
    path.write_text(json.dumps({**older, "engine": other}))
    cli("robustness", robust_sweep, "--corruption", "snow", "--severity", "1", check=True)
    now = json.loads(path.read_text())
    assert now["engine"] == this and now["engines"] == sorted([this, other])
    assert now["sets"]["snow"]["1"]["engine"] == this
    assert {e["engine"] for name, entries in now["sets"].items() if name != "snow" for e in entries.values()} == {other}


def without_the_package(folder):
    """`runner robustness` on `folder` with imagecorruptions not importable."""
    code = ("import sys, runpy\n"
            "class Missing:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'imagecorruptions' or name.startswith('imagecorruptions.'):\n"
            "            raise ModuleNotFoundError(\"No module named 'imagecorruptions'\", name='imagecorruptions')\n"
            "sys.meta_path.insert(0, Missing())\n"
            f"sys.argv = ['runner', 'robustness', {str(folder)!r}, '--corruption', 'snow']\n"
            "runpy.run_module('runner', run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)



# ---- in a browser --------------------------------------------------------------------------------

def three_classes(root):
    """folder:<root> with classes a, b, c (train 12 and val 4 images each) copied from iChallenge-PM."""
    from conftest import PM
    import shutil

    source = iter(sorted((PM / "PALM-Training400").glob("*.jpg")))
    for split, count in (("train", 12), ("val", 4)):
        for name in "abc":
            (root / split / name).mkdir(parents=True)
            for _ in range(count):
                image = next(source)
                shutil.copy(image, root / split / name / image.name)
    return f"folder:{root}"


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed")
def test_report_html_shows_robustness_learning_curves_and_per_class_in_a_browser(tmp_path, outputs, artifacts):
    dataset = three_classes(tmp_path / "abc")
    path = write_toml(tmp_path, f"""
        name = "beyond"
        [defaults]
        dataset = "{dataset}"
        image_size = 32
        epochs = 1
        batch_size = 8
        optimizer = {{ name = "adam", learning_rate = 0.001 }}
        robustness = {{ corruptions = ["brightness", "contrast"], severities = [1] }}
        [[runs]]
        model = "lenet"
        [[runs]]
        model = "alexnet"
        [grid]
        train_fraction = [0.5, 1.0]
        seed = [0, 1]
        """)
    cli("sweep", path, "--jobs", "2", check=True)
    folder = outputs / "beyond"
    report = json.loads(cli("report", folder, "--format", "json", check=True).stdout)
    curves = {c["model"]: c["points"] for c in report["learning_curves"]}
    assert set(curves) == {"lenet", "alexnet"}
    for points in curves.values():  # 6 and 12 images of each class, two seeds at each
        assert [(p["train_images"], p["seeds"]) for p in points] == [(18, 2), (36, 2)]
        assert all(p["acc_ci_low"] is not None for p in points)
    groups = {g["model"]: g for g in report["per_class"]["groups"]}
    assert all(g["classes"] == ["a", "b", "c"] for g in groups.values())
    assert len(report["per_class"]["differ_most"]) == 3
    robust = {g["model"]: g for g in report["robustness"]["groups"]}
    assert all(g["seeds"] == 2 for g in robust.values())  # the groups of the full set, by seed

    with Browser(tmp_path) as browser:
        browser.open((folder / "report.html").as_uri())
        browser.wait_for("document.readyState === 'complete' && document.images.length > 0 && "
                         "[...document.images].every(i => i.complete)", "every figure loaded")
        loaded = dict(browser.evaluate("[...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])"))
        dom = browser.dom()
        browser.screenshot(artifacts / "report-beyond-accuracy.png")
        assert not browser.console_errors, browser.console_errors
    for figure in ("robustness_heatmap.png", "robustness_by_severity.png", "learning_curves.png",
                   "per_class_heatmap.png", "acc_vs_wall_time.png"):
        assert loaded.get(figure, 0) > 300, (figure, loaded)  # decoded, at its width in pixels
    for heading in ("Robustness to corrupted images", "Learning curves over training-set size", "Time to accuracy",
                    "Per class", "Classes where the networks differ most"):
        assert f"<h2>{heading}</h2>" in dom, heading
    for label, group in robust.items():  # the table says what the JSON says
        assert f"<td>{label}</td><td>2</td><td>{100 * group['clean_acc']:.2f}%</td>" \
               f"<td>{100 * group['mean_corruption_acc']:.2f}%</td>" in dom, label

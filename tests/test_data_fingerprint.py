"""Every number knows the images it was computed on (issue 27): a run's data fingerprint, a sweep that
finds its data changed, the decoded-image caches keyed by content, and paired comparisons only
between runs scored on the same images — each driven through the command line where a user meets it."""
import csv
import json
import os
import pickle
import shutil
import subprocess
import tarfile

import cv2
import numpy as np
import pytest

from conftest import PM, cli, first_table, one_line_error, resumed_at, small_copy, tiny_experiment, write_toml

ONE = '[[runs]]\nmodel = "lenet"\n'


def results(outputs, name="tiny"):
    return {p.parent.name: json.loads(p.read_text()) for p in (outputs / name / "runs").glob("*/result.json")}


def rows_of(pm):
    return list(csv.DictReader(open(pm / "labels.csv")))


def write_rows(pm, rows):
    with open(pm / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)


def add_validation_images(pm, names):
    rows = rows_of(pm)
    by_name = {r["imgName"]: r for r in csv.DictReader(open(PM / "labels.csv"))}
    for name in names:
        shutil.copy(PM / "PALM-Validation400" / name, pm / "PALM-Validation400" / name)
        rows.append(by_name[name])
    write_rows(pm, rows)


def same_size_other_bytes(path):
    """Rewrite an image with other pixels but the same size and modification time, as `cp -p` of
    another file or a restored backup can leave it."""
    st = path.stat()
    ok, black = cv2.imencode(".jpg", np.zeros((224, 224, 3), np.uint8))
    raw = black.tobytes()
    assert len(raw) < st.st_size
    path.write_bytes(raw + b"\0" * (st.st_size - len(raw)))  # bytes after the end of a JPEG are allowed
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


# ---- the fingerprint ------------------------------------------------------------------------------

def test_every_run_records_its_data_fingerprint_and_the_report_shows_it(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE + '[[runs]]\nmodel = "lenet"\nvalidation = "holdout:0.25"\n', epochs=1)
    cli("sweep", path, check=True)
    by_validation = {r["config"]["validation"]: r for r in results(outputs).values()}
    official, holdout = by_validation["official"]["data"], by_validation["holdout:0.25"]["data"]
    assert official["train"]["images"] == 48 and official["val"]["images"] == 32
    assert official["val"]["ids"][:2] == ["PALM-Validation400/V0001.jpg", "PALM-Validation400/V0014.jpg"]
    assert all(i.startswith("PALM-Training400/") for i in holdout["val"]["ids"])  # the holdout names its images
    assert not set(holdout["val"]["ids"]) & set(holdout["train"]["ids"])
    assert official["train"]["digest"] != holdout["train"]["digest"]
    for run_id, result in results(outputs).items():
        run_json = json.loads((outputs / "tiny" / "checkpoints" / run_id / "run.json").read_text())
        assert run_json["data"] == result["data"]
        state = json.loads(next((outputs / "tiny" / "checkpoints" / run_id).glob("epoch-*/state.json")).read_text())
        assert state["data_digest"] == result["data"]["digest"]
    report = json.loads(cli("report", outputs / "tiny", "--format", "json", check=True).stdout)
    for run in report["runs"]:
        fingerprint = run["data_fingerprint"]
        recorded = results(outputs)[run["run_id"]]["data"]
        assert fingerprint["digest"] == recorded["digest"] and fingerprint["val"]["digest"] == recorded["val"]["digest"]
        assert fingerprint["val"]["images"] == recorded["val"]["images"] and "ids" not in fingerprint["val"]
    # two runs on two sets of validation images: neither is tested against the other
    assert all(r["mcnemar_p"] is None and "no other run was scored on its validation images" in r["paired_note"]
               for r in report["runs"])


# ---- a sweep whose data changed -------------------------------------------------------------------

def flip_a_label(pm):
    rows = rows_of(pm)
    rows[0]["Label"] = str(1 - int(rows[0]["Label"]))
    write_rows(pm, rows)


def remove_a_validation_image(pm):
    rows = rows_of(pm)
    (pm / "PALM-Validation400" / rows[-1]["imgName"]).unlink()
    write_rows(pm, rows[:-1])


def add_a_training_image(pm):
    taken = {p.name for p in (pm / "PALM-Training400").iterdir()}
    extra = next(p for p in sorted((PM / "PALM-Training400").glob("P*.jpg")) if p.name not in taken)
    shutil.copy(extra, pm / "PALM-Training400" / extra.name)


CHANGES = {  # what is done to the data after the sweep -> what the refusal says changed
    "labels corrected": (flip_a_label, "", "labels of the 10 validation images changed"),
    "image bytes": (lambda pm: same_size_other_bytes(sorted((pm / "PALM-Validation400").iterdir())[3]), "",
                    "content of the validation images changed"),
    "image removed": (remove_a_validation_image, "",
                      "validation images 1 removed (e.g. PALM-Validation400/V0010.jpg): 9 now, 10 then"),
    "training image added": (add_a_training_image, "", "training images 1 added"),
    "holdout changed": (add_a_training_image, 'validation = "holdout:0.25"\n', "validation images"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_finished_run_on_changed_data_is_refused_not_kept_as_done(tmp_path, outputs, change):
    do, setting, expected = CHANGES[change]
    pm = small_copy(tmp_path)
    path = tiny_experiment(tmp_path, ONE + setting, epochs=1)
    cli("sweep", path, "--data-root", tmp_path, check=True)
    (run_id, before), = results(outputs).items()
    do(pm)
    plan = cli("sweep", path, "--data-root", tmp_path, "--dry-run", check=True)
    assert f"{run_id} │ lenet" in plan.stdout and "stale" in plan.stdout and expected in plan.stderr
    proc = cli("sweep", path, "--data-root", tmp_path)
    one_line_error(proc, f"{run_id} finished", expected, "--retrain-stale", "or restore the data")
    assert "done" not in proc.stdout and results(outputs)[run_id] == before  # nothing trained, nothing lost
    again = cli("train", path, "--data-root", tmp_path)  # one run in this process: the same check
    one_line_error(again, f"{run_id} finished", expected)


def test_retrain_stale_sets_the_old_run_aside_and_trains_it_on_the_data_now(tmp_path, outputs):
    pm = small_copy(tmp_path)
    path = tiny_experiment(tmp_path, ONE, epochs=1)
    cli("sweep", path, "--data-root", tmp_path, check=True)
    (run_id, before), = results(outputs).items()
    flip_a_label(pm)
    proc = cli("sweep", path, "--data-root", tmp_path, "--retrain-stale", check=True)
    kept = outputs / "tiny" / "stale" / f"{run_id}-1"
    assert f"note: {run_id} finished on other data than there is now (labels of the 10 validation images changed): " \
           f"training it afresh; its old files are in {kept}" in proc.stdout
    assert json.loads((kept / "run" / "result.json").read_text()) == before
    assert (kept / "checkpoints" / "best" / "model.pdparams").exists()
    after = results(outputs)[run_id]
    assert after["data"]["val"]["labels_digest"] != before["data"]["val"]["labels_digest"]
    assert after["data"]["val"]["ids"] == before["data"]["val"]["ids"]
    assert "1 done;" in cli("sweep", path, "--data-root", tmp_path, check=True).stdout  # now it is done


def test_an_interrupted_run_is_never_resumed_onto_other_validation_images(tmp_path, outputs):
    pm = small_copy(tmp_path)
    path = tiny_experiment(tmp_path, ONE, epochs=3)
    killed = cli("train", path, "--data-root", tmp_path, env={"RUNNER_FAULT": "eval:2"})  # dies in epoch 2
    assert killed.returncode != 0
    run_id = next((outputs / "tiny" / "checkpoints").iterdir()).name
    add_validation_images(pm, ["V0011.jpg", "V0012.jpg"])
    expected = "validation images 2 added (e.g. PALM-Validation400/V0011.jpg): 12 now, 10 then"
    one_line_error(cli("sweep", path, "--data-root", tmp_path), f"{run_id} was interrupted after epoch 1", expected)
    one_line_error(cli("train", path, "--data-root", tmp_path), f"{run_id} was interrupted after epoch 1", expected)
    # the worker itself refuses too, should the data change after the sweep planned the run
    from runner.config import RunSpec
    from runner.store.jobs import worker_command, worker_environment, write_job
    from runner.store.layout import SweepPaths

    sweep = SweepPaths(outputs / "tiny")
    paths = sweep.run_paths(run_id)
    config = json.loads(paths.run_json.read_text())["config"]
    write_job(sweep, RunSpec("tiny", config), tmp_path)
    worker = subprocess.run(worker_command(paths, config), capture_output=True, text=True, env=worker_environment())
    assert worker.returncode == 3
    error = paths.error.read_text()
    assert f"{run_id}: its checkpoint of epoch 1 was trained on other data than there is now ({expected})" in error
    assert "is not resumed onto it" in error
    cli("sweep", path, "--data-root", tmp_path, "--retrain-stale", check=True)
    result = results(outputs)[run_id]
    assert result["val_images"] == 12 and result["epochs_run"] == 3 and result["data"]["val"]["images"] == 12
    assert resumed_at(outputs / "tiny" / "runs" / run_id / "train.log") == [0]  # from scratch, not after epoch 1
    assert len(np.load(outputs / "tiny" / "runs" / run_id / "predictions.npz")["labels"]) == 12


def test_a_search_on_changed_data_refuses_and_says_how_to_start_a_new_study(tmp_path, outputs):
    pm = small_copy(tmp_path, n_train=24)
    path = write_toml(tmp_path, """
        name = "srch"
        [defaults]
        dataset = "ichallenge-pm"
        image_size = 32
        epochs = 2
        batch_size = 16
        validation = "holdout:0.25"
        [[runs]]
        model = "lenet"
        [search]
        trials = 2
        pruner = "none"
        final_seeds = [0]
        [search.space]
        "optimizer.learning_rate" = { log = [1e-4, 1e-2] }
        """, "srch.toml")
    cli("sweep", path, "--data-root", tmp_path, check=True)
    flip_a_label(pm)  # the official validation labels: the final seed's images
    proc = cli("sweep", path, "--data-root", tmp_path)
    one_line_error(proc, "finished (labels of the 10 validation images changed)", "The search's study holds the "
                   "scores of those runs", f"move {outputs / 'srch'} aside")
    one_line_error(cli("sweep", path, "--data-root", tmp_path, "--retrain-stale"), "--retrain-stale is for sweeps")


def test_runs_of_an_older_runner_without_a_fingerprint_are_kept_and_reported_as_such(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE + '[[runs]]\nmodel = "lenet"\nseed = 1\n', epochs=1)
    cli("sweep", path, check=True)
    for result in (outputs / "tiny" / "runs").glob("*/result.json"):  # as the runner before this one wrote it
        data = json.loads(result.read_text())
        del data["data"]
        result.write_text(json.dumps(data))
    assert "2 done;" in cli("sweep", path, check=True).stdout  # nothing to check them against: kept
    report = json.loads(cli("report", outputs / "tiny", "--format", "json", "--ensemble", check=True).stdout)
    for run in report["runs"]:
        assert run["data_fingerprint"] is None and run["mcnemar_p"] is None and run["delong_p"] is None
        assert run["paired_note"].startswith("no data fingerprint (written by an older runner)")
    (group,) = report["seed_groups"]
    assert group["welch_p"] is None and group["data_note"] == "2 of 2 runs have no data fingerprint (written by an older runner)"
    (ensemble,) = report["ensembles"]
    assert ensemble["acc"] is None and ensemble["reason"].startswith("no data fingerprint")
    table = cli("report", outputs / "tiny", check=True).stdout
    assert all(line.split("|")[-2].strip() == "— (no data fingerprint)" for line in first_table(table))


# ---- the caches, keyed by content -----------------------------------------------------------------

def test_a_file_rewritten_with_the_same_size_and_mtime_is_decoded_again(tmp_path):
    from runner.data import load_splits

    small_copy(tmp_path)
    cache = tmp_path / "cache"
    first = load_splits("ichallenge-pm", 32, tmp_path, cache_dir=cache)
    image = sorted((tmp_path / "ichallenge-pm" / "PALM-Training400").glob("*.jpg"))[0]
    same_size_other_bytes(image)
    again = load_splits("ichallenge-pm", 32, tmp_path, cache_dir=cache)
    assert first.train.images[0].max() > 0 and again.train.images[0].max() == 0
    assert again.fingerprint["train"]["content_digest"] != first.fingerprint["train"]["content_digest"]
    assert again.fingerprint["val"] == first.fingerprint["val"]


def fake_cifar_archive(path, shift: int):
    """An uncompressed Cifar10 archive of 50 + 10 images: the same size for every `shift`."""
    rng = np.random.RandomState(shift)
    with tarfile.open(path, "w") as tar:
        for name, count in [(f"data_batch_{i}", 10) for i in range(1, 6)] + [("test_batch", 10)]:
            batch = {b"data": rng.randint(0, 256, (count, 3072)).astype(np.uint8),
                     b"labels": [(i + shift) % 10 for i in range(count)]}
            member = path.parent / name
            member.write_bytes(pickle.dumps(batch, protocol=2))
            tar.add(member, arcname=f"cifar-10-batches-py/{name}")


def test_a_cifar10_archive_rewritten_with_the_same_size_and_mtime_is_read_again(tmp_path):
    from runner.data import open_dataset

    folder = tmp_path / "cifar10"
    folder.mkdir()
    archive = folder / "cifar-10-python.tar.gz"
    fake_cifar_archive(archive, 0)
    cache = tmp_path / "cache"
    first = open_dataset("cifar10", tmp_path).labels("train", cache)
    st = archive.stat()
    fake_cifar_archive(archive, 3)
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert archive.stat().st_size == st.st_size
    again = open_dataset("cifar10", tmp_path).labels("train", cache)
    assert list(first[:3]) == [0, 1, 2] and list(again[:3]) == [3, 4, 5]
    from runner.data import fingerprint_of

    before = fingerprint_of("cifar10", tmp_path, cache_dir=cache)
    assert before["train"]["ids"][:2] == ["train/0", "train/1"] and before["val"]["ids"][-1] == "test/9"


# ---- comparisons only between runs scored on the same images --------------------------------------

def two_copies(tmp_path):
    """Two data roots with the same training images and ten validation images each, other ones."""
    first, second = tmp_path / "a", tmp_path / "b"
    small_copy(first)
    pm = small_copy(second)
    old = rows_of(pm)
    add_validation_images(pm, [f"V{i:04d}.jpg" for i in range(11, 21)])
    for row in old:
        (pm / "PALM-Validation400" / row["imgName"]).unlink()
    write_rows(pm, rows_of(pm)[len(old):])
    return first, second


def test_a_report_over_two_sweeps_on_other_images_of_the_same_size_pairs_nothing_across_them(tmp_path, outputs):
    first, second = two_copies(tmp_path)
    cli("sweep", tiny_experiment(tmp_path, ONE, name="one", epochs=1), "--data-root", first, check=True)
    two = tiny_experiment(tmp_path, ONE.replace("lenet", "alexnet") + '[[runs]]\nmodel = "lenet"\nseed = 1\n',
                          name="two", epochs=1)
    cli("sweep", two, "--data-root", second, check=True)
    report = json.loads(cli("report", outputs / "one", outputs / "two", "--format", "json", "--ensemble",
                            check=True).stdout)
    runs = {r["run_id"]: r for r in report["runs"]}
    assert len(runs) == 3 and {r["data_fingerprint"]["val"]["images"] for r in runs.values()} == {10}
    (alone,) = [r for r in runs.values() if r["run_id"] in results(outputs, "one")]
    assert alone["mcnemar_p"] is None and alone["delong_p"] is None and alone["compared_with"] is None
    assert alone["paired_note"].startswith("no other run was scored on its validation images")
    pair = [r for r in runs.values() if r["run_id"] in results(outputs, "two")]
    best, other = sorted(pair, key=lambda r: not r["is_best"])
    assert best["is_best"] and other["compared_with"] == best["run_id"] and 0 <= other["mcnemar_p"] <= 1
    lenet = next(g for g in report["seed_groups"] if g["model"] == "lenet")
    assert lenet["seeds"] == 2 and lenet["val_sets"] == 2 and lenet["data_note"] == \
        "its runs saw different data: 2 validation sets"
    (ensemble,) = [e for e in report["ensembles"] if e["model"] == "lenet"]
    assert ensemble["acc"] is None and ensemble["reason"] == "its runs were scored on 2 different sets of validation images"
    table = cli("report", outputs / "one", outputs / "two", "--ensemble", check=True).stdout
    assert "— (no other run was scored on its validation images)" in table and "val images" in table
    assert "lenet: its runs saw different data: 2 validation sets." in table
    assert "— (not an ensemble: its runs were scored on 2 different sets of validation images)" in table


def test_the_same_run_on_other_data_in_two_folders_is_shown_twice_not_merged(tmp_path, outputs):
    first, second = two_copies(tmp_path)
    path = tiny_experiment(tmp_path, ONE, epochs=1)
    cli("sweep", path, "--data-root", first, check=True)
    shutil.move(outputs / "tiny", tmp_path / "tiny-a")
    cli("sweep", path, "--data-root", second, check=True)
    proc = cli("report", tmp_path / "tiny-a", outputs / "tiny", check=True)
    rows = first_table(proc.stdout)
    assert len(rows) == 2 and sum("(other data than in tiny-a)" in r for r in rows) == 1
    assert "shown once" not in proc.stdout + proc.stderr


def test_k_folds_are_not_an_ensemble(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE + 'validation = "kfold:2"\n', epochs=1)
    cli("sweep", path, check=True)
    report = json.loads(cli("report", outputs / "tiny", "--format", "json", "--ensemble", check=True).stdout)
    (ensemble,) = report["ensembles"]
    assert ensemble["acc"] is None and ensemble["mcnemar_p"] is None
    assert ensemble["reason"] == ("its runs were scored on 2 different sets of validation images "
                                  "(2 folds of cross-validation are not an ensemble)")
    (group,) = report["seed_groups"]
    assert group["val_sets"] == 2 and group["data_note"].startswith("cross-validation: each of the 2 folds")
    assert all(r["mcnemar_p"] is None for r in report["runs"])


def test_a_large_split_keeps_only_the_digest_of_its_ids_and_a_change_is_still_named():
    from runner.store.fingerprint import LISTED_IDS, data_fingerprint, split_fingerprint, what_changed

    def fingerprint(train_ids):
        train = split_fingerprint(train_ids, np.zeros(len(train_ids)), "content")
        val = split_fingerprint(["test/0", "test/1"], [0, 1], "content")
        return data_fingerprint("cifar10", ["a", "b"], "val", train, val)

    many = [f"train/{i}" for i in range(LISTED_IDS + 1)]
    big, reordered = fingerprint(many), fingerprint(many[1:] + many[:1])
    assert "ids" not in big["train"] and big["val"]["ids"] == ["test/0", "test/1"]
    assert len(json.dumps(big)) < 2000  # the digests, not 5001 ids
    assert what_changed(big, fingerprint(list(many))) is None
    said = what_changed(big, reordered)
    assert said.startswith("training images changed (another selection or order)") and f"{LISTED_IDS + 1} now" in said
    # a small split still names the image that came or went
    assert "1 removed (e.g. train/2)" in what_changed(fingerprint(many[:3]), fingerprint(many[:2]))

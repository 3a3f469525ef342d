import csv
import shutil
import time

import numpy as np
import openpyxl
import pytest

from conftest import DATA_ROOT, PM, cli, small_copy
from runner.data import check_dataset, load_splits, open_dataset
from runner.errors import DataError


def distributed_layout(root, with_xlsx=True, header=("ID", "imgName", "Label", "Fovea_X", "Fovea_Y")):
    """iChallenge-PM as the challenge distributes it, built from symlinks to the shared copy."""
    pm = root / "ichallenge-pm"
    train = pm / "PALM-Training400" / "PALM-Training400"
    val = pm / "PALM-Validation400"
    train.mkdir(parents=True)
    val.mkdir(parents=True)
    for image in (PM / "PALM-Training400").glob("*.jpg"):
        (train / image.name).symlink_to(image)
    for image in (PM / "PALM-Validation400").glob("*.jpg"):
        (val / image.name).symlink_to(image)
    (train / ".DS_Store").write_bytes(b"\0\1junk")
    (pm / "PALM-Training400" / "Thumbs.db").write_bytes(b"junk")
    if with_xlsx:
        gt = pm / "PALM-Validation-GT"
        gt.mkdir()
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(list(header))
        with open(PM / "labels.csv") as f:
            for row in csv.DictReader(f):
                sheet.append([int(row["ID"]), row["imgName"], int(row["Label"]), float(row["Fovea_X"]),
                              float(row["Fovea_Y"])])
        book.save(gt / "PM_Label_and_Fovea_Location.xlsx")
    return pm


def test_check_shared_ichallenge_counts():
    report = check_dataset("ichallenge-pm", DATA_ROOT)
    assert report.ok, report.problems
    assert report.splits["train"].count == 400
    assert report.splits["train"].per_class == {"0 non-PM (H+N)": 187, "1 PM": 213}
    assert report.splits["val"].count == 400
    assert report.splits["val"].per_class == {"0 non-PM (H+N)": 189, "1 PM": 211}
    assert report.splits["train"].sizes == {(224, 224): 400}


def test_cli_data_check_prints_counts():
    proc = cli("data", "check", "ichallenge-pm", "--data-root", DATA_ROOT, check=True)
    assert "400" in proc.stdout and "PM: 213" in proc.stdout and "PM: 211" in proc.stdout
    assert "(H+N): 187" in proc.stdout and "(H+N): 189" in proc.stdout


def test_distributed_layout_with_xlsx_labels(tmp_path):
    distributed_layout(tmp_path)
    report = check_dataset("ichallenge-pm", tmp_path)
    assert report.ok, report.problems[:3]
    assert report.splits["train"].count == 400 and report.splits["val"].count == 400
    assert report.splits["val"].per_class == {"0 non-PM (H+N)": 189, "1 PM": 211}
    proc = cli("data", "check", "ichallenge-pm", "--data-root", tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_xlsx_with_other_column_names_is_refused(tmp_path):
    distributed_layout(tmp_path, header=("ID", "file", "class", "x", "y"))
    with pytest.raises(DataError) as err:
        check_dataset("ichallenge-pm", tmp_path)
    message = str(err.value)
    assert "PM_Label_and_Fovea_Location.xlsx" in message and "imgName" in message and "file, class" in message


def bad_input_cases():
    def truncated(pm):
        path = next((pm / "PALM-Training400").glob("*.jpg"))
        path.write_bytes(path.read_bytes()[:2000])
        return f"{path}: truncated JPEG"

    def zero_byte(pm):
        path = sorted((pm / "PALM-Training400").glob("*.jpg"))[1]
        path.write_bytes(b"")
        return f"{path}: zero-byte file"

    def label_without_image(pm):
        path = sorted((pm / "PALM-Validation400").glob("*.jpg"))[0]
        path.unlink()
        return f"image {path.name} is listed but missing"

    def image_without_label(pm):
        extra = pm / "PALM-Validation400" / "V0399.jpg"
        shutil.copy(PM / "PALM-Validation400" / "V0399.jpg", extra)
        return f"{extra}: image has no label"

    def not_an_image(pm):
        path = pm / "PALM-Training400" / "P9999.png"
        path.write_bytes(b"this is text, not a picture")
        return f"{path}: not a readable image"

    def unknown_class_letter(pm):
        path = pm / "PALM-Training400" / "X0001.jpg"
        shutil.copy(next((pm / "PALM-Training400").glob("*.jpg")), path)
        return "cannot tell the class from the file name"

    def bad_label_value(pm):
        text = (pm / "labels.csv").read_text().splitlines()
        fields = text[1].split(",")
        fields[2] = "7"
        text[1] = ",".join(fields)
        (pm / "labels.csv").write_text("\n".join(text) + "\n")
        return "label 7 for"

    return [truncated, zero_byte, label_without_image, image_without_label, not_an_image, unknown_class_letter,
            bad_label_value]


@pytest.mark.parametrize("damage", bad_input_cases(), ids=lambda f: f.__name__)
def test_bad_files_are_named_by_check_and_refused_by_training(tmp_path, damage):
    pm = small_copy(tmp_path)
    expected = damage(pm)
    report = check_dataset("ichallenge-pm", tmp_path)
    assert any(expected in p for p in report.problems), report.problems
    proc = cli("data", "check", "ichallenge-pm", "--data-root", tmp_path)
    assert proc.returncode == 1 and expected in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(DataError) as err:
        load_splits("ichallenge-pm", 32, tmp_path)
    assert expected in str(err.value)


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    pm = small_copy(tmp_path)
    images = sorted((pm / "PALM-Training400").glob("*.jpg"))
    images[0].write_bytes(b"")
    images[1].write_bytes(b"")
    report = check_dataset("ichallenge-pm", tmp_path)
    assert sum("zero-byte" in p for p in report.problems) == 2


@pytest.mark.parametrize("case", ["missing_labels", "malformed_labels", "empty_folder", "wrong_root"])
def test_missing_or_malformed_structure(tmp_path, case):
    pm = small_copy(tmp_path)
    root = tmp_path
    if case == "missing_labels":
        (pm / "labels.csv").unlink()
        expected = "no validation label file"
    elif case == "malformed_labels":
        (pm / "labels.csv").write_text("name;class\nV0001.jpg;1\n")
        expected = "lacks column(s) imgName, Label"
    elif case == "empty_folder":
        for image in (pm / "PALM-Training400").iterdir():
            image.unlink()
        expected = "no training images"
    else:
        root = tmp_path / "nowhere"
        expected = "does not exist"
    proc = cli("data", "check", "ichallenge-pm", "--data-root", root)
    assert proc.returncode == 1
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_cache_is_reused_and_rebuilt_when_a_file_changes(tmp_path):
    pm = small_copy(tmp_path)
    cache = tmp_path / "cache"
    first = load_splits("ichallenge-pm", 32, tmp_path, cache_dir=cache)
    entries = sorted(cache.rglob("*.npy"))
    assert len(entries) == 22
    stamps = {p: p.stat().st_mtime_ns for p in entries}
    again = load_splits("ichallenge-pm", 32, tmp_path, cache_dir=cache)
    np.testing.assert_array_equal(first.train.images, again.train.images)
    assert {p: p.stat().st_mtime_ns for p in entries} == stamps  # read, not rewritten
    image = sorted((pm / "PALM-Training400").glob("*.jpg"))[0]
    black = np.zeros((224, 224, 3), np.uint8)
    import cv2
    time.sleep(0.01)
    cv2.imwrite(str(image), black)
    changed = load_splits("ichallenge-pm", 32, tmp_path, cache_dir=cache)
    assert changed.train.images[0].max() == 0 and first.train.images[0].max() > 0


def test_items_are_chw_float_in_unit_range_with_int64_labels():
    splits = load_splits("ichallenge-pm", 48, DATA_ROOT, train_limit=20, val_limit=10)
    x, y = splits.train[3]
    assert x.shape == (3, 48, 48) and x.dtype == np.float32 and -1.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == np.int64 and y.shape == (1,)
    assert len(splits.train) == 20 and len(splits.val) == 10
    assert set(splits.train.labels) == {0, 1}  # a slice is spread over both classes


def test_holdout_split_is_stratified_fixed_and_disjoint():
    splits = load_splits("ichallenge-pm", 32, DATA_ROOT, validation="holdout:0.2")
    assert len(splits.val) == 80 and len(splits.train) == 320
    assert abs(splits.val.labels.mean() - 213 / 400) < 0.02
    again = load_splits("ichallenge-pm", 32, DATA_ROOT, validation="holdout:0.2")
    np.testing.assert_array_equal(splits.val.images, again.val.images)


def test_cifar10_counts():
    report = check_dataset("cifar10", DATA_ROOT)
    assert report.ok, report.problems
    assert report.splits["train"].count == 50000 and report.splits["val"].count == 10000
    assert set(report.splits["train"].per_class.values()) == {5000}
    assert set(report.splits["val"].per_class.values()) == {1000}


def test_cifar10_missing_archive_tries_download_then_names_the_path(tmp_path, monkeypatch):
    from paddle.vision.datasets import cifar

    (tmp_path / "cifar10").mkdir()
    monkeypatch.setattr(cifar, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens
    monkeypatch.setenv("HOME", str(tmp_path))  # paddle's download cache
    with pytest.raises(DataError) as err:
        open_dataset("cifar10", tmp_path).load("train", 32, None)
    message = str(err.value)
    assert str(tmp_path / "cifar10" / "cifar-10-python.tar.gz") in message and "offline" in message


def test_folder_dataset(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for image in sorted((PM / "PALM-Training400").glob("*.jpg"))[:10]:
            shutil.copy(image, tmp_path / "pets" / cls / f"{cls}-{image.name}")
    splits = load_splits(f"folder:{tmp_path / 'pets'}", 32)
    assert splits.class_names == ["cats", "dogs"]
    assert len(splits.val) == 4 and len(splits.train) == 16


def test_kfold_folds_are_disjoint_stratified_fixed_and_cover_every_training_image():
    from runner.validation import fold_numbers, parse_validation, split_indices

    labels = np.array([1] * 213 + [0] * 187)  # iChallenge-PM's training classes
    folds = fold_numbers(labels, 5)
    assert set(folds) == {1, 2, 3, 4, 5} and np.array_equal(folds, fold_numbers(labels, 5))  # fixed
    sizes = np.bincount(folds)[1:]
    assert sizes.sum() == 400 and sizes.max() - sizes.min() <= 1  # every image in exactly one fold
    for fold in range(1, 6):
        positives = int(((folds == fold) & (labels == 1)).sum())
        assert positives in (213 // 5, 213 // 5 + 1)  # stratified
        train, val = split_indices(labels, parse_validation("kfold:5"), fold)
        assert not set(train) & set(val) and len(train) + len(val) == 400
    assert np.array_equal(np.sort(np.concatenate([split_indices(labels, parse_validation("kfold:5"), f)[1]
                                                  for f in range(1, 6)])), np.arange(400))


def test_kfold_runs_are_one_per_fold_and_the_report_groups_them(tmp_path, outputs):
    import json

    from conftest import tiny_experiment
    from runner.config import load_experiment

    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nvalidation = "kfold:3"\ntrain_limit = 0\n'
                                     'val_limit = 0\nimage_size = 28\n', epochs=1)
    runs = load_experiment(path).runs
    assert [r.config["fold"] for r in runs] == [1, 2, 3] and len({r.run_id for r in runs}) == 3
    cli("sweep", path, check=True)
    data = json.loads(cli("report", outputs / "tiny", "--format", "json", check=True).stdout)
    assert sorted(r["validation"] for r in data["runs"]) == ["kfold:3"] * 3
    (group,) = data["seed_groups"]
    assert group["model"] == "lenet (3 folds)" and group["seeds"] == 3 and group["acc_std"] is not None
    results = [json.loads(p.read_text()) for p in (outputs / "tiny" / "runs").glob("*/result.json")]
    assert sum(r["val_images"] for r in results) == 400 and all(r["train_images"] + r["val_images"] == 400
                                                               for r in results)

"""`folder:` data never skips silently: every entry under the folder is used or named with why, by
`runner data check` and in the run's notes, and a layout whose meaning is unclear is refused."""
import shutil

import pytest

from conftest import PM, cli, tiny_experiment
from test_nothing_silently_wrong import image_folder, one_line_error

ONE = '[[runs]]\nmodel = "lenet"\n'
JPG = sorted((PM / "PALM-Training400").glob("*.jpg"))[100]


def on_folder(tmp_path, dataset, epochs=1):
    experiment = tiny_experiment(tmp_path, ONE, epochs=epochs)
    experiment.write_text(experiment.read_text().replace('dataset = "ichallenge-pm"', f'dataset = "{dataset}"')
                          .replace("train_limit = 48", "train_limit = 0").replace("val_limit = 32", "val_limit = 0"))
    return experiment


def odd_entries(root, class_dir):
    """Everything a real folder of images picks up besides its images, each with the reason it is named."""
    (class_dir / "notes.txt").write_text("taken on 2019-05-01")
    (class_dir / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    shutil.copy(JPG, class_dir / "._P0001.jpg")  # the resource fork macOS leaves beside a copied image
    (class_dir / "Thumbs.db").write_bytes(b"\xd0\xcf")
    shutil.copy(JPG, class_dir / "photo.webp")
    (class_dir / "2019").mkdir()
    shutil.copy(JPG, class_dir / "2019" / "P9001.jpg")
    shutil.copy(JPG, class_dir / "2019" / "P9002.jpg")
    (class_dir / "gone.jpg").symlink_to(root / "nowhere.jpg")
    return {
        "notes.txt": "not an image: .txt is not one of .bmp, .jpeg, .jpg, .png, .tif, .tiff",
        ".DS_Store": "a hidden file", "._P0001.jpg": "a hidden file",
        "Thumbs.db": "not an image: .db is not one of", "photo.webp": "not an image: .webp is not one of",
        "2019": f"a folder inside class folder '{class_dir.name}', holding 2 file(s): images of a class sit directly "
                f"in {class_dir}",
        "gone.jpg": "not a regular file (a link to nothing?)",
    }


@pytest.mark.parametrize("layout", ["train/val", "one folder"])
def test_every_entry_not_used_is_named_with_why_by_check_and_in_the_runs_notes(tmp_path, outputs, layout):
    root = tmp_path / "pets"
    split = "train/" if layout == "train/val" else ""
    dataset = image_folder(root, {f"{split}cat": 10, f"{split}dog": 10, **({"val/cat": 3, "val/dog": 3}
                                                                          if split else {})})
    expected = {root / split / "cat" / name: why for name, why in odd_entries(root, root / split / "cat").items()}
    (root / split / ".ipynb_checkpoints").mkdir()
    expected[root / split / ".ipynb_checkpoints"] = "a hidden folder, not taken as a class"
    shutil.copy(JPG, root / split / "stray.jpg")
    expected[root / split / "stray.jpg"] = "not inside a class folder"
    shutil.copy(JPG, root / split / "dog" / "UPPER.JPG")  # an image all the same: counted, not named
    if split:
        (root / "README.md").write_text("pets")
        expected[root / "README.md"] = "not inside train/ or val/"
    check = cli("data", "check", dataset)
    assert check.returncode == 0, check.stderr
    assert f"{len(expected)} not used:" in check.stdout
    for path, why in expected.items():
        assert f"{path}: not used ({why}" in check.stdout, (path, check.stdout)
    assert "UPPER.JPG" not in check.stdout
    used = 10 + 11 + (6 if split else 0)
    counted = sum(int(line.split()[1]) for line in check.stdout.splitlines() if line.startswith(("  train", "  val")))
    assert counted == used
    proc = cli("train", on_folder(tmp_path, dataset), check=True)
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note: ")]
    for path, why in expected.items():
        assert any(f"note: {path}: not used ({why}" in note for note in notes), (path, proc.stderr)


@pytest.mark.parametrize("layout, expected", [
    ({"val/cat": 3, "val/dog": 3, "cat": 10, "dog": 10}, "has val/ but no train/, so which images train is unclear"),
    ({"test/cat": 3, "test/dog": 3, "cat": 10, "dog": 10}, "has test/ but no train/"),
    ({"validation/cat": 3, "validation/dog": 3}, "has validation/ but no train/"),
    ({"cat": 10}, "one class folder only ('cat'); a classifier needs two or more"),
    ({"train/cat": 10, "val/cat": 3}, "one class folder only ('cat')"),
    ({"train/cat": 5, "train/dog": 5, "val/cat": 2, "val/dog": 2, "val/bird": 2},
     "val/bird: a class folder with no counterpart in"),
])
def test_a_layout_whose_meaning_is_unclear_is_refused_by_check_and_by_training(tmp_path, outputs, layout, expected):
    dataset = image_folder(tmp_path / "pets", layout)
    one_line_error(cli("data", "check", dataset), expected)
    one_line_error(cli("train", on_folder(tmp_path, dataset)), expected)
    assert not list(outputs.glob("*/runs/*/result.json"))


def test_a_second_validation_folder_is_named_and_the_first_is_used(tmp_path):
    """train/, val/ and test/: val/ scores the runs (test/ is kept out of every number), as one would
    expect of the usual three folders."""
    root = tmp_path / "pets"
    dataset = image_folder(root, {"train/cat": 5, "train/dog": 5, "val/cat": 2, "val/dog": 3, "test/cat": 4,
                                  "test/dog": 4})
    check = cli("data", "check", dataset, check=True)
    assert "  val         5 images" in check.stdout
    assert f"{root / 'test'}: not used (the validation images are those of {root / 'val'})" in check.stdout


def test_valid_is_taken_for_val(tmp_path):
    dataset = image_folder(tmp_path / "pets", {"train/cat": 5, "train/dog": 5, "valid/cat": 2, "valid/dog": 2})
    check = cli("data", "check", dataset, check=True)
    assert "  val         4 images" in check.stdout and "not used" not in check.stdout

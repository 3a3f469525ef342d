"""The fifteen ways the runner was silently wrong or lost text (docs/reliability.md, rows 41-55), each
driven through the command line as a user would meet it, with more inputs than the one first found."""
import csv
import json
import shutil
import sqlite3

import cv2
import numpy as np
import openpyxl
import pytest

from conftest import PM, cli, first_table, one_line_error, small_copy, tiny_experiment, write_toml
from runner.config import load_experiment, parse_experiment

ONE = '[[runs]]\nmodel = "lenet"\n'


def image_folder(root, layout: dict) -> str:
    """folder:<root> with {split/class: number of images} copied from iChallenge-PM."""
    source = sorted((PM / "PALM-Training400").glob("*.jpg"))
    taken = 0
    for sub, count in layout.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for image in source[taken:taken + count]:
            shutil.copy(image, root / sub / image.name)
        taken += count
    return f"folder:{root}"


# ---- 1. empty splits and classes ------------------------------------------------------------------

@pytest.mark.parametrize("layout, split, cls", [
    ({"train/cat": 4, "train/dog": 4, "val/cat": 2, "val/dog": 0}, "val", "dog"),
    ({"train/cat": 4, "train/dog": 0, "val/cat": 2, "val/dog": 2}, "train", "dog"),
    ({"cat": 10, "dog": 3}, "val", "dog"),  # one image in five held out: three dogs leave none
])
def test_an_empty_split_or_class_is_refused_by_check_and_by_training(tmp_path, outputs, layout, split, cls):
    dataset = image_folder(tmp_path / "pets", layout)
    check = cli("data", "check", dataset)
    assert check.returncode == 1 and f"the {split} split has no images of class '{cls}'" in check.stderr
    assert "ok" not in check.stdout
    experiment = tiny_experiment(tmp_path, ONE)
    experiment.write_text(experiment.read_text().replace('dataset = "ichallenge-pm"', f'dataset = "{dataset}"'))
    proc = cli("train", experiment)
    one_line_error(proc, f"the {split} split has no images of class '{cls}'")
    assert not list(outputs.glob("*/runs/*/result.json"))


def test_a_limit_that_leaves_a_class_out_of_the_validation_images_is_refused(tmp_path, outputs):
    proc = cli("train", tiny_experiment(tmp_path, ONE), "--set", "val_limit=1")
    one_line_error(proc, "the val split has no images of class", "raise val_limit (now 1)")


def test_labels_of_one_class_only_leave_the_other_class_empty(tmp_path):
    pm = small_copy(tmp_path)
    rows = list(csv.DictReader(open(pm / "labels.csv")))
    with open(pm / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(r for r in rows if r["Label"] == "0")
    for r in rows:
        if r["Label"] != "0":
            (pm / "PALM-Validation400" / r["imgName"]).unlink()
    check = cli("data", "check", "ichallenge-pm", "--data-root", tmp_path)
    assert check.returncode == 1 and "the val split has no images of class 'PM'" in check.stderr


# ---- 2. label sources: duplicates, conflicts, fractions --------------------------------------------

def write_labels(pm, rows, kind: str):
    if kind == "csv":
        with open(pm / "labels.csv", "w", newline="") as f:
            csv.writer(f).writerows([("ID", "imgName", "Label")] + rows)
        return
    (pm / "labels.csv").unlink()
    (pm / "PALM-Validation-GT").mkdir()
    book = openpyxl.Workbook()
    for row in [("ID", "imgName", "Label")] + rows:
        book.active.append(list(row))
    book.save(pm / "PALM-Validation-GT" / "PM_Label_and_Fovea_Location.xlsx")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
@pytest.mark.parametrize("change, expected", [
    (lambda rows: rows + [(99, rows[0][1], rows[0][2])], "is listed again (first at line 2); keep one row"),
    (lambda rows: rows + [(99, rows[0][1], 1 - rows[0][2])], "with another label"),
    (lambda rows: rows[:1] + rows + rows[-1:], "V0010.jpg is listed again (first at line 12)"),
    (lambda rows: [(rows[0][0], rows[0][1], 0.9)] + rows[1:], "label 0.9 for V0001.jpg is not 0 or 1"),
    (lambda rows: [(rows[0][0], rows[0][1], "1.6")] + rows[1:], "label 1.6 for V0001.jpg is not 0 or 1"),
    (lambda rows: [(rows[0][0], rows[0][1], "yes")] + rows[1:], "label yes for V0001.jpg is not 0 or 1"),
])
def test_duplicate_conflicting_and_fractional_labels_are_refused(tmp_path, kind, change, expected):
    pm = small_copy(tmp_path)
    rows = [(int(r["ID"]), r["imgName"], int(r["Label"])) for r in csv.DictReader(open(pm / "labels.csv"))]
    write_labels(pm, change(rows), kind)
    check = cli("data", "check", "ichallenge-pm", "--data-root", tmp_path)
    assert check.returncode == 1 and expected in check.stderr, check.stderr
    counted = int(check.stdout.split("val", 1)[1].split("images")[0])
    assert counted == (10 if "listed again" in expected or "another label" in expected else 9)  # each image once; a refused label not at all


def test_whole_numbers_written_as_floats_in_a_spreadsheet_are_labels(tmp_path):
    pm = small_copy(tmp_path)
    rows = [(int(r["ID"]), r["imgName"], float(r["Label"])) for r in csv.DictReader(open(pm / "labels.csv"))]
    write_labels(pm, rows, "xlsx")
    assert cli("data", "check", "ichallenge-pm", "--data-root", tmp_path).returncode == 0


@pytest.mark.parametrize("second_class, expected", [("dog", "labelled 'cat' there and 'dog' here"),
                                                    ("cat", "the same file as")])
def test_one_file_linked_twice_into_a_folder_dataset_is_refused(tmp_path, second_class, expected):
    dataset = image_folder(tmp_path / "pets", {"train/cat": 3, "train/dog": 3, "val/cat": 2, "val/dog": 2})
    first = next((tmp_path / "pets" / "train" / "cat").iterdir())
    (tmp_path / "pets" / "train" / second_class / "zz-link.jpg").symlink_to(first)
    check = cli("data", "check", dataset)
    assert check.returncode == 1 and expected in check.stderr, check.stderr


# ---- 3. the summary and the exit code speak of the file's runs -------------------------------------

def test_runs_no_longer_in_the_file_leave_the_summary_and_the_exit_code(tmp_path, outputs):
    diverging = '[[runs]]\nmodel = "lenet"\nseed = 5\nimage_size = 16\n'  # fails as it starts: lenet needs 28 px
    path = tiny_experiment(tmp_path, ONE + diverging)
    first = cli("sweep", path)
    assert first.returncode == 1 and "1 done, 1 failed" in first.stdout
    path.write_text(path.read_text().replace(diverging, ""))  # the user drops the failing run
    again = cli("sweep", path, check=True)
    assert "1 done;" in again.stdout and "failed" not in again.stdout + again.stderr
    cli("train", path, "--set", "seed=7", check=True)  # another run trained into the same folder
    third = cli("sweep", path, check=True)
    assert "1 done;" in third.stdout
    table = (outputs / "tiny" / "results.md").read_text()
    assert sum("(--set seed=7)" in line for line in first_table(table)) == 1  # the seed-7 run, marked by its --set
    cli("sweep", path, "--set", "seed=3", check=True)
    table = (outputs / "tiny" / "results.md").read_text()
    rows = [line for line in first_table(table) if line.startswith("| lenet-")]
    assert len(rows) == 3 and sum("(--set seed=" in r for r in rows) == 2 and "not in the file" not in table
    path.write_text(path.read_text().replace('model = "lenet"', 'model = "lenet"\nseed = 9'))  # the file changes
    cli("sweep", path, check=True)
    rows = first_table((outputs / "tiny" / "results.md").read_text())
    assert sum("(not in the file)" in r for r in rows) == 1  # the seed-0 run: the file no longer holds it


# ---- 4. predict with another network's weights ---------------------------------------------------

def test_predict_refuses_a_checkpoint_of_another_network(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE + '[[runs]]\nmodel = "lenet"\nimage_size = 48\n', epochs=1)
    cli("sweep", path, check=True)
    small, large = sorted((outputs / "tiny" / "checkpoints").iterdir(), key=lambda p: "48" in (p / "run.json").read_text())
    shutil.copy(large / "best" / "model.pdparams", small / "best" / "model.pdparams")
    proc = cli("predict", small, PM / "PALM-Validation400" / "V0001.jpg")
    one_line_error(proc, f"{small / 'best' / 'model.pdparams'} does not fit the network of {small / 'run.json'} (lenet)",
                   "1 tensor has another shape (e.g. fc1.weight: ")
    assert "Skip loading" not in proc.stderr and "probabilit" not in proc.stdout.lower()


# ---- 5. one run, one id --------------------------------------------------------------------------

def test_integers_given_for_float_keys_are_the_same_run(tmp_path):
    base = {"defaults": {"dataset": "ichallenge-pm"}}
    spelled = [({"model": "lenet", "label_smoothing": 0, "optimizer": {"name": "sgd", "learning_rate": 1}}, ()),
               ({"model": "lenet", "label_smoothing": 0.0, "optimizer": {"name": "sgd", "learning_rate": 1.0}}, ()),
               ({"model": "lenet", "optimizer": {"name": "sgd", "learning_rate": 0.5}},
                ("label_smoothing=0", "optimizer.learning_rate=1"))]
    ids = {parse_experiment({**base, "runs": [run]}, tmp_path / "x.toml", sets).runs[0].run_id for run, sets in spelled}
    assert len(ids) == 1


def test_ids_recorded_by_earlier_runners_stay_valid():
    # as the runner before this change computed them for the shipped experiment files
    recorded = {"all": ["lenet-s0-fc3fca3d", "lenet-s1-2444e68f", "lenet-s2-741bbb7b", "alexnet-s0-c052a975"],
                "best": ["paddle-vision-resnet18-s0-bbcdeb12", "paddle-vision-resnet18-s1-616384ae",
                         "paddle-vision-resnet18-s2-4db48338"],
                "quick": ["lenet-s0-96e27f0d", "alexnet-s0-588206ec", "paddle-vision-mobilenet-v2-s0-47707514"],
                "cifar10": ["paddle-vision-resnet50-s0-aabc0d05", "cifar-resnet20-s0-b3b47d88"]}
    for name, ids in recorded.items():
        assert [s.run_id for s in load_experiment(f"experiments/{name}.toml").runs][:len(ids)] == ids


# ---- 6. VisualDL after a resume --------------------------------------------------------------------

def test_a_resumed_runs_dashboard_curves_are_whole(tmp_path, outputs):
    from visualdl import LogReader

    path = tiny_experiment(tmp_path, ONE, epochs=3)
    killed = cli("train", path, env={"RUNNER_FAULT": "eval:3"})  # dies in epoch 3's evaluation
    assert killed.returncode != 0
    cli("train", path, check=True)
    vdl = next((outputs / "tiny" / "vdl").iterdir())
    files = list(vdl.glob("vdlrecords*"))
    assert [f.name for f in files] == ["vdlrecords.run.log"]
    reader = LogReader(file_path=str(files[0]))
    assert [r.id for r in reader.get_data("scalar", "acc/val")] == [1, 2, 3]
    steps = [r.id for r in reader.get_data("scalar", "train/loss_step")]
    assert steps == list(range(1, 3 * 3 + 1))  # 48 images in batches of 16: 3 steps an epoch, none twice


# ---- 7. a worker killed by a signal --------------------------------------------------------------

def test_a_worker_killed_by_a_signal_is_resumed_and_says_so(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE, epochs=3)
    reference = cli("sweep", path, "--jobs", "1", env={"RUNNER_OUTPUT_ROOT": str(tmp_path / "ref")}, check=True)
    assert "done" in reference.stdout
    proc = cli("sweep", path, "--jobs", "1", env={"RUNNER_FAULT": "train-step:5:self",
                                                   "RUNNER_FAULT_ONCE": str(tmp_path / "struck")}, check=True)
    assert "worker killed by signal SIGKILL" in proc.stdout and "resuming from its last checkpoint (1 of 2)" in proc.stdout
    row = sqlite3.connect(outputs / "tiny" / "runs.sqlite").execute("SELECT status, attempts, metrics FROM runs").fetchone()
    ref = sqlite3.connect(tmp_path / "ref" / "tiny" / "runs.sqlite").execute("SELECT metrics FROM runs").fetchone()
    assert row[0] == "done" and row[1] == 2
    assert json.loads(row[2])["final"] == json.loads(ref[0])["final"]
    log = next((outputs / "tiny" / "runs").iterdir()) / "train.log"
    starts = [json.loads(line.split(" ", 1)[1])["resumed_at"] for line in log.read_text().splitlines()
              if line.startswith("start ")]
    assert starts == [0, 1]  # killed in epoch 2: the second worker resumed after epoch 1


def test_a_worker_killed_again_and_again_is_failed_after_the_limit(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE, epochs=3)
    proc = cli("sweep", path, "--jobs", "1", env={"RUNNER_FAULT": "train-step:2:self"})
    assert proc.returncode == 1
    assert "it was resumed 2 times in this sweep and killed again" in proc.stderr
    row = sqlite3.connect(outputs / "tiny" / "runs.sqlite").execute("SELECT status, attempts FROM runs").fetchone()
    assert row == ("failed", 3)


# ---- 8. report: folders twice, damaged and missing results ---------------------------------------

def test_report_counts_a_folder_once_and_says_what_it_cannot_show(tmp_path, outputs):
    cli("sweep", tiny_experiment(tmp_path, ONE + '[[runs]]\nmodel = "lenet"\nseed = 1\n', epochs=1), check=True)
    sweep = outputs / "tiny"
    twice = cli("report", sweep, sweep, "--format", "json", check=True)
    report = json.loads(twice.stdout)
    assert len(report["runs"]) == 2 and report["seed_groups"][0]["seeds"] == 2
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    both = cli("report", sweep, copy)  # every run of the copy is shown once, from the folder named first
    assert both.returncode == 0 and both.stderr.strip() == (f"{copy}: all 2 finished run(s) are the same runs (same "
                                                            f"settings and seed) as in {sweep}: each is shown once")
    assert sum(line.startswith("| lenet-") for line in first_table(both.stdout)) == 2
    damaged = next((sweep / "runs").iterdir()) / "result.json"
    damaged.write_text(damaged.read_text()[:200])
    proc = cli("report", sweep)
    assert proc.returncode == 1 and f"{damaged} is damaged" in proc.stderr
    assert sum(line.startswith("| lenet-") for line in first_table(proc.stdout)) == 1
    shutil.rmtree(sweep / "runs")
    gone = cli("report", sweep)
    assert gone.returncode == 1 and gone.stderr.count("is gone") == 2 and "Traceback" not in gone.stderr


# ---- 9. --devices on a file that says cpu ----------------------------------------------------------

def test_devices_on_a_machine_without_gpus_is_refused_before_anything_starts(tmp_path, outputs):
    proc = cli("sweep", tiny_experiment(tmp_path, ONE), "--devices", "0")
    one_line_error(proc, "the runs ask for GPUs", "no GPU support")
    assert "without a result" not in proc.stderr


def test_the_worker_and_the_sweep_agree_on_the_run_id_of_a_placed_gpu_run(tmp_path):
    from runner.config import RunSpec

    spec = load_experiment(tiny_experiment(tmp_path, ONE), ["device=gpu"]).runs[0]
    assert RunSpec(spec.experiment, {**spec.config, "device": "gpu:3"}).run_id == spec.run_id


# ---- 10. brackets in user text -----------------------------------------------------------------------

def test_brackets_in_names_paths_and_messages_are_printed_as_they_are(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\nlabel = "lenet [lr 1e-3]"\n', epochs=1)
    sweep = cli("sweep", path, check=True)
    assert "lenet [lr 1e-3]" in sweep.stdout
    dataset = image_folder(tmp_path / "data[v2]", {"train/a": 3, "train/b": 3, "val/a": 1, "val/b": 1})
    (tmp_path / "data[v2]" / "train" / "a" / "P[copy].jpg").write_bytes(b"")
    check = cli("data", "check", dataset)
    assert f"{tmp_path / 'data[v2]' / 'train' / 'a' / 'P[copy].jpg'}: zero-byte file" in check.stderr
    empty = write_toml(tmp_path, 'name = "x"\n', "empty.toml")
    assert "no [[runs]]; add at least one, e.g.\n[[runs]]" in cli("sweep", empty).stderr


# ---- 11. no tracebacks: bad files and out-of-range numbers -------------------------------------------

@pytest.mark.parametrize("setting, expected", [
    ("image_size = 100000", "image_size = 100000 is out of range: it must be in [1, 4096]"),
    ("image_size = 4000", "GiB to hold the 800 decoded images in memory"),
    ("augment = { pad_crop = -3 }", "augment.pad_crop = -3 is out of range"),
    ("augment = { pad_crop = 32 }", "augment.pad_crop = 32 is out of range: it must be in [0, image_size)"),
    ("augment = { crop_scale = 0.0 }", "augment.crop_scale = 0.0 is out of range: it must be in (0.0, 1.0]"),
    ("augment = { brightness = 1.5 }", "augment.brightness = 1.5 is out of range"),
    ('scheduler = { name = "cosine", warmup_epochs = -5 }', "scheduler.warmup_epochs = -5 is out of range"),
    ('scheduler = { name = "cosine", warmup_epochs = 2 }', "warm-up must leave epochs to train"),
    ('scheduler = { name = "step", gamma = 0.0 }', "scheduler.gamma = 0.0 is out of range"),
    ('optimizer = { name = "momentum", learning_rate = 0.01, momentum = -0.5 }', "optimizer.momentum = -0.5"),
    ('optimizer = { name = "adam", learning_rate = 0.01, weight_decay = -1 }', "optimizer.weight_decay = -1.0"),
    ('optimizer = { name = "adam", learning_rate = nan }', "optimizer.learning_rate = nan is not a finite number"),
    ('optimizer = { name = "adam", learning_rate = 0 }', "optimizer.learning_rate = 0.0 is out of range"),
    ("early_stopping = { patience = -1 }", "early_stopping.patience = -1 is out of range"),
    ("label_smoothing = 1", "label_smoothing = 1.0 is out of range"),
])
def test_out_of_range_settings_are_refused_before_anything_trains(tmp_path, outputs, setting, expected):
    path = tiny_experiment(tmp_path, ONE + setting + "\n")
    one_line_error(cli("sweep", path), expected)
    assert not outputs.exists() or not list(outputs.glob("*/runs"))


def test_unreadable_experiment_files_are_one_line(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\xe9"\n[[runs]]\nmodel = "lenet"\n'.encode("latin-1"))
    one_line_error(cli("sweep", latin), "latin.toml: not UTF-8 text (byte 0xe9", "save it as UTF-8")
    one_line_error(cli("sweep", tmp_path), f"{tmp_path} is a folder; give an experiment file (.toml)")


# ---- 12. names that leave the output root -----------------------------------------------------------

@pytest.mark.parametrize("name", ["..", ".", "../elsewhere", "a/b", ".hidden"])
def test_a_name_outside_the_output_root_is_refused(tmp_path, outputs, name):
    path = write_toml(tmp_path, f'name = "{name}"\n' + ONE)
    one_line_error(cli("sweep", path, "--dry-run"), f"name = {name!r}")
    assert not (tmp_path / "runs.sqlite").exists() and not (tmp_path / "elsewhere").exists()


# ---- 13. JPEGs with bytes after their end --------------------------------------------------------

def test_a_jpeg_with_bytes_after_its_end_is_an_image_and_a_cut_one_is_not(tmp_path):
    pm = small_copy(tmp_path)
    first, second = sorted((pm / "PALM-Training400").glob("*.jpg"))[:2]
    first.write_bytes(first.read_bytes() + b"\0\0 camera maker's trailer \xff\xd8")
    assert cli("data", "check", "ichallenge-pm", "--data-root", tmp_path).returncode == 0
    decoded = cv2.imdecode(np.frombuffer(first.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (224, 224, 3)
    second.write_bytes(second.read_bytes()[:3000])
    check = cli("data", "check", "ichallenge-pm", "--data-root", tmp_path)
    assert check.returncode == 1 and f"{second}: truncated JPEG" in check.stderr


# ---- 14. a byte-order mark ------------------------------------------------------------------------

def test_an_experiment_file_with_a_byte_order_mark_reads(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    proc = cli("sweep", path, "--dry-run", check=True)
    assert "lenet-s0-" in proc.stdout


# ---- 15. --set as the README says ----------------------------------------------------------------------

def test_set_reaches_into_model_args_and_switches_optimizers(tmp_path, outputs):
    googlenet = tiny_experiment(tmp_path, '[[runs]]\nmodel = "googlenet"\nimage_size = 64\n', name="g")
    plan = cli("sweep", googlenet, "--dry-run", "--set", "model_args.aux_heads=false", check=True)
    assert "googlenet" in plan.stdout
    momentum = tiny_experiment(tmp_path, ONE + 'optimizer = { name = "momentum", learning_rate = 0.01, momentum = 0.9 }\n',
                               name="m")
    spec = load_experiment(momentum, ["optimizer.name=adam"]).runs[0]
    assert spec.config["optimizer"] == {"name": "adam", "learning_rate": 0.01}
    assert cli("sweep", momentum, "--dry-run", "--set", "optimizer.name=adam").returncode == 0


def test_set_model_args_a_network_does_not_take_is_refused_in_the_plan(tmp_path, outputs):
    mixed = tiny_experiment(tmp_path, ONE + '[[runs]]\nmodel = "googlenet"\nimage_size = 64\n')
    proc = cli("sweep", mixed, "--dry-run", "--set", "model_args={ aux_heads = false }")
    # the file is fine without the --set: the command line's mistake, a usage error
    one_line_error(proc, "--set model_args={ aux_heads = false }: ",
                   "runs[0]: model_args: model 'lenet' does not take aux_heads = False", code=2)

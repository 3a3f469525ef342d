"""Files from elsewhere (checkpoints, `weights` files, the Cifar10 archive) are read so that no code in
them can run (runner/store/safe_pickle.py): a hostile pickle creates no file and runs no command, anything
but plain numbers is one line naming the file, and real checkpoints and the real archive read as
paddle reads them."""
import builtins
import io
import json
import os
import pickle
import subprocess
import tarfile
from collections import OrderedDict

import numpy as np
import paddle
import pytest

from conftest import DATA_ROOT, PM, cli, tiny_experiment
from runner.models import build_network
from runner.store.safe_pickle import UnsafeFileError, load_plain, load_state_dict
from test_nothing_silently_wrong import one_line_error

IMAGE = PM / "PALM-Validation400" / "V0001.jpg"
CLASSES = ["normal", "pathologic myopia"]


class Payload:
    """What a hostile file holds: unpickling it calls `function(*args)`."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    """Every way we know a pickle can act, each of which would create `marker`."""
    m = str(marker)
    return {
        "os.system": Payload(os.system, f"touch {m}"),
        "exec": Payload(builtins.exec, f"open({m!r}, 'w').close()"),
        "open": Payload(builtins.open, m, "w"),
        "subprocess": Payload(subprocess.Popen, ["touch", m]),
        # paddle.save writes a tensor as eval('data', {...}): the one eval a checkpoint may hold
        "eval": Payload(builtins.eval, f"__import__('os').system('touch {m}')"),
        "inside an array": np.array([Payload(os.system, f"touch {m}")], dtype=object),
    }


PAYLOADS = list(payloads("x"))


def lenet_state():
    return {k: v.numpy() for k, v in build_network("lenet", 2, 32).state_dict().items()}


def hostile_state(marker, kind):
    """A LeNet state dict with one tensor replaced by a payload."""
    state = lenet_state()
    state[next(iter(state))] = payloads(marker)[kind]
    return state


def checkpoint_folder(root, state, protocol=4):
    """A checkpoint folder as `runner predict` takes it: model.pdparams beside run.json."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(json.dumps({"run_id": "lenet-s0-test", "class_names": CLASSES, "config": {
        "model": "lenet", "image_size": 32, "head": "softmax", "model_args": {}}}))
    with open(root / "model.pdparams", "wb") as f:
        pickle.dump(state, f, protocol=protocol)
    return root


# ---- hostile files: nothing runs -------------------------------------------------------------------

@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_hostile_checkpoint_given_to_predict_runs_nothing(tmp_path, kind):
    marker = tmp_path / "pwned"
    folder = checkpoint_folder(tmp_path / "ck", hostile_state(marker, kind))
    proc = cli("predict", folder, IMAGE)
    one_line_error(proc, f"{folder / 'model.pdparams'} is not a checkpoint")
    assert "nothing in it ran" in proc.stderr or "not of numbers" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_hostile_weights_file_runs_nothing(tmp_path, outputs, kind):
    marker, weights = tmp_path / "pwned", tmp_path / "evil.pdparams"
    weights.write_bytes(pickle.dumps(hostile_state(marker, kind), protocol=2))
    experiment = tiny_experiment(tmp_path, f'[[runs]]\nmodel = "lenet"\nweights = "{weights}"\n', epochs=1)
    proc = cli("train", experiment)
    one_line_error(proc, f"{weights} is not a weights file")
    assert not marker.exists() and not list(outputs.glob("*/runs/*/result.json"))


@pytest.mark.slow
def test_a_hostile_checkpoint_is_skipped_on_resume_and_runs_nothing(tmp_path, outputs):
    """The newest checkpoint of an interrupted run is replaced by a hostile one: the run says so,
    restarts from scratch, and nothing in the file runs. Each of a checkpoint's pickles is read so."""
    experiment = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n', epochs=2)
    cli("train", experiment, check=True)
    (result,) = outputs.glob("tiny/runs/*/result.json")
    reference = json.loads(result.read_text())["final"]
    (epoch,) = outputs.glob("tiny/checkpoints/*/epoch-0002")
    for i, name in enumerate(["model.pdparams", "model.pdopt"]):
        marker = tmp_path / f"pwned-{i}"
        result.unlink()
        state = pickle.loads((epoch / name).read_bytes())
        state[next(iter(state))] = Payload(os.system, f"touch {marker}")
        (epoch / name).write_bytes(pickle.dumps(state))
        proc = cli("train", experiment)
        assert proc.returncode == 0, proc.stderr
        assert f"checkpoint {epoch} is unreadable ({epoch / name} is not a checkpoint: it asks to call posix.system" \
            in proc.stderr + proc.stdout
        assert not marker.exists()
        assert "resuming after epoch" not in proc.stdout and "epoch 1/2" in proc.stdout
        assert json.loads(result.read_text())["final"] == reference  # retrained from scratch, to the same numbers


# ---- files of the wrong kind: one line -----------------------------------------------------------------

WRONG_KINDS = {
    "a list": [np.zeros(3, np.float32)],
    "a string tensor": {"conv1.weight": "not a tensor"},
    "an object array": {"conv1.weight": np.array([1, "x"], dtype=object)},
    "a string array": {"conv1.weight": np.array(["a", "b"])},
    "a structured array": {"conv1.weight": np.zeros(2, dtype=[("x", "f4")])},
    "a nested table": {"conv1.weight": {"w": 1}},
}


@pytest.mark.parametrize("kind", WRONG_KINDS)
def test_a_file_of_the_wrong_kind_is_one_line_naming_it(tmp_path, kind):
    folder = checkpoint_folder(tmp_path / "ck", WRONG_KINDS[kind])
    one_line_error(cli("predict", folder, IMAGE), f"{folder / 'model.pdparams'} is not a checkpoint")


@pytest.mark.parametrize("content, expected", [
    (b"", "is not a readable checkpoint (EOFError"),
    (b"just some text\n", "is not a readable checkpoint"),
    (pickle.dumps({"a": np.zeros(1000, np.float32)})[:200], "is not a readable checkpoint"),
])
def test_an_empty_garbled_or_truncated_checkpoint_is_one_line(tmp_path, content, expected):
    folder = checkpoint_folder(tmp_path / "ck", {})
    (folder / "model.pdparams").write_bytes(content)
    one_line_error(cli("predict", folder, IMAGE), f"{folder / 'model.pdparams'} {expected}")


def test_tensors_of_another_kind_of_number_are_refused(tmp_path, outputs):
    """float64 weights for a float32 network: before, paddle's AssertionError from set_value."""
    state = {k: v.astype(np.float64) for k, v in lenet_state().items()}
    folder = checkpoint_folder(tmp_path / "ck", state)
    one_line_error(cli("predict", folder, IMAGE), "another kind of number", "float64 in the file, float32 in the network")
    weights = tmp_path / "f64.pdparams"
    weights.write_bytes(pickle.dumps(state))
    experiment = tiny_experiment(tmp_path, f'[[runs]]\nmodel = "lenet"\nweights = "{weights}"\n', epochs=1)
    one_line_error(cli("train", experiment), f"weights file {weights}", "float64 in the file, float32 in the network")


# ---- real files still load, as paddle loads them ------------------------------------------------------

def test_every_form_paddle_writes_loads_to_the_arrays_paddle_loads(tmp_path):
    """paddle.save of a state dict, of nested tensors, of one tensor and of a DenseTensor (its eval
    form), paddle 2.1's (name, array) pairs, OrderedDicts and pickle protocols 2, 4 and 5."""
    network = build_network("lenet", 2, 32)
    paddle.save(network.state_dict(), str(tmp_path / "sd.pdparams"))
    forms = {"sd.pdparams": None}
    nested = {"a": {"t": paddle.to_tensor(np.arange(6, dtype=np.float32).reshape(2, 3))}, "n": 3}
    paddle.save(nested, str(tmp_path / "nested.pd"))
    paddle.save(nested["a"]["t"].value().get_tensor(), str(tmp_path / "dense.pd"))
    for protocol in (2, 4, 5):
        state = OrderedDict((k, (f"name_{k}", v.numpy())) for k, v in network.state_dict().items())
        (tmp_path / f"pairs{protocol}.pdparams").write_bytes(pickle.dumps(state, protocol=protocol))
        forms[f"pairs{protocol}.pdparams"] = None
    for name in forms:
        ours, theirs = load_state_dict(tmp_path / name, "checkpoint"), paddle.load(str(tmp_path / name))
        assert set(ours) == set(theirs) == set(network.state_dict())
        for key in ours:
            assert ours[key].dtype == theirs[key].numpy().dtype and np.array_equal(ours[key], theirs[key].numpy())
    assert np.array_equal(load_plain(tmp_path / "nested.pd", "checkpoint")["a"]["t"][1], nested["a"]["t"].numpy())
    assert np.array_equal(load_plain(tmp_path / "dense.pd", "checkpoint"), nested["a"]["t"].numpy())


def test_a_real_checkpoint_predicts_as_before(tmp_path):
    network = build_network("lenet", 2, 32)
    folder = checkpoint_folder(tmp_path / "ck", {})
    paddle.save(network.state_dict(), str(folder / "model.pdparams"))
    proc = cli("predict", folder, IMAGE, check=True)
    assert "V0001.jpg" in proc.stdout and "resized from" in proc.stdout


# ---- the Cifar10 archive -------------------------------------------------------------------------------

def batch(n=20, data=None, labels=None, **extra):
    data = np.random.RandomState(n).randint(0, 256, (n, 3072)).astype(np.uint8) if data is None else data
    return {b"batch_label": b"test", b"data": data, b"labels": list(range(10)) * (n // 10) if labels is None else labels,
            **extra}


def cifar_archive(root, members: dict, mode="w:gz"):
    """<root>/cifar10/cifar-10-python.tar.gz holding `members` ({name: object to pickle, or bytes})."""
    folder = root / "cifar10"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, mode) as tar:
        for name, value in members.items():
            data = value if isinstance(value, bytes) else pickle.dumps(value, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def standard(**replace):
    members = {f"data_batch_{i}": batch() for i in range(1, 6)}
    members["test_batch"] = batch()
    members.update(replace)
    return {k: v for k, v in members.items() if v is not None}


def check_problem(root):
    proc = cli("data", "check", "cifar10", "--data-root", root)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1, proc.stderr
    return problems[0]


def test_a_small_archive_of_the_standard_form_reads(tmp_path):
    cifar_archive(tmp_path, standard())
    proc = cli("data", "check", "cifar10", "--data-root", tmp_path, check=True)
    assert "train     100 images" in proc.stdout and "val        20 images" in proc.stdout


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_hostile_cifar10_archive_runs_nothing(tmp_path, kind):
    marker = tmp_path / "pwned"
    archive = cifar_archive(tmp_path, standard(data_batch_3=batch(labels=payloads(marker)[kind])))
    line = check_problem(tmp_path)
    assert f"{archive}: member cifar-10-batches-py/data_batch_3 is not a Cifar10 batch" in line
    assert not marker.exists()


@pytest.mark.parametrize("members, expected", [
    (standard(test_batch=None), "not the Cifar10 archive: it lacks cifar-10-batches-py/test_batch"),
    ({"readme.txt": b"hello"}, "it lacks cifar-10-batches-py/data_batch_1, "),
    (standard(data_batch_2=batch(data=np.zeros((20, 3072), np.int64))), "data_batch_2 is not a Cifar10 batch: its "
     "data is an array of int64 of shape (20, 3072); expected uint8 rows of 3072 pixels"),
    (standard(data_batch_2=batch(data=np.zeros((20, 1024), np.uint8))), "shape (20, 1024)"),
    (standard(data_batch_2=batch(data=np.zeros((20, 32, 32, 3), np.uint8))), "shape (20, 32, 32, 3)"),
    (standard(test_batch=batch(labels=[10] * 20)), "20 of its labels lie outside 0..9 (e.g. 10)"),
    (standard(test_batch=batch(labels=[-1] + [0] * 19)), "1 of its labels lie outside 0..9 (e.g. -1)"),
    (standard(test_batch=batch(labels=[0.5] * 20)), "its labels are a list; expected a list of whole numbers"),
    (standard(test_batch=batch(labels=list(range(10)))), "it holds 20 images and 10 labels"),
    (standard(test_batch=[1, 2, 3]), "expected a dict with data and labels, found a list"),
    (standard(test_batch={b"pixels": 1}), "found keys [b'pixels']"),
    (standard(test_batch=b"garbage"), "test_batch is not a readable Cifar10 batch"),
])
def test_a_malformed_cifar10_archive_is_one_line(tmp_path, members, expected):
    archive = cifar_archive(tmp_path, members)
    line = check_problem(tmp_path)
    assert str(archive) in line and expected in line, line


@pytest.mark.parametrize("damage", ["zip", "text", "truncated", "plain tar"])
def test_a_file_that_is_not_the_archive_is_one_line(tmp_path, damage):
    import zipfile

    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    if damage == "zip":
        path.parent.mkdir(parents=True)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("data_batch_1", pickle.dumps(batch()))
    elif damage == "text":
        path.parent.mkdir(parents=True)
        path.write_text("<html>404 not found</html>")
    else:
        cifar_archive(tmp_path, standard(), mode="w" if damage == "plain tar" else "w:gz")
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    proc = cli("data", "check", "cifar10", "--data-root", tmp_path)
    if damage == "plain tar":  # an uncompressed tar of the same members is the same data
        assert proc.returncode == 0, proc.stderr
        return
    line = check_problem(tmp_path)
    assert f"{path}: not a readable Cifar10 archive" in line and "replace it with the standard" in line


@pytest.mark.slow
def test_the_real_archive_reads_bit_identically_to_paddles_reader():
    """Once, on the real archive's validation batch: the images and labels paddle's reader gives."""
    from paddle.vision.datasets import Cifar10 as PaddleCifar10

    from runner.data.cifar10_archive import read_split

    archive = DATA_ROOT / "cifar10" / "cifar-10-python.tar.gz"
    images, labels = read_split(archive, "val", "")
    theirs = PaddleCifar10(data_file=str(archive), mode="test", download=False, backend="cv2")
    assert images.shape == (10000, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    for i in list(range(0, 10000, 97)) + [9999]:  # a slice spread over the whole batch
        image, label = theirs[i]
        assert np.array_equal(images[i], image.astype(np.uint8)) and labels[i] == int(label)
    assert np.array_equal(labels, [int(label) for _, label in theirs.data])


def test_safe_pickle_refuses_every_payload_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    for kind, payload in payloads(marker).items():
        for protocol in (2, 4, 5):
            path = tmp_path / f"{kind}-{protocol}.pkl"
            path.write_bytes(pickle.dumps({"w": payload}, protocol=protocol))
            with pytest.raises(UnsafeFileError, match=f"{path} is not a checkpoint"):
                load_plain(path, "checkpoint")
    assert not marker.exists()

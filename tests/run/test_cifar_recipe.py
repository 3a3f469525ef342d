"""The fast Cifar10 recipe's parts, each on a constructed case or a slice of the real archive:
airbench's whitening, Lookahead, test-time augmentation, the batch augmentation, the per-step
schedule, decoupled weight decay, the batch-norm bias rate, and a kill -9 resume of all of them."""
import json

import numpy as np
import paddle
import pytest

from conftest import cli, write_toml
from runner.run.callbacks import DecoupledWeightDecay, Lookahead
from runner.data.batches import BatchLoader, augment_batch, scale_batch, translated
from runner.data.arrays import ArrayDataset
from runner.data.transforms import Augment
from runner.run.distributed import ShardedBatchSampler
from runner.models.airbench import Airbench, patches, whitening_filters
from runner.run.objectives import Triangle, build_schedule, scale_norm_bias_lr
from runner.run.tta import TTANetwork, averaged, views

RECIPE = """
name = "fast"
[defaults]
dataset = "cifar10"
image_size = 32
model = "airbench94"
epochs = 3
batch_size = 128
train_limit = 384
val_limit = 100
label_smoothing = 0.2
tta = 2
lookahead = {{ every = 2, decay = 0.9 }}
augment = {{ alternate_flip = true, pad_crop = 2, cutout = 8 }}
optimizer = {{ name = "momentum", learning_rate = 0.5, momentum = 0.85, nesterov = true, weight_decay = 0.01, decoupled = {decoupled}, norm_bias_lr = 16.0 }}
scheduler = {{ name = "linear", warmup_share = 0.3, start_factor = 0.2, end_factor = 0.1 }}
[[runs]]
label = "fast"
"""


def cifar_slice(n=256):
    from runner.data import open_dataset

    source = open_dataset("cifar10")
    return source.images("train", np.arange(n), 32, None), source.labels("train")[:n]


def test_whitening_filters_whiten_the_patches_they_were_fitted_to():
    images, _ = cifar_slice(200)
    x = scale_batch(images).astype(np.float64)
    filters = whitening_filters(x, 2).astype(np.float64)   # 24 filters: 12 and their negatives
    out = patches(x, 2) @ filters[:12].reshape(12, -1).T     # the first 12 output channels, per patch
    second_moment = out.T @ out / len(out)
    # Lambda / (Lambda + eps): the identity but for the smallest directions, shrunk by the paper's eps
    eigenvalues = np.linalg.eigvalsh(patches(x, 2).T @ patches(x, 2) / len(out))[::-1]
    assert np.allclose(second_moment, np.diag(eigenvalues / (eigenvalues + 5e-4)), atol=1e-6)
    assert np.allclose(np.diag(second_moment)[:5], 1.0, atol=0.01)  # the large directions: unit variance
    network = Airbench(10)
    network.fit_to_data(x.astype(np.float32))
    assert np.allclose(network.whiten.weight.numpy(), filters, atol=1e-5)
    assert network.whiten.weight.stop_gradient  # frozen: the optimizer never moves it


def test_lookahead_average_is_the_one_it_claims():
    paddle.seed(0)
    network = paddle.nn.Linear(3, 2)
    lookahead = Lookahead(every=2, decay=0.5, total_steps=4)
    lookahead.model = type("M", (), {"network": network})()
    lookahead.on_train_begin()
    w0 = network.weight.numpy().copy()
    moves = [np.full_like(w0, 1.0), np.full_like(w0, 2.0), np.full_like(w0, 3.0), np.full_like(w0, 4.0)]
    average, weights = w0.copy(), w0.copy()
    for step, move in enumerate(moves, start=1):
        weights = weights + move                      # what an optimizer step would do
        network.weight.set_value(weights)
        lookahead.on_train_batch_end(step - 1)
        if step % 2 == 0:                             # a sync: a <- alpha a + (1 - alpha) w, then w <- a
            alpha = 0.5 ** 2 * (step / 4) ** 3
            average = alpha * average + (1 - alpha) * weights
            weights = average.copy()
        assert np.allclose(network.weight.numpy(), weights, atol=1e-6)
    # the last step hands the network the average as it is
    assert np.allclose(lookahead.arrays()["lookahead/weight"], average, atol=1e-6)


def test_tta_output_is_the_weighted_mean_of_the_views():
    paddle.seed(1)
    network = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.Flatten(), paddle.nn.Linear(4 * 6 * 6, 5))
    network.eval()
    x = paddle.randn([2, 3, 8, 8])
    with paddle.no_grad():
        for level, count in ((1, 2), (2, 6)):
            pairs = views(x, level)
            assert len(pairs) == count and abs(sum(w for w, _ in pairs) - 1.0) < 1e-9
            expected = sum(w * paddle.nn.functional.softmax(network(v), axis=-1).numpy() for w, v in pairs)
            got = paddle.nn.functional.softmax(TTANetwork(network, level)(x), axis=-1).numpy()
            assert np.allclose(got, expected, atol=1e-6)
        mirror = views(x, 1)[1][1].numpy()
        assert np.array_equal(mirror, x.numpy()[:, :, :, ::-1])
        shifted = views(x, 2)[2][1].numpy()   # shifted down-right by one pixel, border reflected
        assert np.array_equal(shifted[:, :, 1:, 1:], x.numpy()[:, :, :-1, :-1])
        assert np.allclose(averaged(network, x, 0).exp().numpy(),
                           paddle.nn.functional.softmax(network(x), axis=-1).numpy(), atol=1e-6)


def test_batch_augmentation_alternates_flips_translates_and_cuts_out():
    images, labels = cifar_slice(64)
    flip_half = np.random.RandomState(0).rand(64) < 0.5
    idx = np.arange(64)
    aug = Augment(alternate_flip=True)
    even = augment_batch(images, idx, aug, 0, flip_half)
    odd = augment_batch(images, idx, aug, 1, flip_half)
    mirrored = images[:, :, ::-1]
    assert np.array_equal(even[flip_half], mirrored[flip_half]) and np.array_equal(even[~flip_half], images[~flip_half])
    assert np.array_equal(odd[~flip_half], mirrored[~flip_half]) and np.array_equal(odd[flip_half], images[flip_half])
    # translation: the same pixels as the per-image pad-and-crop (OpenCV's reflect-101) at the same offsets
    rng = np.random.RandomState(3)
    shifted = translated(images[:4], 2, rng)
    dy, dx = np.random.RandomState(3).randint(0, 5, size=(2, 4))
    import cv2

    for i in range(4):
        padded = cv2.copyMakeBorder(images[i], 2, 2, 2, 2, cv2.BORDER_REFLECT_101)
        assert np.array_equal(shifted[i], padded[dy[i]:dy[i] + 32, dx[i]:dx[i] + 32])
    cut = augment_batch(images, idx, Augment(cutout=8), 0, None, np.random.RandomState(5))
    changed = (cut != images).any(axis=3)
    assert all(0 < changed[i].sum() <= 64 for i in range(64))
    assert (cut[(cut != images)] == 128).all()


def test_batch_loader_gives_what_the_per_image_path_gives_without_augmentation():
    images, labels = cifar_slice(50)
    dataset = ArrayDataset(images, labels, 32)
    assert dataset.per_batch
    loader = BatchLoader(dataset, ShardedBatchSampler(50, 16, False))
    x, y = next(iter(loader))
    expected = np.stack([dataset[i][0] for i in range(16)])
    assert np.array_equal(x.numpy(), expected) and y.numpy().ravel().tolist() == labels[:16].tolist()
    assert len(loader) == 4
    assert not ArrayDataset(images, labels, 32, Augment(rotate=5.0)).per_batch
    assert not ArrayDataset(images, labels, 48).per_batch  # resized per image


def test_linear_schedule_is_the_triangle_stepped_per_batch():
    factor = Triangle(100, {"warmup_share": 0.2, "start_factor": 0.2, "end_factor": 0.1})
    assert factor(0) == pytest.approx(0.2) and factor(10) == pytest.approx(0.6) and factor(20) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55) and factor(100) == pytest.approx(0.1)
    schedule = build_schedule(2.0, 5, {"name": "linear", "warmup_share": 0.2, "start_factor": 0.2, "end_factor": 0.1}, 20)
    rates = []
    for _ in range(100):
        rates.append(schedule())
        schedule.step()
    assert rates[0] == pytest.approx(0.4) and max(rates) == pytest.approx(2.0) and rates[20] == pytest.approx(2.0)


def test_decoupled_decay_and_norm_bias_rate():
    paddle.seed(0)
    network = paddle.nn.Sequential(paddle.nn.Conv2D(3, 2, 1), paddle.nn.BatchNorm2D(2))
    assert scale_norm_bias_lr(network, 10.0) == 1
    optimizer = paddle.optimizer.SGD(0.1, parameters=network.parameters())
    before = {p.name: p.numpy().copy() for p in network.parameters()}
    x = paddle.randn([4, 3, 5, 5])
    (network(x) * paddle.randn([4, 2, 5, 5])).sum().backward()
    grads = {p.name: p.grad.numpy().copy() for p in network.parameters() if not p.stop_gradient}
    optimizer.step()
    bias = network[1].bias
    assert np.allclose(bias.numpy(), before[bias.name] - 0.1 * 10.0 * grads[bias.name], atol=1e-6)
    conv_w = network[0].weight
    assert np.allclose(conv_w.numpy(), before[conv_w.name] - 0.1 * grads[conv_w.name], atol=1e-6)
    decay = DecoupledWeightDecay(0.5)
    decay.model = type("M", (), {"network": network, "_optimizer": optimizer})()
    after_step = {p.name: p.numpy().copy() for p in network.parameters()}
    decay.on_train_batch_end(0)
    for p in network.parameters():  # w * (1 - lr * coefficient), the bias at the schedule's rate too
        factor = 1.0 if p.stop_gradient else 1 - 0.1 * 0.5  # batch norm's running statistics are not weights
        assert np.allclose(p.numpy(), after_step[p.name] * factor, atol=1e-7)


@pytest.mark.parametrize("decoupled", ["true", "false"])
def test_the_whole_recipe_resumes_after_kill_9_bit_for_bit(tmp_path, decoupled):
    path = write_toml(tmp_path, RECIPE.format(decoupled=decoupled))
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    cli("train", path, check=True, env={"RUNNER_OUTPUT_ROOT": str(reference_root)})
    killed = cli("train", path, env={"RUNNER_OUTPUT_ROOT": str(killed_root), "RUNNER_FAULT": "eval:2"})
    assert killed.returncode != 0  # died in epoch 2's evaluation: epoch 1's checkpoint, with the average, is on disk
    assert list(killed_root.rglob("epoch-0001/callbacks.npz"))
    resumed = cli("train", path, check=True, env={"RUNNER_OUTPUT_ROOT": str(killed_root)})
    assert "resuming after epoch 1" in resumed.stdout
    reference = json.loads(next(reference_root.rglob("result.json")).read_text())
    result = json.loads(next(killed_root.rglob("result.json")).read_text())
    assert [h["val"] for h in result["history"]] == [h["val"] for h in reference["history"]]
    assert [h["train"]["loss"] for h in result["history"]] == [h["train"]["loss"] for h in reference["history"]]
    assert [h.get("tta") for h in result["history"]] == [0, 0, 2]  # only the last evaluation averages the views

"""Grad-CAM where the answer is known, the stage it is taken from, and the cost and report fields
every trained run gets."""
import json

import numpy as np
import paddle
import pytest

from conftest import cli, tiny_experiment
from runner.run.gradcam import fixed_images, grad_cam, last_spatial_layer


class Mask(paddle.nn.Layer):
    """Keeps a fixed region of a feature map and zeroes the rest."""

    def __init__(self, size, region):
        super().__init__()
        mask = np.zeros((1, 1, size, size), "float32")
        (y0, y1), (x0, x1) = region
        mask[..., y0:y1, x0:x1] = 1.0
        self.mask = paddle.to_tensor(mask)

    def forward(self, x):
        return x * self.mask


class LooksAtOneRegion(paddle.nn.Layer):
    """A network that can only respond to one region of the image: its class-1 logit is the mean of
    a convolution's output inside the region."""

    def __init__(self, size, region):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1)
        self.mask = Mask(size, region)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(paddle.flatten(self.pool(self.mask(paddle.nn.functional.relu(self.conv(x)))), 1))


def test_grad_cam_is_hottest_where_the_network_looks():
    paddle.seed(0)
    size, region = 32, ((4, 12), (18, 28))
    network = LooksAtOneRegion(size, region)
    with paddle.no_grad():  # the class-1 logit grows with every activation kept
        network.fc.weight.set_value(np.array([[0.0, 1.0]] * 4, "float32"))
    images = np.random.default_rng(0).uniform(-1, 1, (3, 3, size, size)).astype("float32")
    assert last_spatial_layer(network, size) == "mask"
    heat = grad_cam(network, images, np.ones(3, int), "mask")
    assert heat.shape == (3, size, size) and heat.max() == pytest.approx(1.0)
    (y0, y1), (x0, x1) = region
    inside = np.zeros((size, size), bool)
    inside[y0:y1, x0:x1] = True
    for h in heat:
        peak = np.unravel_index(h.argmax(), h.shape)
        assert inside[peak]
        assert h[inside].mean() > 5 * h[~inside].mean()


def test_the_stage_is_found_for_course_and_zoo_networks():
    from runner.models import build_network

    expected = {"vgg16": "features", "resnet50": "blocks", "googlenet": "block5_2", "paddle.vision/resnet18": "layer4",
                "paddle.vision/mobilenet_v2": "features"}
    for name, stage in expected.items():
        network = build_network(name, 2, 64, **({"aux_heads": False} if name == "googlenet" else {}))
        assert last_spatial_layer(network, 64).split(".")[-1] == stage, name


def test_grad_cam_explains_every_course_network_and_a_shared_layer():
    """The course AlexNet calls one pooling layer after three stages (96, then 256 channels): the
    heat must pair the last call's activations with that call's own gradients."""
    from runner.models import build_network

    images = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype("float32")
    for name in ("alexnet", "vgg16", "resnet50", "lenet", "paddle.vision/squeezenet1_1"):
        paddle.seed(0)
        network = build_network(name, 2, 64)
        layer = last_spatial_layer(network, 64)
        heat = grad_cam(network, images, np.array([1, 0]), layer)
        assert heat.shape == (2, 64, 64) and np.isfinite(heat).all(), name
        assert 0.0 <= heat.min() and heat.max() <= 1.0, name


def test_fixed_images_are_chosen_by_position_not_by_errors():
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0])
    assert list(fixed_images(labels, 2)) == [1, 2, 4, 7, 0, 3, 5, 6]


def test_every_run_reports_cost_calibration_and_its_auc_test(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\n[[runs]]\nmodel = "lenet"\nseed = 1\n', epochs=1)
    cli("sweep", path, check=True)
    report = json.loads(cli("report", outputs / "tiny", "--format", "json", "--ensemble", check=True).stdout)
    for run in report["runs"]:
        assert run["latency_ms"] > 0 and run["throughput_ips"] > 0 and run["model_mb"] > 0
        assert run["peak_memory_mb"] > 100
        assert 0 <= run["ece"] <= 1 and 0 <= run["brier"] <= 1
        assert run["auc_ci_low"] <= run["auc"] <= run["auc_ci_high"]
        assert 0 <= run["sensitivity_at_95_specificity"] <= 1 and 0 <= run["specificity_at_95_sensitivity"] <= 1
    best, other = report["runs"]
    assert best["is_best"] and best["delong_p"] is None and 0 <= other["delong_p"] <= 1
    (ensemble,) = report["ensembles"]
    assert ensemble["seeds"] == 2 and 0 <= ensemble["mcnemar_p"] <= 1
    for name in ("gradcam.png", "reliability.png", "pareto.png", "accuracy_by_group.png"):
        assert (outputs / "tiny" / name).stat().st_size > 5000
    cam = np.load(next((outputs / "tiny" / "runs").iterdir()) / "gradcam.npz")
    assert cam["heat"].shape == (8, 32, 32) and list(cam["labels"]) == [1, 1, 1, 1, 0, 0, 0, 0]

"""The networks made for 32x32 Cifar10, and the course's own at 32x32: each builds with 10 classes,
has its source's size, trains two steps on real Cifar10 images and exports to the inference engine."""
import json

import numpy as np
import paddle
import pytest

from conftest import cli
from runner.run.conv_bias import use_matmul_bias
from runner.errors import RunnerError
from runner.data import load_splits
from runner.run.inference_eval import build_predictor
from runner.models import RUNNER, build_model, build_network, count_flops, count_parameters, get_model, list_models
from runner.run.objectives import ClassificationLoss

# Trainable parameters with 10 classes as the source publishes or its code counts them, and
# multiply-accumulates of one 32x32 forward pass, derived layer by layer from the architecture.
FACTS = {
    # Page's dawn_utils.net(): 6 573 120 (five 3x3 convolutions, BN, a 512x10 linear without bias);
    # each of layer1, res1, layer2, layer3 and res3 costs 75.5 M MACs, the prep conv 1.8 M
    "resnet9": (6_573_120, 379.3e6),
    # kuangliu/pytorch-cifar ResNet18(): 11 173 962 parameters, 0.56 GMACs
    "cifar_resnet18": (11_173_962, 555.4e6),
    # the paper's MobileNetV2 (= torchvision/paddle.vision with 10 classes): 2 236 682
    "cifar_mobilenet_v2": (2_236_682, 88.0e6),
    # VGG-11 "A" with BN and one 512x10 linear: pytorch-cifar's 9 231 114 less its 2 752 conv biases
    "cifar_vgg11": (9_228_362, 152.8e6),
}
COURSE_AT_32 = ["lenet", "alexnet"]


def trainable_parameters(network) -> int:
    """Parameters as papers count them: paddle also holds batch-norm statistics as (frozen) parameters."""
    return sum(int(p.size) for p in network.parameters() if p.trainable)


@pytest.fixture(scope="module")
def cifar_slice():
    splits = load_splits("cifar10", 32, train_limit=40, val_limit=40)
    images = np.stack([splits.train[i][0] for i in range(16)])
    labels = np.stack([splits.train[i][1] for i in range(16)])
    return images, labels


@pytest.mark.parametrize("name", list(FACTS))
def test_cifar_network_has_its_sources_size_and_keeps_32x32(name):
    entry = get_model(name)
    assert name in list_models(RUNNER) and entry.default_image_size == 32
    network = build_network(name, 10, 32)
    parameters, macs = FACTS[name]
    assert trainable_parameters(network) == parameters
    # the runner's column also counts batch-norm statistics: a fraction of a percent more
    assert abs(count_parameters(network) - parameters) / parameters < 0.02
    assert abs(count_flops(network, 32) - macs) / macs < 0.005
    network.eval()
    with paddle.no_grad():
        assert network(paddle.zeros([2, 3, 32, 32])).shape == [2, 10]


def test_cifar_networks_downsample_32x32_as_their_sources():
    """The last feature map before the pool: 4x4 for ResNet-9, ResNet-18 and MobileNetV2, 1x1 for VGG-11."""
    last = {"resnet9": "layer3", "cifar_resnet18": "blocks", "cifar_mobilenet_v2": "features", "cifar_vgg11": "features"}
    expected = {"resnet9": [512, 4, 4], "cifar_resnet18": [512, 4, 4], "cifar_mobilenet_v2": [1280, 4, 4],
                "cifar_vgg11": [512, 1, 1]}
    for name, attr in last.items():
        network = build_network(name, 10, 32)
        shapes = []
        hook = getattr(network, attr).register_forward_post_hook(lambda layer, inputs, out: shapes.append(out.shape[1:]))
        network.eval()
        with paddle.no_grad():
            network(paddle.zeros([1, 3, 32, 32]))
        hook.remove()
        assert shapes == [expected[name]], name


def test_resnet9_scales_its_logits_and_starts_as_pytorch():
    paddle.seed(0)
    network = build_network("resnet9", 10, 32)
    assert network.linear.bias is None and network.logit_scale == 0.125
    x = paddle.randn([2, 3, 32, 32])
    network.eval()
    with paddle.no_grad():
        features = network.pool(network.layer3(network.layer2(network.layer1(network.prep(x))))).flatten(1)
        np.testing.assert_allclose(network(x).numpy(), 0.125 * (features @ network.linear.weight).numpy(),
                                   rtol=1e-5, atol=1e-6)
    # PyTorch's default start, uniform in +-1/sqrt(fan_in), not paddle's larger normal one
    conv = network.layer3[0].conv.weight.numpy()
    bound = 1 / np.sqrt(256 * 9)
    assert 0.95 * bound < np.abs(conv).max() <= bound * (1 + 1e-6)  # float32 may round the edge up
    assert abs(conv.std() - bound / np.sqrt(3)) / (bound / np.sqrt(3)) < 0.02


@pytest.mark.parametrize("name", list(FACTS) + COURSE_AT_32)
def test_trains_two_steps_on_cifar10_and_exports(name, cifar_slice, tmp_path):
    images, labels = cifar_slice
    paddle.seed(0)
    network = build_network(name, 10, 32)
    use_matmul_bias(network)  # as a CPU run trains (runner/train.py)
    model = build_model(network, 32)
    model.prepare(paddle.optimizer.Momentum(0.01, 0.9, parameters=network.parameters()), ClassificationLoss())
    before = {k: v.numpy().copy() for k, v in network.state_dict().items()}
    for step in range(2):
        batch = slice(8 * step, 8 * step + 8)
        loss = model.train_batch([images[batch]], [labels[batch]])
        assert np.isfinite(np.asarray(loss[0] if isinstance(loss, (list, tuple)) else loss)).all()
    after = network.state_dict()
    trainable = [k for k, p in network.named_parameters() if p.trainable]
    assert all(not np.array_equal(before[k], after[k].numpy()) for k in trainable), "a weight did not move"

    network.eval()
    with paddle.no_grad():
        expected = network(paddle.to_tensor(images)).numpy()
    predictor = build_predictor(network, 32, threads=1, folder=tmp_path)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(list(images.shape))
    handle.copy_from_cpu(images)
    predictor.run()
    got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    assert got.shape == (16, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(expected).max()))


def test_runner_models_lists_the_cifar_networks():
    rows = {row["name"]: row for row in json.loads(cli("models", "--json", check=True).stdout)}
    for name in FACTS:
        assert rows[name]["origin"] == RUNNER and rows[name]["image_size"] == 32
        assert rows[name]["parameters"] > 0.98 * FACTS[name][0]  # 2 classes, with batch-norm statistics


def test_vgg11_refuses_an_input_its_five_pools_cannot_halve_and_names_the_smallest():
    with pytest.raises(RunnerError) as err:
        build_network("cifar_vgg11", 10, 16)
    assert str(err.value) == ("model 'cifar_vgg11' cannot take 3x16x16 input: layer features fails "
                              "(5 2x2 max-pools take 16x16 below 1x1); use image_size >= 32")
    assert build_network("cifar_vgg11", 10, 64).classifier.weight.shape == [512 * 2 * 2, 10]

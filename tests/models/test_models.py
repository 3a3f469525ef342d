import http.server
import json
import threading

import numpy as np
import paddle
import pytest

from conftest import cli
from runner.errors import RunnerError, UnknownModelError
from runner.models import (COURSE, PADDLE_VISION, RUNNER, build_model, build_network, check_input_size, count_parameters,
                           list_models, load_weights, model_entry)

COURSE_NETWORKS = ["lenet", "alexnet", "vgg16", "googlenet", "resnet50", "resnet101", "resnet152"]
ZOO_SAMPLE = ["paddle.vision/resnet50", "paddle.vision/vgg16", "paddle.vision/mobilenet_v2"]


def test_registry_lists_course_and_zoo_models():
    assert set(COURSE_NETWORKS) <= set(list_models(COURSE))
    zoo = list_models(PADDLE_VISION)
    assert len(zoo) >= 15
    assert {"paddle.vision/resnet18", "paddle.vision/vgg19", "paddle.vision/mobilenet_v3_small",
            "paddle.vision/densenet121", "paddle.vision/alexnet", "paddle.vision/lenet"} <= set(zoo)


@pytest.mark.parametrize("name", COURSE_NETWORKS + ZOO_SAMPLE)
@pytest.mark.parametrize("size", [224, 32])
def test_networks_build_for_any_input_size(name, size):
    for num_classes in (2, 10):
        network = build_network(name, num_classes, size)
        network.eval()
        with paddle.no_grad():
            out = network(paddle.zeros([2, 3, size, size]))
        assert out.shape == [2, num_classes]


@pytest.mark.parametrize("name, blocks, parameters", [("cifar_resnet20", 3, 0.27e6), ("cifar_resnet56", 9, 0.85e6)])
def test_cifar_resnets_keep_32x32_and_have_the_papers_size(name, blocks, parameters):
    assert name in list_models(RUNNER)
    network = build_network(name, 10, 32)
    # He et al. 2016, table 6: ResNet-20 0.27 M parameters, ResNet-56 0.85 M (with 10 classes)
    assert abs(count_parameters(network) - parameters) / parameters < 0.02
    convs = [layer for layer in network.sublayers() if isinstance(layer, paddle.nn.Conv2D)]
    assert len([c for c in convs if c._kernel_size == [3, 3]]) == 6 * blocks + 1  # stem + 6n in blocks; with the fc, 6n + 2 layers
    sizes = []
    hooks = [network.blocks[i].register_forward_post_hook(lambda layer, inputs, out: sizes.append(out.shape[2:]))
             for i in (0, blocks, 2 * blocks)]  # the first block of each stage
    network.eval()
    with paddle.no_grad():
        out = network(paddle.zeros([2, 3, 32, 32]))
    for h in hooks:
        h.remove()
    assert out.shape == [2, 10] and sizes == [[32, 32], [16, 16], [8, 8]]


def test_googlenet_aux_heads_only_in_training():
    network = build_network("googlenet", 2, 32)
    network.train()
    outputs = network(paddle.zeros([2, 3, 32, 32]))
    assert isinstance(outputs, tuple) and len(outputs) == 3
    assert all(o.shape == [2, 2] for o in outputs)
    network.eval()
    out = network(paddle.zeros([2, 3, 32, 32]))
    assert isinstance(out, paddle.Tensor) and out.shape == [2, 2]


def test_course_alexnet_matches_the_course_flatten_size():
    # 256 x 7 x 7 = 12544 at 224x224, as the course hard-codes
    assert build_network("alexnet", 2, 224).fc1.weight.shape == [12544, 4096]
    assert build_network("lenet", 2, 224).fc1.weight.shape == [300000, 64]


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError) as err:
        model_entry("resnet5")
    assert "resnet50" in str(err.value) and "\n" not in str(err.value)


def test_build_model_wraps_in_paddle_model():
    model = build_model(build_network("lenet", 2, 32), 32)
    assert isinstance(model, paddle.Model)
    assert list(model._inputs[0].shape)[1:] == [3, 32, 32]


def test_too_small_input_names_layer_and_minimum_size():
    # LeNet: 5x5 conv, pool, 5x5 conv, pool, 4x4 conv -- 28x28 is the smallest input that fits
    with pytest.raises(RunnerError) as err:
        build_network("lenet", 2, 16)
    message = str(err.value)
    assert "'lenet' cannot take 3x16x16" in message and "layer conv3" in message and "image_size >= 28" in message
    network = build_network("paddle.vision/alexnet", 2, 224)  # paddle's AlexNet is fixed to 224x224
    with pytest.raises(RunnerError) as err:
        check_input_size(network, "paddle.vision/alexnet", 64)
    assert "layer" in str(err.value) and "paddle.vision/alexnet" in str(err.value)


def test_local_weights_file_loads_matching_tensors(tmp_path):
    source = build_network("paddle.vision/resnet18", 1000, 32)
    path = tmp_path / "r18.pdparams"
    paddle.save(source.state_dict(), str(path))
    target = build_network("paddle.vision/resnet18", 2, 32, weights=str(path))
    np.testing.assert_array_equal(target.conv1.weight.numpy(), source.conv1.weight.numpy())
    skipped = load_weights(build_network("paddle.vision/resnet18", 2, 32), str(path))
    assert skipped == ["fc.bias", "fc.weight"]  # the classifier of another class count is left alone


def test_pretrained_download_uses_paddles_url_and_fails_clearly_offline(tmp_path, monkeypatch):
    from paddle.utils import download
    from paddle.vision.models import resnet as pv_resnet

    weights = build_network("paddle.vision/resnet18", 1000, 32).state_dict()
    served = tmp_path / "served"
    served.mkdir()
    paddle.save(weights, str(served / "resnet18.pdparams"))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(download, "WEIGHTS_HOME", str(tmp_path / "cache"))
    try:
        url = f"http://127.0.0.1:{server.server_port}/resnet18.pdparams"
        monkeypatch.setitem(pv_resnet.model_urls, "resnet18", (url, None))
        net = build_network("paddle.vision/resnet18", 1000, 32, pretrained=True)
        np.testing.assert_array_equal(net.conv1.weight.numpy(), weights["conv1.weight"].numpy())

        monkeypatch.setitem(pv_resnet.model_urls, "resnet18", (f"http://127.0.0.1:{server.server_port}/nothing.pdparams", None))
        monkeypatch.setattr(download, "WEIGHTS_HOME", str(tmp_path / "cache2"))
        with pytest.raises(RunnerError) as err:
            build_network("paddle.vision/resnet18", 2, 32, pretrained=True)
        assert "could not download pretrained weights" in str(err.value) and "weights =" in str(err.value)
    finally:
        server.shutdown()


def test_course_network_refuses_pretrained():
    with pytest.raises(RunnerError, match="no pretrained weights"):
        build_network("alexnet", 2, 32, pretrained=True)


def test_cli_models_json_lists_everything():
    proc = cli("models", "--json", check=True)
    rows = json.loads(proc.stdout)
    by_origin = {}
    for row in rows:
        by_origin.setdefault(row["origin"], []).append(row["name"])
        assert row["parameters"] > 0
    assert set(COURSE_NETWORKS) <= set(by_origin["course"])
    assert len(by_origin["paddle.vision"]) >= 15
    alexnet = next(r for r in rows if r["name"] == "alexnet")
    assert alexnet["parameters"] == count_parameters(build_network("alexnet", 2, 224))


def test_cli_unknown_option_is_one_line_with_suggestion():
    proc = cli("models", "--jsn")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "--json" in proc.stderr and "Traceback" not in proc.stderr

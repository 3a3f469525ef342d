"""The CPU speed levers change how the sums are done, never what they compute."""
import copy
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
from paddle import nn

from conftest import DATA_ROOT, write_toml
from runner.config import load_experiment
from runner.run.conv_bias import MatmulBiasConv2D, use_matmul_bias
from runner.run.train import prepare_run


def small_network():
    paddle.seed(3)
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, stride=2, padding=1),  # converted
        nn.ReLU(),
        nn.Conv2D(8, 6, 3, bias_attr=False),  # no bias: nothing to speed up
        nn.Conv2D(6, 5, 3, padding=1, padding_mode="reflect"),  # padding done by another op first
        nn.Conv2D(5, 4, (1, 3), dilation=2, groups=1),  # converted
    )


def forward_and_gradients(network, x):
    """{name: array}: the output, the input's gradient and every parameter's gradient."""
    x = x.detach()
    x.stop_gradient = False
    y = network(x)
    (y * y).sum().backward()
    return {"output": y.numpy(), "input grad": x.grad.numpy(),
            **{name: p.grad.numpy() for name, p in network.named_parameters()}}


def test_matmul_bias_converts_only_plain_convolutions_with_a_bias():
    network = small_network()
    names = list(network.state_dict())
    assert use_matmul_bias(network) == 2
    assert [type(layer) for layer in network] == [MatmulBiasConv2D, nn.ReLU, nn.Conv2D, nn.Conv2D, MatmulBiasConv2D]
    assert list(network.state_dict()) == names  # checkpoints of either load into the other
    assert use_matmul_bias(network) == 0  # converting twice changes nothing


def test_matmul_bias_trains_to_the_same_numbers():
    plain = small_network()
    fast = copy.deepcopy(plain)
    use_matmul_bias(fast)
    x = paddle.randn([3, 3, 19, 17])
    ours, theirs = forward_and_gradients(fast, x), forward_and_gradients(plain, x)
    converted_biases = {f"{i}.bias" for i, layer in enumerate(fast) if isinstance(layer, MatmulBiasConv2D)}
    assert converted_biases == {"0.bias", "4.bias"} and set(ours) == set(theirs)
    for name in ours:
        if name in converted_biases:  # the same terms summed in another order: equal to float32 rounding
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-5 * np.abs(theirs[name]).max())
        else:  # the output and every other gradient: bit for bit
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    bias_grads = [layer.bias.grad.numpy() for layer in fast if isinstance(layer, MatmulBiasConv2D)]
    assert all(np.abs(g).max() > 1 for g in bias_grads)  # a real sum was compared, not zeros


def test_matmul_bias_leaves_evaluation_and_export_on_the_plain_layer(tmp_path):
    network = small_network()
    use_matmul_bias(network)
    network.eval()
    x = paddle.randn([2, 3, 16, 16])
    with paddle.no_grad():
        expected = network(x).numpy()
    spec = [paddle.static.InputSpec([None, 3, 16, 16], "float32", "image")]
    paddle.jit.save(network, str(tmp_path / "net"), input_spec=spec)
    loaded = paddle.jit.load(str(tmp_path / "net"))
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_is_set_unless_opted_out():
    # in processes of their own: the setting lasts for the life of a process, and the pytest
    # process's allocator must stay as every other test expects it
    probe = ("import numpy as np\nfrom runner.cpu import keep_freed_memory\nprint(keep_freed_memory())\n"
             "big = np.ones(64 * 2**20 // 4, np.float32)\nprint(big.sum() == big.size)")
    for value, expected in (("0", "False"), ("1", "True")):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             env={**os.environ, "RUNNER_MALLOC_TUNE": value}).stdout.split()
        assert out == [expected, "True"]


def test_training_on_cpu_uses_the_matmul_bias(tmp_path, outputs):
    path = write_toml(tmp_path, """
        name = "bias"
        [defaults]
        dataset = "ichallenge-pm"
        image_size = 32
        train_limit = 8
        val_limit = 8
        [[runs]]
        model = "lenet"
    """)
    _, network, _, _ = prepare_run(load_experiment(path).runs[0], DATA_ROOT, tmp_path / "cache")
    convolutions = [layer for layer in network.sublayers() if isinstance(layer, nn.Conv2D)]
    assert convolutions and all(type(layer) is MatmulBiasConv2D for layer in convolutions)

"""Networks by name: building them for a run, loading weights, checking the input size, and
counting what they cost (parameters, multiply-accumulates, inference speed)."""
from __future__ import annotations

import json
import os
from functools import lru_cache

import paddle

from runner.errors import RunnerError
from runner.models.layers import InputTooSmall, SigmoidHead, run_dummy
from runner.models.registry import list_models, model_entry
from runner.options import HEADS
from runner.store.safe_pickle import load_state_dict


def build_network(name: str, num_classes: int, image_size: int = 224, pretrained: bool = False,
                  weights: str | None = None, head: str = "softmax", **kwargs) -> paddle.nn.Layer:
    """A fresh `paddle.nn.Layer` for `name`; `weights` loads a local .pdparams file.

    head = "softmax": one logit per class. head = "sigmoid": two classes from one logit, as the
    course trains them (see SigmoidHead); `weights` then load into the network inside the head."""
    if head not in HEADS:
        raise RunnerError(f"head = {head!r}; allowed: {', '.join(HEADS)}")
    if head == "sigmoid" and num_classes != 2:
        raise RunnerError(f"head = \"sigmoid\" needs a two-class dataset, this one has {num_classes} classes; "
                          "use head = \"softmax\"")
    network = _build_body(name, 1 if head == "sigmoid" else num_classes, image_size, pretrained, weights, **kwargs)
    return SigmoidHead(network) if head == "sigmoid" else network


def _build_body(name: str, num_classes: int, image_size: int, pretrained: bool, weights: str | None,
                **kwargs) -> paddle.nn.Layer:
    entry = model_entry(name)
    if pretrained and not getattr(entry.builder, "accepts_pretrained", False):
        raise RunnerError(f"model {name!r} has no pretrained weights to download; "
                          "set `weights = \"path/to/file.pdparams\"` to start from a local file")
    build = lambda size: entry.builder(num_classes=num_classes, image_size=size,  # noqa: E731
                                       **({"pretrained": True} if pretrained else {}), **kwargs)
    try:
        network = build(image_size)
    except InputTooSmall as err:  # a course network measuring its flatten size
        raise size_error(name, image_size, 3, err, smallest_size(build, image_size)) from None
    except TypeError as err:
        raise RunnerError(f"model {name!r} does not take these arguments: {err}") from None
    except (OSError, RuntimeError) as err:  # paddle's weight download, offline or unreachable
        if not pretrained:
            raise
        raise RunnerError(
            f"could not download pretrained weights for {name!r} ({type(err).__name__}: {err}). "
            "This machine may be offline: put the .pdparams file in ~/.cache/paddle/hapi/weights/ or set "
            "`weights = \"path/to/file.pdparams\"` and `pretrained = false`") from None
    if weights:
        load_weights(network, weights)
    return network


@lru_cache(maxsize=None)
def model_args_problem(name: str, model_args_json: str) -> str | None:
    """Why the network's builder does not take `model_args` (JSON), or None: checked before anything
    trains, on a network built as shapes only."""
    model_args = json.loads(model_args_json)
    if not model_args:
        return None
    entry = model_entry(name)
    try:
        with paddle.LazyGuard():  # shapes only: milliseconds, even for VGG
            entry.builder(num_classes=2, image_size=entry.default_image_size, **model_args)
    except TypeError as err:
        return f"model {name!r} does not take {', '.join(f'{k} = {v!r}' for k, v in model_args.items())} ({err})"
    except Exception:  # anything else depends on the run's input: the run itself will say
        return None
    return None


def load_weights(network: paddle.nn.Layer, path: str) -> list[str]:
    """Load the tensors of `path` whose names and shapes match; return the names skipped
    (typically the classifier, when the file was trained for another number of classes)."""
    if not os.path.isfile(path):
        raise RunnerError(f"weights file not found: {path}")
    saved = load_state_dict(path, "weights file")  # runs no code the file may hold
    own = network.state_dict()
    usable = {k: v for k, v in saved.items() if k in own and list(v.shape) == list(own[k].shape)}
    if not usable:
        raise RunnerError(f"weights file {path} shares no tensor with this network: is it for another model?")
    other = [k for k in usable if dtype_name(usable[k]) != dtype_name(own[k])]
    if other:
        k = other[0]
        raise RunnerError(f"weights file {path}: {len(other)} of its tensors hold another kind of number than the "
                          f"network's (e.g. {k}: {dtype_name(usable[k])} in the file, {dtype_name(own[k])} in the "
                          "network); save the weights as the network holds them")
    network.set_state_dict(usable)
    return sorted(set(own) - set(usable))


def dtype_name(tensor) -> str:
    """'float32' for a numpy array or a paddle tensor alike."""
    return str(tensor.dtype).removeprefix("paddle.")


def count_parameters(network: paddle.nn.Layer) -> int:
    return int(sum(p.size for p in network.parameters()))


def count_flops(network: paddle.nn.Layer, image_size: int, in_channels: int = 3,
                only_grouped: bool = False) -> int | None:
    """Multiply-accumulates of one forward pass through the convolutions and dense layers, which
    hold nearly all the work (`only_grouped`: through the grouped and depthwise convolutions alone,
    which a CPU runs far below their count's pace). (`paddle.flops` would do, but fails under numpy 2
    in paddle 3.3.)"""
    total = 0

    def conv(layer, inputs, output):
        nonlocal total
        if only_grouped and layer._groups == 1:
            return
        kh, kw = layer.weight.shape[2:]
        total += int(output.numel()) * (layer.weight.shape[1]) * kh * kw

    def dense(layer, inputs, output):
        nonlocal total
        if not only_grouped:
            total += int(output.numel()) * layer.weight.shape[0]

    hooks = [layer.register_forward_post_hook(conv if isinstance(layer, paddle.nn.Conv2D) else dense)
             for layer in network.sublayers() if isinstance(layer, (paddle.nn.Conv2D, paddle.nn.Linear))]
    was_training = network.training
    network.eval()
    try:
        with paddle.no_grad():
            network(paddle.zeros([1, in_channels, image_size, image_size]))
        return total
    except Exception:
        return None
    finally:
        for h in hooks:
            h.remove()
        network.train(was_training)


def check_input_size(network: paddle.nn.Layer, name: str, image_size: int, in_channels: int = 3) -> None:
    """Run one dummy image through `network`; if it fails, say which layer and what size would work."""
    was_training = network.training
    network.eval()
    try:
        run_dummy(network, in_channels, image_size)
    except InputTooSmall as err:
        smallest = smallest_size(lambda s: run_dummy(network, in_channels, s), image_size)
        raise size_error(name, image_size, in_channels, err, smallest) from None
    finally:
        network.train(was_training)


def smallest_size(attempt, image_size: int, limit: int = 512) -> int | None:
    """The smallest size above `image_size` for which `attempt(size)` does not raise InputTooSmall."""
    for size in range(image_size + 1, limit + 1):
        try:
            attempt(size)
            return size
        except InputTooSmall:
            continue
    return None


def size_error(name: str, image_size: int, in_channels: int, err: InputTooSmall, smallest: int | None):
    designed = model_entry(name).default_image_size
    fix = (f"use image_size >= {smallest}" if smallest else
           f"it needs another input than {in_channels}x{image_size}x{image_size} (it was designed for {designed})")
    return RunnerError(f"model {name!r} cannot take {in_channels}x{image_size}x{image_size} input: {err}; {fix}")


def build_model(network: paddle.nn.Layer, image_size: int, in_channels: int = 3) -> paddle.Model:
    """Wrap any network in `paddle.Model` with named input and label specs."""
    from paddle.static import InputSpec

    return paddle.Model(network,
                        inputs=InputSpec([None, in_channels, image_size, image_size], "float32", "image"),
                        labels=InputSpec([None, 1], "int64", "label"))


def describe_models(with_flops: bool = False) -> list[dict]:
    """name, origin, parameter count (2 classes) and default input size of every registered model.

    Parameters are counted on networks built under `paddle.LazyGuard` (shapes without initial
    values: milliseconds instead of seconds for VGG); the course networks that measure their own
    flatten size need a real forward pass and are built in full.
    """
    rows = []
    for name in list_models():
        entry = model_entry(name)
        size = entry.default_image_size
        try:
            if with_flops:
                raise RuntimeError("FLOPs need a real network")
            with paddle.LazyGuard():
                network = entry.builder(num_classes=2, image_size=size)
        except Exception:
            network = entry.builder(num_classes=2, image_size=size)
        row = {"name": name, "origin": entry.origin, "parameters": count_parameters(network),
               "image_size": size, "summary": entry.summary}
        if with_flops:
            row["flops"] = count_flops(network, size, 1 if name.endswith("/lenet") else 3)
        rows.append(row)
    return rows

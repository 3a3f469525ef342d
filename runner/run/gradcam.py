"""Grad-CAM (Selvaraju et al. 2017) on paddle's own hooks: where a trained network looks.

The heat of a class on an image is the ReLU of the last convolutional stage's activations,
each channel weighted by the mean gradient of the class's logit over that channel. The stage is the
network's last layer whose output is still an image (N x C x H x W with H, W > 1), found by
running it once: the registry may name another (`ModelEntry.cam_layer`), but every network of the
zoo is covered by the rule, with no list of layer names to keep up to date.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F


def last_spatial_layer(network: paddle.nn.Layer, image_size: int, in_channels: int = 3) -> str:
    """The name of the last sublayer (in the order their forwards finish) with an image-shaped
    output: a stage or block finishes after the layers inside it, so the stage itself is found."""
    finished: list[str] = []
    hooks = []
    for name, layer in network.named_sublayers():
        def record(layer, inputs, output, name=name):
            if isinstance(output, paddle.Tensor) and output.ndim == 4 and output.shape[2] > 1 and output.shape[3] > 1:
                finished.append(name)
        hooks.append(layer.register_forward_post_hook(record))
    was_training = network.training
    network.eval()
    try:
        with paddle.no_grad():
            network(paddle.zeros([1, in_channels, image_size, image_size]))
    finally:
        for hook in hooks:
            hook.remove()
        network.train(was_training)
    if not finished:
        raise ValueError("the network has no layer with an image-shaped output")
    return finished[-1]


def grad_cam(network: paddle.nn.Layer, images: np.ndarray, classes: np.ndarray, layer_name: str) -> np.ndarray:
    """Heat maps (N x H x W, each scaled to [0, 1]) of `classes` on float32 NCHW `images`."""
    layer = dict(network.named_sublayers())[layer_name]
    # A layer may be called more than once per forward (the course AlexNet shares one pooling
    # layer between three stages), so each call keeps its own output and gradient and the last
    # call with an image-shaped output is the one explained.
    calls: list[dict] = []

    def keep(layer, inputs, output):
        call = {"activations": output}
        calls.append(call)
        output.register_hook(lambda grad: call.__setitem__("gradients", grad))

    hook = layer.register_forward_post_hook(keep)
    was_training = network.training
    network.eval()
    try:
        logits = network(paddle.to_tensor(images))
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
        chosen = F.one_hot(paddle.to_tensor(classes.astype("int64")), logits.shape[1]).astype(logits.dtype)
        (logits * chosen).sum().backward()
        spatial = [call for call in calls if call["activations"].ndim == 4 and "gradients" in call]
        if not spatial:
            raise ValueError(f"layer {layer_name!r} has no image-shaped output that the class logit depends on")
        activations, gradients = spatial[-1]["activations"], spatial[-1]["gradients"]
        weights = gradients.mean(axis=[2, 3], keepdim=True)
        cam = F.relu((weights * activations).sum(axis=1, keepdim=True))
        cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0].numpy()
    finally:
        hook.remove()
        network.clear_gradients()
        network.train(was_training)
    peak = cam.reshape(len(cam), -1).max(1)
    return cam / np.where(peak > 0, peak, 1.0)[:, None, None]


def fixed_images(labels: np.ndarray, num_classes: int, per_class: int = 4) -> np.ndarray:
    """Indices of the images every run of a sweep is shown on: for two classes the first
    `per_class` of each, positives first; otherwise the first image of each of up to eight classes.
    Chosen by position, never by what a model got right or wrong."""
    if num_classes == 2:
        return np.concatenate([np.flatnonzero(labels == 1)[:per_class], np.flatnonzero(labels == 0)[:per_class]])
    return np.asarray([np.flatnonzero(labels == c)[0] for c in range(min(num_classes, 8)) if (labels == c).any()])

"""MobileNetV2 for 32x32 images.

The network of Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
(table 2): a 3x3 convolution to 32 channels, seven stages of inverted-residual bottlenecks
(expansion t, width c, n blocks, first stride s), a 1x1 convolution to 1280, global average pool,
one linear layer. Its blocks are paddle.vision's `InvertedResidual` (the paper's block: 1x1
expansion unless t = 1, 3x3 depthwise, linear 1x1 projection, ReLU6, identity shortcut when the
shape is kept), so the parameters are those of `paddle.vision/mobilenet_v2`.

For 32x32 the strides follow github.com/kuangliu/pytorch-cifar (models/mobilenetv2.py): the stem
and the second stage run at stride 1 instead of 2, so the map goes 32 -> 16 -> 8 -> 4 instead of
32 -> 1, and the last pool averages a 4x4 map. Unlike pytorch-cifar's copy, the blocks are the
paper's: no 1x1 convolution for t = 1 and no projection shortcuts (together 60 k parameters more).
No dropout before the classifier, as in pytorch-cifar.

Facts (10 classes): 2 236 682 parameters; 0.088 G multiply-accumulates per 32x32 image.
"""
from paddle import nn
from paddle.vision.models.mobilenetv2 import InvertedResidual
from paddle.vision.ops import ConvNormActivation

from runner.models.registry import RUNNER, register_model

# (expansion t, output channels c, blocks n, first stride s): the paper's table 2, with the stride
# of the second stage 2 -> 1 for 32x32 images as in pytorch-cifar.
CIFAR_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                  (6, 320, 1, 1)]


class CifarMobileNetV2(nn.Layer):
    def __init__(self, num_classes: int = 10, image_size: int = 32, settings=CIFAR_SETTINGS, stem_stride: int = 1):
        super().__init__()
        layers, in_channels = [ConvNormActivation(3, 32, stride=stem_stride, activation_layer=nn.ReLU6)], 32
        for expansion, channels, blocks, stride in settings:
            for i in range(blocks):
                layers.append(InvertedResidual(in_channels, channels, stride if i == 0 else 1, expansion))
                in_channels = channels
        layers.append(ConvNormActivation(in_channels, 1280, kernel_size=1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


@register_model("cifar_mobilenet_v2", origin=RUNNER, default_image_size=32)
def cifar_mobilenet_v2(num_classes: int = 10, image_size: int = 32, **kwargs):
    """MobileNetV2 (Sandler et al. 2018) with stride-1 stem and second stage for 32x32: 2.24 M parameters, 0.088 GMACs."""
    return CifarMobileNetV2(num_classes, image_size, **kwargs)

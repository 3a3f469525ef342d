"""David Page's ResNet-9 for 32x32 images, the network of his DAWNBench Cifar10 entry.

Source: D. Page, "How to train your ResNet" (myrtle.ai, 2018), parts 1-4, and its code,
github.com/davidcpage/cifar10-fast: `dawn_utils.net()` with its defaults, as `dawn.py` trains it to
94 % test accuracy in 24 epochs. Layer by layer:

    prep    conv 3x3 64,  BN, ReLU                                  32x32
    layer1  conv 3x3 128, BN, ReLU, max-pool 2  + residual(128)     16x16
    layer2  conv 3x3 256, BN, ReLU, max-pool 2                       8x8
    layer3  conv 3x3 512, BN, ReLU, max-pool 2  + residual(512)      4x4
    pool    max-pool over the whole 4x4 map, flatten
    linear  512 -> classes, no bias, logits times 0.125

residual(c) is x + (conv 3x3 c, BN, ReLU, conv 3x3 c, BN, ReLU)(x), with no activation after the
sum. Convolutions have no bias (batch norm follows each), batch-norm weights start at 1 and biases
at 0. Page trains in PyTorch, whose convolution and linear weights start uniform in
+-1/sqrt(fan_in); paddle's defaults start convolutions about 2.4x larger, which with batch norm
after them changes the effective learning rate of his recipe, so these layers start as his did.

Facts (10 classes): 6 573 120 parameters; 0.379 G multiply-accumulates per 32x32 image
(five 3x3 convolutions of 75.5 M each: the widths double as the map halves).
"""
import math

import paddle
from paddle import nn

from runner.models.layers import ConvBN
from runner.models.registry import RUNNER, register_model

LOGIT_SCALE = 0.125  # Page's `Mul(weight=0.125)` after the classifier


def torch_uniform() -> paddle.ParamAttr:
    """PyTorch's default start for convolution and linear weights: uniform in +-1/sqrt(fan_in)
    (kaiming_uniform with a = sqrt(5))."""
    return paddle.ParamAttr(initializer=nn.initializer.KaimingUniform(negative_slope=math.sqrt(5),
                                                                       nonlinearity="leaky_relu"))


def conv_bn(in_channels: int, out_channels: int) -> ConvBN:
    """Page's conv_bn: 3x3 convolution without bias, batch norm, ReLU."""
    return ConvBN(in_channels, out_channels, 3, weight_attr=torch_uniform())


class Residual(nn.Layer):
    """x + two conv_bn of the same width: Page's `residual(c)`, no activation after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.res1 = conv_bn(channels, channels)
        self.res2 = conv_bn(channels, channels)

    def forward(self, x):
        return x + self.res2(self.res1(x))


def layer(in_channels: int, out_channels: int, residual: bool) -> nn.Sequential:
    """conv_bn, max-pool 2 and, for layers 1 and 3, a residual block at the pooled size."""
    parts = [conv_bn(in_channels, out_channels), nn.MaxPool2D(2)]
    return nn.Sequential(*parts, *([Residual(out_channels)] if residual else []))


class ResNet9(nn.Layer):
    def __init__(self, num_classes: int = 10, image_size: int = 32, widths=(64, 128, 256, 512),
                 logit_scale: float = LOGIT_SCALE):
        super().__init__()
        prep, w1, w2, w3 = widths
        self.prep = conv_bn(3, prep)
        self.layer1 = layer(prep, w1, residual=True)
        self.layer2 = layer(w1, w2, residual=False)
        self.layer3 = layer(w2, w3, residual=True)
        self.pool = nn.AdaptiveMaxPool2D(1)  # Page's MaxPool2d(4) on the 4x4 map of a 32x32 input
        self.linear = nn.Linear(w3, num_classes, weight_attr=torch_uniform(), bias_attr=False)
        self.logit_scale = logit_scale

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.linear(self.pool(x).flatten(1)) * self.logit_scale


@register_model("resnet9", origin=RUNNER, default_image_size=32)
def resnet9(num_classes: int = 10, image_size: int = 32, **kwargs):
    """Page's DAWNBench ResNet-9 (myrtle.ai 2018, 94 % in 24 epochs): 6.57 M parameters, 0.38 GMACs at 32x32."""
    return ResNet9(num_classes, image_size, **kwargs)

"""VGG-11 with batch norm for 32x32 images.

Configuration "A" of Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale
Image Recognition" (table 1: 8 convolutions 3x3 at 64-128-256-256-512-512-512-512 in five blocks,
each block ending in a 2x2 max-pool), with batch norm after every convolution (Ioffe & Szegedy
2015) and, for 32x32, the classifier of github.com/kuangliu/pytorch-cifar (models/vgg.py): the five
pools take 32x32 to 1x1x512 and one linear layer replaces the three dense layers of 4096.
Convolutions have no bias, which the batch norm after them would cancel (pytorch-cifar keeps
one: 2 752 more parameters, the same function).

Facts (10 classes): 9 228 362 parameters; 0.153 G multiply-accumulates per 32x32 image.
"""
import paddle
from paddle import nn

from runner.models.layers import ConvBN, InputTooSmall
from runner.models.registry import RUNNER, register_model

# Output channels of each convolution, one list per block (configuration "A", VGG-11).
VGG11_BLOCKS = [[64], [128], [256, 256], [512, 512], [512, 512]]


def conv_bn_block(in_channels: int, widths: list[int]) -> nn.Sequential:
    layers = []
    for width in widths:
        layers.append(ConvBN(in_channels, width, 3))
        in_channels = width
    return nn.Sequential(*layers, nn.MaxPool2D(2, 2))


class CifarVGG(nn.Layer):
    def __init__(self, blocks, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        in_channels = [3] + [b[-1] for b in blocks[:-1]]
        self.features = nn.Sequential(*(conv_bn_block(c, b) for c, b in zip(in_channels, blocks)))
        side = image_size >> len(blocks)  # each block halves the map (floor), as its max-pool does
        if side == 0:
            raise InputTooSmall("features", f"{len(blocks)} 2x2 max-pools take {image_size}x{image_size} below 1x1")
        # counted, not measured by a forward pass: that would move the batch norms' running statistics
        self.classifier = nn.Linear(blocks[-1][-1] * side * side, num_classes)

    def forward(self, x):
        return self.classifier(paddle.flatten(self.features(x), 1))


@register_model("cifar_vgg11", origin=RUNNER, default_image_size=32)
def cifar_vgg11(num_classes: int = 10, image_size: int = 32, **kwargs):
    """VGG-11 (configuration A) with batch norm for 32x32, one linear classifier (pytorch-cifar): 9.23 M parameters, 0.15 GMACs."""
    return CifarVGG(VGG11_BLOCKS, num_classes, image_size, **kwargs)

"""ResNets made for 32x32 images.

An ImageNet ResNet opens with a stride-2 7x7 convolution and a max-pool, so a 32x32 Cifar10 image
is 8x8 after its stem and 1x1 in its last stage. These keep the full 32x32 through a 3x3 stride-1
stem with no max-pool:

- ResNet-20 and ResNet-56 (He et al. 2016, "Deep Residual Learning", section 4.2): three stages of
  basic blocks (16, 32, 64 channels at 32x32, 16x16, 8x8), 6n + 2 layers and a fraction of the
  parameters (ResNet-20: 0.27 M);
- ResNet-18 for 32x32 as github.com/kuangliu/pytorch-cifar builds it (models/resnet.py, the most used
  Cifar10 adaptation): the ImageNet ResNet-18's four stages of two basic blocks at 64, 128, 256 and
  512 channels (32x32 down to 4x4), the stem replaced by a 3x3 stride-1 convolution, 1x1
  projection shortcuts where the shape changes; 11.17 M parameters, 0.56 G multiply-accumulates.
"""
from paddle import nn

from runner.models.layers import ConvBN, projection_shortcut
from runner.models.registry import RUNNER, register_model


class BasicBlock(nn.Layer):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv0 = ConvBN(in_channels, out_channels, 3, stride=stride)
        self.conv1 = ConvBN(out_channels, out_channels, 3, act=False)
        self.short = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        shortcut = x if self.short is None else self.short(x)
        return nn.functional.relu(self.conv1(self.conv0(x)) + shortcut)


class CifarResNet(nn.Layer):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10, image_size: int = 32, widths=(16, 32, 64)):
        super().__init__()
        self.stem = ConvBN(3, widths[0], 3)
        blocks, in_channels = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(in_channels, width, stride=2 if i == 0 and stage > 0 else 1))
                in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(x.flatten(1))


@register_model("cifar_resnet20", origin=RUNNER, default_image_size=32)
def cifar_resnet20(num_classes: int = 10, image_size: int = 32, **kwargs):
    """ResNet-20 for 32x32 images (He et al. 2016): 3 stages of 3 basic blocks, 0.27 M parameters."""
    return CifarResNet(3, num_classes, image_size, **kwargs)


@register_model("cifar_resnet56", origin=RUNNER, default_image_size=32)
def cifar_resnet56(num_classes: int = 10, image_size: int = 32, **kwargs):
    """ResNet-56 for 32x32 images (He et al. 2016): 3 stages of 9 basic blocks, 0.85 M parameters."""
    return CifarResNet(9, num_classes, image_size, **kwargs)


@register_model("cifar_resnet18", origin=RUNNER, default_image_size=32)
def cifar_resnet18(num_classes: int = 10, image_size: int = 32, **kwargs):
    """ResNet-18 for 32x32 images (kuangliu/pytorch-cifar): 3x3 stem, 4 stages of 2 basic blocks, 11.17 M parameters, 0.56 GMACs."""
    return CifarResNet(2, num_classes, image_size, **{"widths": (64, 128, 256, 512), **kwargs})

"""ResNet with bottleneck blocks, as the course builds it from ConvBN layers."""
import math

import paddle
from paddle import nn

from runner.models.layers import ConvBN, projection_shortcut
from runner.models.registry import register_model


class BottleneckBlock(nn.Layer):
    expansion = 4

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv0 = ConvBN(in_channels, width, 1)
        self.conv1 = ConvBN(width, width, 3, stride=stride)
        self.conv2 = ConvBN(width, out_channels, 1, act=False)
        self.short = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        y = self.conv2(self.conv1(self.conv0(x)))
        shortcut = x if self.short is None else self.short(x)
        return nn.functional.relu(y + shortcut)


class ResNet(nn.Layer):
    def __init__(self, depths, num_classes: int = 2, image_size: int = 224, widths=(64, 128, 256, 512)):
        super().__init__()
        self.stem = nn.Sequential(ConvBN(3, 64, 7, stride=2), nn.MaxPool2D(3, stride=2, padding=1))
        blocks, in_channels = [], 64
        for stage, (depth, width) in enumerate(zip(depths, widths)):
            for i in range(depth):
                stride = 2 if i == 0 and stage > 0 else 1
                blocks.append(BottleneckBlock(in_channels, width, stride))
                in_channels = width * BottleneckBlock.expansion
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2D(1)
        stdv = 1.0 / math.sqrt(in_channels)  # the course's uniform initialisation of the classifier
        self.fc = nn.Linear(in_channels, num_classes,
                            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-stdv, stdv)))

    def forward(self, x):
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(paddle.flatten(x, 1))


@register_model("resnet50")
def resnet50(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's ResNet-50: bottleneck stages of 3, 4, 6, 3 blocks."""
    return ResNet([3, 4, 6, 3], num_classes, image_size, **kwargs)


@register_model("resnet101")
def resnet101(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's ResNet-101: bottleneck stages of 3, 4, 23, 3 blocks."""
    return ResNet([3, 4, 23, 3], num_classes, image_size, **kwargs)


@register_model("resnet152")
def resnet152(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's ResNet-152: bottleneck stages of 3, 8, 36, 3 blocks."""
    return ResNet([3, 8, 36, 3], num_classes, image_size, **kwargs)

"""Small pieces shared by the course networks."""
import paddle
from paddle import nn


def flat_features(features, in_channels: int, image_size: int) -> int:
    """Number of values `features` yields for one image: the course hard-codes it for 224x224."""
    with paddle.no_grad():
        out = features(paddle.zeros([1, in_channels, image_size, image_size]))
    return int(out.numel())


class ConvBN(nn.Layer):
    """Convolution, batch norm, optional ReLU: the course's ConvBNLayer."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                              padding=(kernel_size - 1) // 2, groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

"""LeNet as the course builds it for iChallenge-PM: sigmoid activations, three convolutions.

The course hard-codes the flatten size for one input size (300000 at 224x224); here it is
measured from the input size instead, so the same network runs on 32x32 Cifar10 too.
"""
import paddle
import paddle.nn.functional as F
from paddle import nn

from runner.models.layers import flat_features
from runner.models.registry import register_model


class LeNet(nn.Layer):
    def __init__(self, num_classes: int = 2, image_size: int = 224, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2D(in_channels, 6, kernel_size=5)
        self.pool1 = nn.MaxPool2D(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2D(6, 16, kernel_size=5)
        self.pool2 = nn.MaxPool2D(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2D(16, 120, kernel_size=4)
        self.fc1 = nn.Linear(flat_features(self.features, in_channels, image_size), 64)
        self.fc2 = nn.Linear(64, num_classes)

    def features(self, x):
        x = self.pool1(F.sigmoid(self.conv1(x)))
        x = self.pool2(F.sigmoid(self.conv2(x)))
        return F.sigmoid(self.conv3(x))

    def forward(self, x):
        x = paddle.flatten(self.features(x), 1)
        return self.fc2(F.sigmoid(self.fc1(x)))


@register_model("lenet")
def lenet(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's LeNet (sigmoid; stays at the majority class on iChallenge-PM, as in the course)."""
    return LeNet(num_classes, image_size, **kwargs)

"""VGG as the course builds it: blocks of 3x3 convolutions and max pooling, then three dense layers."""
import paddle
from paddle import nn

from runner.models.layers import flat_features
from runner.models.registry import register_model

# Output channels of each convolution, one list per block (configuration "D" for VGG-16).
VGG16_BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


def conv_block(in_channels, widths):
    layers = []
    for width in widths:
        layers += [nn.Conv2D(in_channels, width, 3, padding=1), nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers, nn.MaxPool2D(2, 2))


class VGG(nn.Layer):
    def __init__(self, blocks, num_classes: int = 2, image_size: int = 224, dropout: float = 0.5):
        super().__init__()
        in_channels = [3] + [b[-1] for b in blocks[:-1]]
        self.features = nn.Sequential(*(conv_block(c, b) for c, b in zip(in_channels, blocks)))
        self.classifier = nn.Sequential(
            nn.Linear(flat_features(self.features, 3, image_size), 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(paddle.flatten(self.features(x), 1))


@register_model("vgg16")
def vgg16(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's VGG-16: 13 convolutions in 5 blocks, no batch norm."""
    return VGG(VGG16_BLOCKS, num_classes, image_size, **kwargs)

"""AlexNet, layer for layer as in the course (and in ../shared/bench/seed_recipe.py)."""
import paddle
import paddle.nn.functional as F
from paddle import nn

from runner.models.layers import flat_features
from runner.models.registry import register_model


class AlexNet(nn.Layer):
    def __init__(self, num_classes: int = 2, image_size: int = 224, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2D(3, 96, 11, stride=4, padding=5)
        self.conv2 = nn.Conv2D(96, 256, 5, stride=1, padding=2)
        self.conv3 = nn.Conv2D(256, 384, 3, stride=1, padding=1)
        self.conv4 = nn.Conv2D(384, 384, 3, stride=1, padding=1)
        self.conv5 = nn.Conv2D(384, 256, 3, stride=1, padding=1)
        self.pool = nn.MaxPool2D(2, 2)
        # 12544 at 224x224 in the course; measured here so any input size works.
        self.fc1 = nn.Linear(flat_features(self.features, 3, image_size), 4096)
        self.fc2 = nn.Linear(4096, 4096)
        self.fc3 = nn.Linear(4096, num_classes)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def features(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.conv4(F.relu(self.conv3(x))))
        return self.pool(F.relu(self.conv5(x)))

    def forward(self, x):
        x = paddle.flatten(self.features(x), 1)
        x = self.drop1(F.relu(self.fc1(x)))
        x = self.drop2(F.relu(self.fc2(x)))
        return self.fc3(x)


@register_model("alexnet")
def alexnet(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's AlexNet: 5 convolutions, 3 fully connected layers, dropout 0.5."""
    return AlexNet(num_classes, image_size, **kwargs)

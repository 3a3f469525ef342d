"""GoogLeNet (Inception v1) as in the course, plus the paper's two auxiliary classifiers.

The course's stem convolution has stride 1 (the paper's has 2); `stem_stride` chooses. The
auxiliary heads hang off blocks 4a and 4d and take part only in training: in train mode the
network returns (logits, aux1, aux2), in eval mode just logits, so reported accuracy is always the
main head's. The heads pool adaptively to 4x4 (the paper: 5x5 average pooling, stride 3, which
gives 4x4 at 224x224 and fails on small inputs).
"""
import paddle
import paddle.nn.functional as F
from paddle import nn

from runner.models.registry import register_model


class Inception(nn.Layer):
    """Four parallel paths: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool then 1x1."""

    def __init__(self, c0, c1, c2, c3, c4):
        super().__init__()
        self.p1_1 = nn.Conv2D(c0, c1, 1)
        self.p2_1 = nn.Conv2D(c0, c2[0], 1)
        self.p2_2 = nn.Conv2D(c2[0], c2[1], 3, padding=1)
        self.p3_1 = nn.Conv2D(c0, c3[0], 1)
        self.p3_2 = nn.Conv2D(c3[0], c3[1], 5, padding=2)
        self.p4_1 = nn.MaxPool2D(3, stride=1, padding=1)
        self.p4_2 = nn.Conv2D(c0, c4, 1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return paddle.concat([p1, p2, p3, p4], axis=1)


class AuxHead(nn.Layer):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2D(4)
        self.conv = nn.Conv2D(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.drop = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = F.relu(self.conv(self.pool(x)))
        x = self.drop(F.relu(self.fc1(paddle.flatten(x, 1))))
        return self.fc2(x)


class GoogLeNet(nn.Layer):
    def __init__(self, num_classes: int = 2, image_size: int = 224, stem_stride: int = 1, aux_heads: bool = True):
        super().__init__()
        pool = lambda: nn.MaxPool2D(3, stride=2, padding=1)  # noqa: E731
        self.conv1 = nn.Conv2D(3, 64, 7, stride=stem_stride, padding=3)
        self.pool1 = pool()
        self.conv2_1 = nn.Conv2D(64, 64, 1)
        self.conv2_2 = nn.Conv2D(64, 192, 3, padding=1)
        self.pool2 = pool()
        self.block3_1 = Inception(192, 64, (96, 128), (16, 32), 32)
        self.block3_2 = Inception(256, 128, (128, 192), (32, 96), 64)
        self.pool3 = pool()
        self.block4_1 = Inception(480, 192, (96, 208), (16, 48), 64)
        self.block4_2 = Inception(512, 160, (112, 224), (24, 64), 64)
        self.block4_3 = Inception(512, 128, (128, 256), (24, 64), 64)
        self.block4_4 = Inception(512, 112, (144, 288), (32, 64), 64)
        self.block4_5 = Inception(528, 256, (160, 320), (32, 128), 128)
        self.pool4 = pool()
        self.block5_1 = Inception(832, 256, (160, 320), (32, 128), 128)
        self.block5_2 = Inception(832, 384, (192, 384), (48, 128), 128)
        self.pool5 = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(1024, num_classes)
        self.aux1 = AuxHead(512, num_classes) if aux_heads else None
        self.aux2 = AuxHead(528, num_classes) if aux_heads else None

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2_2(F.relu(self.conv2_1(x)))))
        x = self.pool3(self.block3_2(self.block3_1(x)))
        a1 = self.block4_1(x)
        x = self.block4_3(self.block4_2(a1))
        a2 = self.block4_4(x)
        x = self.pool4(self.block4_5(a2))
        x = self.pool5(self.block5_2(self.block5_1(x)))
        logits = self.fc(paddle.flatten(x, 1))
        if self.training and self.aux1 is not None:
            return logits, self.aux1(a1), self.aux2(a2)
        return logits


@register_model("googlenet")
def googlenet(num_classes: int = 2, image_size: int = 224, **kwargs):
    """The course's GoogLeNet (Inception v1, stem stride 1) with two auxiliary heads for training."""
    return GoogLeNet(num_classes, image_size, **kwargs)

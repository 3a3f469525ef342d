"""Small pieces shared by the course networks."""
import paddle
from paddle import nn


class InputTooSmall(Exception):
    """A network cannot take inputs of this size; `layer` is the one that failed."""

    def __init__(self, layer: str, detail: str):
        super().__init__(f"layer {layer} fails ({detail})")
        self.layer, self.detail = layer, detail


def check_conv_fits(name: str, conv: nn.Conv2D, x) -> None:
    """Raise InputTooSmall if `conv` cannot slide over `x`. Checked before the kernel runs because
    paddle 3.3's CPU convolution corrupts memory on such input instead of raising an error."""
    padding = conv._padding
    if isinstance(padding, str):
        if padding.upper() == "SAME":
            return
        padding = 0
    pads = [padding] * 4 if isinstance(padding, int) else list(padding)
    if len(pads) == 2:
        pads = [pads[0], pads[0], pads[1], pads[1]]
    height, width = x.shape[-2], x.shape[-1]
    (kh, kw), (dh, dw) = conv._kernel_size, conv._dilation
    need_h, need_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if height + pads[0] + pads[1] < need_h or width + pads[-2] + pads[-1] < need_w:
        raise InputTooSmall(name, f"its {kh}x{kw} kernel meets a {height}x{width} feature map")


def run_dummy(layer_or_fn, in_channels: int, image_size: int):
    """Forward one zero image, naming the innermost layer entered if it fails (InputTooSmall)."""
    owner = getattr(layer_or_fn, "__self__", layer_or_fn)
    entered: list[str] = []

    def pre_hook(layer, inputs, name):
        entered.append(name)
        if isinstance(layer, nn.Conv2D):
            check_conv_fits(name, layer, inputs[0])

    hooks = [sub.register_forward_pre_hook(lambda layer, inputs, n=n: pre_hook(layer, inputs, n))
             for n, sub in owner.named_sublayers()]
    try:
        with paddle.no_grad():
            return layer_or_fn(paddle.zeros([1, in_channels, image_size, image_size]))
    except InputTooSmall:
        raise
    except Exception as err:  # paddle raises ValueError or its own error types for bad shapes
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        detail = next((line for line in lines if "Error" in line or "shape" in line.lower()),
                      lines[0] if lines else type(err).__name__)
        raise InputTooSmall(entered[-1] if entered else type(owner).__name__, detail[:200]) from None
    finally:
        for h in hooks:
            h.remove()


def flat_features(features, in_channels: int, image_size: int) -> int:
    """Number of values `features` yields for one image: the course hard-codes it for 224x224."""
    return int(run_dummy(features, in_channels, image_size).numel())


class ConvBN(nn.Layer):
    """Convolution, batch norm, optional ReLU: the course's ConvBNLayer."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, act=True, weight_attr=None):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                              padding=(kernel_size - 1) // 2, groups=groups, weight_attr=weight_attr, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> ConvBN | None:
    """A residual block's 1x1 projection where its output shape differs from its input's, None
    (the identity) where it does not: the course's choice and He et al.'s option B."""
    if stride == 1 and in_channels == out_channels:
        return None
    return ConvBN(in_channels, out_channels, 1, stride=stride, act=False)


class SigmoidHead(nn.Layer):
    """One logit z per image, as the course builds its networks (binary cross-entropy on a sigmoid),
    seen by the rest of the runner as the two logits [0, z].

    softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)], and cross entropy on [0, z] is exactly binary
    cross-entropy on z, so the loss, metrics, export and predict stay those of a two-class network.
    It differs from a two-logit head in training: one output row instead of two, so another
    initialisation and half the final layer's step on the decision.
    """

    def __init__(self, body: nn.Layer):
        super().__init__()
        self.body = body

    def forward(self, x):
        out = self.body(x)
        if isinstance(out, (tuple, list)):  # GoogLeNet's auxiliary heads in training
            return tuple(self.two_logits(o) for o in out)
        return self.two_logits(out)

    @staticmethod
    def two_logits(z):
        return paddle.concat([paddle.zeros_like(z), z], axis=1)

"""Every constructor of `paddle.vision.models`, registered as `paddle.vision/<name>`.

The prefix keeps them apart from the course's hand-built networks of the same name
(`alexnet` is the course's, `paddle.vision/alexnet` paddle's). Some of paddle's networks only
take the input size they were designed for (AlexNet, GoogLeNet and SqueezeNet 224x224,
Inception-v3 299x299, LeNet 1x28x28); `runner.models.check_input_size` says so before training.
"""
import inspect

from paddle.vision import models as pv

from runner.models.registry import PADDLE_VISION, register_model

PREFIX = "paddle.vision/"

# Input sizes the constructors need, where they cannot adapt (measured on paddle 3.3).
DEFAULT_SIZES = {"inception_v3": 299, "lenet": 28}


def _constructors():
    for name in pv.__all__:
        obj = getattr(pv, name)
        if name[0].islower() and callable(obj):
            yield name, obj
    yield "lenet", pv.LeNet  # the zoo's LeNet is only a class


def _register(name, constructor):
    accepts_pretrained = "pretrained" in inspect.signature(constructor).parameters

    def build(num_classes: int = 2, image_size: int = 224, pretrained: bool = False, **kwargs):
        if pretrained:
            kwargs["pretrained"] = True
        elif accepts_pretrained:
            kwargs["pretrained"] = False
        return constructor(num_classes=num_classes, **kwargs)

    build.accepts_pretrained = accepts_pretrained
    register_model(PREFIX + name, origin=PADDLE_VISION, summary=f"paddle.vision.models.{constructor.__name__}",
                   default_image_size=DEFAULT_SIZES.get(name, 224))(build)


for _name, _constructor in _constructors():
    _register(_name, _constructor)

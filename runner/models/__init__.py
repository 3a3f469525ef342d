"""The model zoo: course networks, paddle.vision constructors and the runner's own, found by name.
Importing it imports every family, which registers its networks (the builders are in build.py).

    from runner.models import build_network, list_models
    net = build_network("alexnet", num_classes=2, image_size=224)
"""
from __future__ import annotations

# Importing a family module registers its networks: the course's in the course's order, then the zoo.
from runner.models import lenet  # noqa: F401, I001
from runner.models import alexnet  # noqa: F401
from runner.models import vgg  # noqa: F401
from runner.models import googlenet  # noqa: F401
from runner.models import resnet  # noqa: F401
from runner.models import cifar_resnet  # noqa: F401
from runner.models import airbench  # noqa: F401
from runner.models import resnet9  # noqa: F401
from runner.models import cifar_mobilenet  # noqa: F401
from runner.models import cifar_vgg  # noqa: F401
from runner.models import paddle_vision  # noqa: F401
from runner.models.build import (build_model, build_network, check_input_size, count_flops,
                                 count_parameters, describe_models, dtype_name, load_weights, model_args_problem)
from runner.models.layers import SigmoidHead
from runner.models.registry import COURSE, PADDLE_VISION, RUNNER, ModelEntry, list_models, model_entry, register_model

__all__ = ["COURSE", "PADDLE_VISION", "RUNNER", "ModelEntry", "SigmoidHead", "build_model",
           "build_network", "check_input_size", "count_flops", "count_parameters", "describe_models", "dtype_name",
           "list_models",
           "load_weights", "model_args_problem", "model_entry", "register_model"]

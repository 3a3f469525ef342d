"""A tiny model registry: a decorator, a dict, and lookups by name (after torchvision's _api.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from runner.errors import UnknownModelError, unknown_model_message

COURSE = "course"
PADDLE_VISION = "paddle.vision"
RUNNER = "runner"  # networks the runner adds for its own recipes, e.g. ResNets made for 32x32 Cifar10


@dataclass(frozen=True)
class ModelEntry:
    name: str
    origin: str  # COURSE, PADDLE_VISION or RUNNER
    builder: Callable
    summary: str = ""
    default_image_size: int = 224


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, origin: str = COURSE, summary: str = "", default_image_size: int = 224):
    """Decorator: make a network factory findable by `name`."""

    def wrap(fn: Callable) -> Callable:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelEntry(name, origin, fn, summary or (fn.__doc__ or "").strip().split("\n")[0],
                                   default_image_size)
        return fn

    return wrap


def list_models(origin: str | None = None) -> list[str]:
    return [n for n, e in _MODELS.items() if origin is None or e.origin == origin]


def model_entry(name: str) -> ModelEntry:
    """The registry's entry of `name`: its builder, origin, summary and default input size."""
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(unknown_model_message(name, list(_MODELS), list_models(COURSE))) from None

"""Model registry, timm-style: builders register under a name with the loss they train with by default.

    @register_model("perceptual", default_loss="perceptual")
    class TransformNet(nn.Module): ...

    model = create_model("perceptual", width=0.5)   # kwargs must be JSON-serializable: checkpoints store them

Every model maps L_norm (N, 1, H, W) to ab_norm (N, 2, H, W), or to RGB (N, 3, H, W) in [0, 1] when its
attribute `output_space` is "rgb", for any H and W.

The modules defining models are imported on first use rather than at import time, so that they can import
`register_model` from here without a cycle, and a model is found as soon as its module is loaded.
"""

import importlib
from typing import Callable

from torch import nn

MODEL_MODULES = ("colorization.models.transform_net", "baselines.koalarization")

_builders: dict[str, Callable[..., nn.Module]] = {}
_default_losses: dict[str, str] = {}


def register_model(name: str, *, default_loss: str):
    """Decorator registering a builder `build(**kwargs) -> nn.Module` (a class works) under name."""

    def decorate(builder):
        if _builders.get(name, builder) is not builder:
            raise ValueError(f"model name {name!r} is already registered by {_builders[name]!r}")
        _builders[name] = builder
        _default_losses[name] = default_loss
        return builder

    return decorate


def create_model(name: str, **kwargs) -> nn.Module:
    return _builders[_resolve(name)](**kwargs)


def default_loss(name: str) -> str:
    return _default_losses[_resolve(name)]


def list_models() -> list[str]:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return sorted(_builders)


def _resolve(name: str) -> str:
    for module in MODEL_MODULES:
        if name in _builders:
            break
        importlib.import_module(module)
    if name not in _builders:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_builders))}")
    return name

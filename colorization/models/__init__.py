"""Model registry, timm-style: a model registers itself under a name with the recipe it was published with.

    @register_model("perceptual", recipe=Recipe(...))
    class TransformNet(nn.Module): ...

    model = create_model("perceptual", width=0.5)   # kwargs must be JSON-serializable: checkpoints store them

Every model maps L_norm (N, 1, H, W) to ab_norm (N, 2, H, W), or to RGB (N, 3, H, W) in [0, 1] when its
attribute `output_space` is "rgb", for any H and W. A model with any other output space (class scores over
quantized colours, say) defines `to_ab(output, size) -> ab_norm (N, 2, *size)`; inference calls it.

Where models come from, so that adding one touches no file here:
- this package's own models (BUILTIN_MODULES);
- installed packages that declare a module in the entry-point group "colorization.models" (this repository's
  pyproject.toml declares `baselines.koalarization` and `baselines.eccv16` there; `pip install -e .` makes
  them visible, which `make` does);
- any importable module named with `--model-module` (or `import_model_module`), e.g. a third-party model
  in a file of your own;
- a checkpoint: it stores the module that registered its model, which loading imports again.
Modules are imported on first use, not at import time, so that they can import `register_model` from here.
"""

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from colorization.errors import ConfigError

if TYPE_CHECKING:  # torch only for the annotations: colorization.config and --help import this module, not torch
    from torch import nn

BUILTIN_MODULES = ("colorization.models.transform_net",)
ENTRY_POINT_GROUP = "colorization.models"


@dataclass(frozen=True)
class Recipe:
    """How a model was trained where it was published: `train` uses it for every setting left out.

    source: where the recipe comes from. assumptions: (setting, note) pairs for what that source leaves open
    and this package had to choose; each note says what was chosen and the option that changes it. They are
    listed in README's recipe table and by `compare`.
    """

    source: str
    loss: str
    optimizer: str
    schedule: str
    batch_size: int
    image_size: int
    optimizer_options: dict = field(default_factory=dict)  # e.g. Adam's betas and weight_decay
    assumptions: tuple[tuple[str, str], ...] = ()


_builders: dict[str, Callable[..., "nn.Module"]] = {}
_recipes: dict[str, Recipe] = {}
_modules: dict[str, str] = {}


def scaled(channels: int, width: float) -> int:
    """A layer's channel count under a model's `width` multiplier (at least 1 channel)."""
    return max(1, round(channels * width))


def register_model(name: str, *, recipe: Recipe, module: str | None = None):
    """Decorator registering a builder `build(**kwargs) -> nn.Module` (a class works) under name.

    module: what checkpoints import to find the model again (model_module); default: the builder's module. A
    package that registers a model defined in one of its submodules names itself, the module its entry point
    and its checkpoints name.
    """

    def decorate(builder):
        if _builders.get(name, builder) is not builder:
            raise ValueError(f"model name {name!r} is already registered by {_builders[name]!r}")
        _builders[name] = builder
        _recipes[name] = recipe
        _modules[name] = module or builder.__module__
        return builder

    return decorate


def create_model(name: str, **kwargs) -> "nn.Module":
    """The model `name` built with kwargs; ConfigError naming the options it does not take."""
    known = inspect.signature(_builders[_resolve(name)]).parameters
    if not any(item.kind is inspect.Parameter.VAR_KEYWORD for item in known.values()):
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ConfigError(
                f"the {name} model has no option {', '.join(unknown)} (--model-opt); its options: "
                f"{', '.join(known) or 'none'}"
            )
    model = _builders[name](**kwargs)
    if not hasattr(model, "output_space"):
        raise ValueError(
            f'the {name} model ({type(model).__name__}) has no `output_space` attribute: set it to "ab" (ab_norm '
            'out), "rgb", or a space of its own with a to_ab(output, size) method (see colorization.models)'
        )
    return model


def recipe(name: str) -> Recipe:
    """The training recipe `name` was registered with."""
    return _recipes[_resolve(name)]


def model_defaults(name: str) -> dict:
    """The keyword arguments of `name`'s builder that have defaults, with them (the published model's)."""
    parameters = inspect.signature(_builders[_resolve(name)]).parameters.values()
    return {item.name: item.default for item in parameters if item.default is not inspect.Parameter.empty}


def model_module(name: str) -> str:
    """The module that registered `name`: checkpoints store it so that loading them finds the model again."""
    return _modules[_resolve(name)]


def list_models() -> list[str]:
    for load in _sources():
        load()
    return sorted(_builders)


def import_model_module(module: str) -> None:
    """Import a module that registers models (`--model-module`); ConfigError naming it if it cannot be found."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or not module.startswith(error.name):
            raise ConfigError(
                f"model module {module!r} needs the package {error.name!r}, which is not installed here"
            ) from None
        raise ConfigError(
            f"model module {module!r} cannot be imported: no module named {error.name!r} (give a dotted module "
            "path importable from here, e.g. my_models.ddcolor; a checkpoint names the module of its model, "
            "which must be importable where it is loaded)"
        ) from None


def _sources() -> list[Callable[[], object]]:
    """Loaders for every place models come from, cheapest first."""
    builtin: list[Callable[[], object]] = [partial(importlib.import_module, module) for module in BUILTIN_MODULES]
    return builtin + [partial(_load_entry_point, entry) for entry in entry_points(group=ENTRY_POINT_GROUP)]


def _load_entry_point(entry) -> None:
    try:
        entry.load()
    except ImportError as error:
        package = entry.dist.name if entry.dist else "an installed package"
        raise ConfigError(
            f"model entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP!r}, declared by {package}) "
            f"cannot be imported: {error}. Reinstall that package, or uninstall it if it is gone"
        ) from error


def _resolve(name: str) -> str:
    if name in _builders:
        return name  # without listing the installed packages' entry points
    for load in _sources():
        if name in _builders:
            break
        load()
    if name not in _builders:
        raise ConfigError(
            f"unknown model {name!r}; available: {', '.join(sorted(_builders))}. A model outside this package "
            f"is found through the {ENTRY_POINT_GROUP!r} entry points of installed packages (in this "
            "repository: `pip install -e .`) or with --model-module MODULE"
        )
    return name

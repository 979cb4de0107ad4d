"""Pretrained backbone weights (VGG16 for the perceptual loss, Inception-ResNet-v2 for Koalarization).

Every backbone option takes one of three values:
- "imagenet" (default): the library's ImageNet weights, downloaded on first use into the torch/timm cache;
- a PATH to a state_dict saved with torch.save (loaded with weights_only=True, so no code runs);
- "none": random initialization (tests, smoke runs, or training the backbone from scratch).
Offline, "imagenet" fails with WeightsUnavailable naming both fallbacks.
"""

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from colorization.config import IMAGENET, RANDOM_INIT
from colorization.errors import ConfigError, UserError


class WeightsUnavailable(UserError, RuntimeError):
    """Pretrained weights could not be obtained (usually: no network to download them); the message names the
    options that do without them."""


def imagenet_vgg16() -> torchvision.models.VGG:
    """torchvision's VGG16 with its ImageNet weights (the perceptual loss network)."""
    return torchvision.models.vgg16(weights=torchvision.models.VGG16_Weights.IMAGENET1K_V1)


def load_backbone(
    spec,
    *,
    name: str,
    option: str,
    load_default: Callable[[], nn.Module],
    model: nn.Module | Callable[[], nn.Module],
) -> nn.Module:
    """The backbone `spec` asks for ("imagenet", a state_dict PATH, or "none"; see the module docstring).

    name: the backbone's name for messages ("VGG16"); option: the command-line option that sets it
    ("--vgg-weights"); load_default: returns the pretrained module; model: the randomly initialized module,
    or a function building it (so the "imagenet" case does not build a second network for nothing).
    A state_dict may hold more entries than the module needs, and its keys may carry a prefix: a full
    VGG16 state_dict ("features.0.weight", "classifier...") loads into VGG16's features ("0.weight").
    """
    if str(spec) == IMAGENET:
        try:
            return load_default()
        except (OSError, RuntimeError) as error:
            # urllib's URLError and huggingface_hub's LocalEntryNotFoundError are OSErrors;
            # torch.hub reports corrupt or partial downloads as RuntimeError.
            raise WeightsUnavailable(
                f"Cannot load the ImageNet weights of {name}: the download failed and they are not in the "
                f"local cache ({type(error).__name__}: {error}). This machine may have no network. Use "
                f"`{option} PATH` with a state_dict file saved by torch.save, or `{option} none` for "
                f"random initialization."
            ) from error
    module = model if isinstance(model, nn.Module) else model()
    if str(spec) == RANDOM_INIT:
        return module
    module.load_state_dict(_matching_state_dict(Path(spec), module, name=name, option=option))
    return module


def read_state_dict(path, *, missing: str) -> Mapping:
    """The mapping saved in `path` with torch.save, loaded with weights_only=True (no code runs).

    FileNotFoundError with the message `missing` when there is no such file; ConfigError naming the file when it
    is not loadable or holds something other than a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types (pickle, zip, unpickler refusals)
        # The first line only: torch goes on to suggest weights_only=False, which would run the file's code.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(f"{path}: not a loadable state_dict file ({type(error).__name__}: {reason})") from None
    if not isinstance(state, Mapping):
        raise ConfigError(f"{path}: expected a state_dict (a mapping of tensors), got {type(state).__name__}")
    return state


def _matching_state_dict(path: Path, module: nn.Module, *, name: str, option: str) -> dict:
    state = read_state_dict(
        path, missing=f"{option} {path}: no such file (expected '{IMAGENET}', '{RANDOM_INIT}' or a state_dict file)"
    )

    needed = list(module.state_dict())
    for prefix in _candidate_prefixes(state, needed[0]):
        if all(prefix + key in state for key in needed):
            matched = {key: state[prefix + key] for key in needed}
            mismatched = shape_mismatches(matched, module.state_dict())
            if mismatched:
                raise ConfigError(
                    f"{path}: tensor shapes do not fit {name} (file / model): " + "; ".join(mismatched[:5])
                )
            return matched
    raise ConfigError(
        f"{path}: not a {name} state_dict. Expected keys like {needed[:4]} (optionally with a prefix such as "
        f"'features.'), found {list(state)[:4]} ({len(state)} keys)"
    )


def shape_mismatches(state: Mapping, own: Mapping) -> list[str]:
    """ "KEY (file shape) != (model shape)" for every key of both state_dicts whose tensors differ in shape."""
    return [
        f"{key} {tuple(state[key].shape)} != {tuple(own[key].shape)}"
        for key in sorted(set(state) & set(own))
        if tuple(state[key].shape) != tuple(own[key].shape)
    ]


def _candidate_prefixes(state: Mapping, first_needed_key: str) -> list[str]:
    # A prefix ends at a "." so that "0.weight" is never matched inside "10.weight".
    prefixes = {key[: -len(first_needed_key)] for key in state if str(key).endswith(first_needed_key)}
    return sorted((prefix for prefix in prefixes if prefix == "" or prefix.endswith(".")), key=len)

"""Let fully convolutional models with a total stride take any input size: pad up, then crop back."""

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) at the bottom and right to multiples of `multiple`; returns (padded, (H, W)).

    Reflect padding keeps image statistics at the border; inputs smaller than the pad (reflect needs
    pad < size) fall back to replicate.
    """
    height, width = x.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (height, width)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo pad_to_multiple on an output with the input's resolution."""
    height, width = size
    return x[..., :height, :width]

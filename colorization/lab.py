"""Differentiable sRGB <-> CIE Lab (D65) on tensors, through kornia, with the network's normalization.

Ranges for sRGB inputs in [0, 1]: L in [0, 100], a in about [-86.2, 98.2], b in about [-107.9, 94.5].
The network sees L_norm = L / 100 in [0, 1] (the paper's section 3.4) and predicts ab_norm = ab / AB_SCALE,
which therefore stays inside about [-0.85, 0.77]: a tanh output covers it with room to spare.

Round trip: lab_norm_to_rgb(*rgb_to_lab_norm(rgb)) differs from rgb in [0, 1] by at most 6.1e-6 in float32
(measured over a 64^3 grid of the RGB cube; tests/colorization/test_lab.py asserts < 1e-4).

The conversions run in float32 with autocast off and return float32 whatever the input dtype: under an
enclosing bf16 autocast, kornia would run its colour matrices (einsum) in bf16 even on float32 inputs, and the
perceptual loss would compare a bf16-rounded prediction with a float32 target.
"""

import torch
from kornia.color import lab_to_rgb, rgb_to_lab

AB_SCALE = 128.0
L_SCALE = 100.0
OUTPUT_SPACES = ("ab", "rgb")


def rgb_to_lab_norm(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) RGB in [0, 1] -> (L_norm (N, 1, H, W) in [0, 1], ab_norm (N, 2, H, W))."""
    with torch.autocast(rgb.device.type, enabled=False):
        lab = rgb_to_lab(rgb.float())
    return lab[:, :1] / L_SCALE, lab[:, 1:] / AB_SCALE


def lab_norm_to_rgb(L_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_lab_norm; out-of-gamut colours are clamped to RGB [0, 1]."""
    with torch.autocast(L_norm.device.type, enabled=False):
        lab = torch.cat([L_norm.float() * L_SCALE, ab_norm.float() * AB_SCALE], dim=1)
        return lab_to_rgb(lab, clip=True)


def compose_rgb(L_norm: torch.Tensor, output: torch.Tensor, output_space: str) -> torch.Tensor:
    """The colour image a model's output stands for: L + predicted ab, or the predicted RGB itself."""
    if output_space == "ab":
        return lab_norm_to_rgb(L_norm, output)
    if output_space == "rgb":
        return output.clamp(0.0, 1.0)
    raise ValueError(f"output_space must be one of {OUTPUT_SPACES}, got {output_space!r}")

import pytest
import torch

from colorization.lab import AB_SCALE, compose_rgb, lab_norm_to_rgb, rgb_to_lab_norm


def rgb_cube(steps: int = 32) -> torch.Tensor:
    axis = torch.linspace(0, 1, steps)
    r, g, b = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([r, g, b]).reshape(1, 3, steps, steps * steps)


def test_round_trip_error_is_below_documented_bound():
    rgb = torch.cat([rgb_cube().reshape(-1, 3, 32, 32), torch.rand(8, 3, 32, 32)])
    back = lab_norm_to_rgb(*rgb_to_lab_norm(rgb))
    assert (back - rgb).abs().max().item() < 1e-4


def test_normalized_ranges_cover_srgb():
    L_norm, ab_norm = rgb_to_lab_norm(rgb_cube())
    assert L_norm.min().item() >= 0.0 and L_norm.max().item() == pytest.approx(1.0, abs=1e-4)
    # a in about [-86, 98] and b in about [-108, 95]: within tanh's range after dividing by AB_SCALE.
    assert ab_norm.abs().max().item() < 0.9
    assert ab_norm.abs().max().item() * AB_SCALE > 100


def test_gray_has_zero_ab():
    gray = torch.full((1, 3, 4, 4), 0.5)
    _, ab_norm = rgb_to_lab_norm(gray)
    assert ab_norm.abs().max().item() < 1e-3


def test_lab_to_rgb_is_differentiable():
    L_norm = torch.rand(2, 1, 8, 8)
    ab_norm = (torch.rand(2, 2, 8, 8) - 0.5).requires_grad_()
    lab_norm_to_rgb(L_norm, ab_norm).sum().backward()
    assert torch.isfinite(ab_norm.grad).all() and ab_norm.grad.abs().sum() > 0


def test_compose_rgb_for_both_output_spaces():
    rgb = torch.rand(2, 3, 8, 8)
    L_norm, ab_norm = rgb_to_lab_norm(rgb)
    assert torch.allclose(compose_rgb(L_norm, ab_norm, "ab"), rgb, atol=1e-4)
    assert torch.equal(compose_rgb(L_norm, rgb * 2 - 0.5, "rgb"), (rgb * 2 - 0.5).clamp(0, 1))
    with pytest.raises(ValueError, match="output_space"):
        compose_rgb(L_norm, ab_norm, "lab")


def test_conversions_stay_float32_under_bf16_autocast():
    # The training loop composes the prediction's RGB inside autocast; kornia alone would round it to bf16.
    rgb = torch.rand(2, 3, 8, 8)
    L_norm, ab_norm = rgb_to_lab_norm(rgb)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        back = lab_norm_to_rgb(L_norm, ab_norm.bfloat16())
        _, ab_again = rgb_to_lab_norm(rgb)
    assert back.dtype == ab_again.dtype == torch.float32
    assert torch.allclose(ab_again, ab_norm)
    assert torch.allclose(back, lab_norm_to_rgb(L_norm, ab_norm.bfloat16().float()), atol=1e-6)

from urllib.error import URLError

import pytest
import torch
import torchvision

from colorization import backbones
from colorization.backbones import WeightsUnavailable
from colorization.lab import rgb_to_lab_norm
from colorization.losses import PerceptualLoss, build_loss


def make_batch(rgb: torch.Tensor) -> dict:
    L_norm, ab_norm = rgb_to_lab_norm(rgb)
    return {"L": L_norm, "ab": ab_norm, "rgb": rgb}


@pytest.fixture(scope="module")
def perceptual():
    return build_loss("perceptual", layers=("relu1_2", "relu2_2", "relu3_3"), vgg_weights="none")


def test_perceptual_loss_zero_for_identical_positive_otherwise(perceptual):
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32)
    batch = make_batch(rgb)
    assert perceptual.perceptual_distance(rgb, rgb).item() == 0.0
    assert perceptual(batch["ab"], batch, "ab").item() < 1e-8  # only the Lab round trip's ~1e-6 error left
    assert perceptual(rgb, batch, "rgb").item() == 0.0
    assert perceptual(torch.zeros_like(batch["ab"]), batch, "ab").item() > 1e-4  # gray prediction
    assert perceptual(batch["ab"].flip(0), batch, "ab").item() > 1e-4


def test_perceptual_loss_sums_weighted_layer_terms():
    torch.manual_seed(0)
    batch = make_batch(torch.rand(2, 3, 16, 16))
    gray = torch.zeros_like(batch["ab"])
    relu1 = build_loss("perceptual", layers=("relu1_2",), vgg_weights="none")(gray, batch, "ab")
    relu2 = build_loss("perceptual", layers=("relu2_2",), vgg_weights="none")(gray, batch, "ab")
    both = build_loss("perceptual", layers=("relu1_2", "relu2_2"), layer_weights=(2.0, 0.5), vgg_weights="none")
    assert both(gray, batch, "ab").item() == pytest.approx(2.0 * relu1.item() + 0.5 * relu2.item(), rel=1e-5)
    with_pixels = build_loss("perceptual", layers=("relu1_2",), vgg_weights="none", pixel_weight=3.0)
    pixel_term = 3.0 * batch["ab"].square().mean().item()
    assert with_pixels(gray, batch, "ab").item() == pytest.approx(relu1.item() + pixel_term, rel=1e-5)


def test_gradients_reach_the_prediction_but_not_vgg(perceptual):
    batch = make_batch(torch.rand(1, 3, 16, 16))
    prediction = torch.zeros_like(batch["ab"]).requires_grad_()
    perceptual(prediction, batch, "ab").backward()
    assert prediction.grad.abs().sum() > 0
    assert not any(parameter.requires_grad for parameter in perceptual.parameters())
    assert len(perceptual.features) == 16  # up to relu3_3, nothing deeper kept


def test_mse_compares_in_the_output_space():
    batch = make_batch(torch.rand(2, 3, 8, 8))
    mse = build_loss("mse")
    assert mse(batch["ab"] + 0.1, batch, "ab").item() == pytest.approx(0.01, rel=1e-4)
    assert mse(batch["rgb"] - 0.2, batch, "rgb").item() == pytest.approx(0.04, rel=1e-4)


def test_bad_loss_options_rejected():
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        build_loss("l1")
    with pytest.raises(ValueError, match="unknown VGG16 layers"):
        PerceptualLoss(layers=("relu9_9",), vgg_weights="none")
    with pytest.raises(ValueError, match="2 layer weights given for 1 layers"):
        PerceptualLoss(layers=("relu1_2",), layer_weights=(1, 2), vgg_weights="none")


def test_vgg_weights_path_loads_a_saved_full_state_dict(tmp_path):
    torch.manual_seed(123)
    vgg = torchvision.models.vgg16(weights=None, init_weights=False)  # PyTorch default init: faster
    path = tmp_path / "vgg16.pth"
    torch.save(vgg.state_dict(), path)
    loss = PerceptualLoss(layers=("relu2_2",), vgg_weights=str(path))
    assert torch.equal(loss.features[5].weight, vgg.features[5].weight)
    random_init = PerceptualLoss(layers=("relu2_2",), vgg_weights="none")
    assert not torch.equal(loss.features[5].weight, random_init.features[5].weight)


def test_vgg_weights_path_loads_a_features_only_state_dict(tmp_path):
    torch.manual_seed(5)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])[:4]
    path = tmp_path / "features.pt"
    torch.save(features.state_dict(), path)
    loss = PerceptualLoss(layers=("relu1_2",), vgg_weights=path)
    assert torch.equal(loss.features[2].weight, features[2].weight)


def test_vgg_weights_path_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--vgg-weights .*missing\.pth: no such file"):
        PerceptualLoss(vgg_weights=tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match=r"wrong\.pth: not a VGG16 state_dict. Expected keys like \['0.weight'"):
        PerceptualLoss(vgg_weights=wrong)
    misshapen = tmp_path / "misshapen.pth"
    torch.save({"0.weight": torch.zeros(3, 3, 3, 3), "0.bias": torch.zeros(3)}, misshapen)
    with pytest.raises(ValueError, match=r"misshapen\.pth: tensor shapes do not fit VGG16"):
        PerceptualLoss(layers=("relu1_1",), vgg_weights=misshapen)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"garbage\.pth: not a loadable state_dict file"):
        PerceptualLoss(vgg_weights=garbage)


def test_offline_imagenet_weights_raise_weights_unavailable_naming_both_options(monkeypatch):
    def offline():
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(backbones, "imagenet_vgg16", offline)
    with pytest.raises(WeightsUnavailable) as raised:
        PerceptualLoss(vgg_weights="imagenet")
    message = str(raised.value)
    assert "VGG16" in message and "no network" in message
    assert "--vgg-weights PATH" in message and "--vgg-weights none" in message


def test_random_vgg_is_the_same_every_time():
    first = PerceptualLoss(layers=("relu1_2",), vgg_weights="none")
    torch.manual_seed(99)
    second = PerceptualLoss(layers=("relu1_2",), vgg_weights="none")
    assert torch.equal(first.features[0].weight, second.features[0].weight)

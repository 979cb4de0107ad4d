import numpy as np
import pandas as pd
import pytest
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from colorization.backbones import WeightsUnavailable
from colorization.cli import main
from colorization.models import create_model, list_models, recipe
from colorization.split import make_split, read_split
from tests.baselines.conftest import TINY, TINY_BACKBONE, tiny_koalarization, train_tiny, write_duotone_images
from tests.colorization.conftest import write_color_images


def backbone_state(model):
    return {key: value.clone() for key, value in model.embedder.backbone.state_dict().items()}


def test_registered_as_an_ab_model_trained_with_mse():
    assert "koalarization" in list_models()
    published = recipe("koalarization")
    settings = (published.loss, published.optimizer, published.batch_size, published.image_size)
    assert settings == ("mse", "adam", 100, 224)
    assert tiny_koalarization().output_space == "ab"


@pytest.mark.parametrize("size", [(32, 32), (40, 56), (64, 48), (3, 5)])
def test_output_is_ab_at_the_input_size(size):
    model = tiny_koalarization().eval()
    with torch.no_grad():
        output = model(torch.rand(2, 1, *size))
    assert output.shape == (2, 2, *size)
    assert output.abs().max() <= 1.0


def test_real_inception_resnet_v2_loads_a_state_dict_path_and_sees_the_scaled_gray_image(tmp_path):
    torch.manual_seed(1)
    reference = timm.create_model("inception_resnet_v2", pretrained=False)
    path = tmp_path / "irv2.pt"
    torch.save(reference.state_dict(), path)

    model = create_model("koalarization", irv2_weights=str(path), width=0.125).eval()
    backbone = model.embedder.backbone
    # The builder's own random init is seeded differently (0), so equality means the file was loaded.
    assert torch.equal(backbone.conv2d_1a.conv.weight, reference.conv2d_1a.conv.weight)
    assert torch.equal(backbone.classif.weight, reference.classif.weight)
    assert model.embedder.dim == 1000
    assert model.fusion[0].in_channels == 32 + 1000

    seen = []
    backbone.register_forward_hook(lambda module, inputs, output: seen.append((inputs[0], output)))
    with torch.no_grad():
        output = model(torch.full((1, 1, 40, 56), 0.25))
    backbone_input, logits = seen[0]
    assert backbone_input.shape == (1, 3, 299, 299)
    assert torch.allclose(backbone_input, torch.full_like(backbone_input, 2 * 0.25 - 1))
    assert logits.shape == (1, 1000)
    assert output.shape == (1, 2, 40, 56)


def test_fusion_uses_the_global_vector():
    model = tiny_koalarization().eval()
    L = torch.rand(2, 1, 40, 48)
    with torch.no_grad():
        original = model(L)
        assert torch.equal(model(L), original)
        shift = torch.randn(2, model.embedder.dim)
        model.embedder.register_forward_hook(lambda module, inputs, embedding: embedding + shift)
        perturbed = model(L)
    assert (perturbed - original).abs().max() > 1e-3


def test_backbone_is_frozen_in_eval_mode_and_left_out_of_checkpoints():
    model = tiny_koalarization()
    model.train()
    assert model.encoder.training
    assert not any(module.training for module in model.embedder.modules())
    assert not any(parameter.requires_grad for parameter in model.embedder.parameters())
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    assert trainable and all(parameter.requires_grad for parameter in model.decoder.parameters())

    before = backbone_state(model)
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    loss = (model(torch.rand(2, 1, 32, 32)) - 0.5).square().mean()
    loss.backward()
    optimizer.step()
    after = backbone_state(model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)  # running statistics included

    state = model.state_dict()
    assert not [key for key in state if key.startswith("embedder.backbone.")]
    assert "embedder.fingerprint" in state
    rebuilt = tiny_koalarization()
    rebuilt.load_state_dict(state)  # strict: the rebuilt backbone fills in what the checkpoint leaves out
    L = torch.rand(1, 1, 32, 40)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(L), model.eval()(L))


def test_checkpoint_refuses_a_backbone_with_other_weights(tmp_path):
    state = tiny_koalarization().state_dict()
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    torch.save(timm.create_model(TINY_BACKBONE).state_dict(), other)
    with pytest.raises(ValueError, match="different Inception-ResNet-v2 weights"):
        tiny_koalarization(irv2_weights=str(other)).load_state_dict(state)


def test_offline_imagenet_weights_name_both_fallbacks(monkeypatch):
    create = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise LocalEntryNotFoundError("cannot reach huggingface.co and the file is not in the local cache")
        return create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(WeightsUnavailable) as error:
        create_model("koalarization", width=0.125)
    message = str(error.value)
    assert "Inception-ResNet-v2" in message
    assert "--irv2-weights PATH" in message and "--irv2-weights none" in message


def test_short_training_run_lowers_the_loss(tmp_path):
    write_duotone_images(tmp_path / "images", 10)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    result = train_tiny(tmp_path / "split", tmp_path / "run", "koalarization", TINY, epochs=12, lr=3e-3)
    assert result.step == 24
    assert np.mean(result.losses[-4:]) < 0.7 * np.mean(result.losses[:4])
    heldout = pd.read_csv(tmp_path / "run" / "log.csv")["heldout_loss"]
    assert heldout.iloc[-1] < 0.7 * heldout.iloc[0]


def test_command_line_trains_colorizes_and_evaluates_koalarization(tmp_path, capsys):
    write_color_images(tmp_path / "images", 5)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    opts = [f"{key}={value}" for key, value in TINY.items() if key != "irv2_weights"]
    common = ["--split", str(tmp_path / "split")]
    assert (
        main(
            [
                "train",
                "--model",
                "koalarization",
                *common,
                "--out",
                str(tmp_path / "run"),
                "--max-steps",
                "1",
                "--batch-size",
                "3",
                "--image-size",
                "32",
                "--workers",
                "0",
                "--no-progress",
                "--irv2-weights",
                TINY["irv2_weights"],
                "--model-opt",
                *opts,
            ]
        )
        == 0
    )
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert checkpoint["model_name"] == "koalarization" and checkpoint["model_kwargs"] == TINY

    assert (
        main(
            [
                "colorize",
                "--checkpoint",
                str(tmp_path / "run" / "last.pt"),
                *common,
                "--out",
                str(tmp_path / "pred"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    heldout = read_split(tmp_path / "split").heldout
    assert sorted(path.name for path in (tmp_path / "pred").iterdir()) == sorted(f"{p.stem}.png" for p in heldout)
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), *common]) == 0
    assert "psnr" in capsys.readouterr().out

import json

import pytest
import torch

from colorization.models import create_model, list_models, recipe, register_model
from colorization.models.padding import crop_to, pad_to_multiple

TINY = {"width": 0.125}
OPTION_COMBOS = [
    {},
    {"activation": "tanh"},
    {"batch_norm": False},
    {"downsample": "maxpool"},
    {"upsample": "transposed"},
    {"output": "rgb"},
    {"down_layers": [4, 6]},
    {"downsample": "maxpool", "upsample": "transposed", "down_layers": [4, 6], "output": "rgb"},
]


@pytest.mark.parametrize("options", OPTION_COMBOS, ids=json.dumps)
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 3)])
def test_any_input_size_gives_same_size_output(options, size):
    model = create_model("perceptual", **TINY, **options).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, *size))
    channels = 3 if options.get("output") == "rgb" else 2
    assert out.shape == (2, channels, *size)
    assert model.output_space == options.get("output", "ab")
    low = 0.0 if model.output_space == "rgb" else -1.0
    assert low <= out.min().item() and out.max().item() <= 1.0


def test_kwargs_survive_json_like_a_checkpoint():
    options = {"width": 0.125, "down_layers": [2, 4, 6], "upsample": "transposed"}
    model = create_model("perceptual", **json.loads(json.dumps(options)))
    state = model.state_dict()
    rebuilt = create_model("perceptual", **json.loads(json.dumps(options)))
    rebuilt.load_state_dict(state)


def test_default_bottleneck_is_h8_by_512_and_literal_paper_strides_give_h4():
    default = create_model("perceptual")
    assert len(default.encoder) == 10
    bottleneck = default.encoder(torch.rand(1, 1, 64, 64))
    assert bottleneck.shape == (1, 512, 8, 8)
    assert default.decoder[0](bottleneck).shape == (1, 256, 8, 8)
    literal = create_model("perceptual", down_layers=(4, 6), **TINY)
    assert literal.encoder(torch.rand(1, 1, 64, 64)).shape[-2:] == (16, 16)


def test_encoder_blocks_accept_forward_hooks():
    model = create_model("perceptual", **TINY).eval()
    seen = []
    model.encoder[4].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    model(torch.rand(1, 1, 32, 32))
    assert seen == [(1, 32, 8, 8)]  # layer 5: 256 * 0.125 channels, after two halvings


def test_gradients_reach_the_first_layer():
    model = create_model("perceptual", **TINY)
    model(torch.rand(2, 1, 24, 24)).square().mean().backward()
    assert model.encoder[0][0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("options", [{"activation": "gelu"}, {"downsample": "avgpool"}, {"output": "lab"},
                                     {"down_layers": [0, 11]}, {"width": 0}])  # fmt: skip
def test_invalid_options_rejected(options):
    with pytest.raises(ValueError):
        create_model("perceptual", **options)


def test_registry():
    assert "perceptual" in list_models()
    assert recipe("perceptual").loss == "perceptual" and recipe("perceptual").optimizer == "rmsprop"
    with pytest.raises(ValueError, match="unknown model 'nope'; available: .*perceptual"):
        create_model("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_model("perceptual", recipe=recipe("perceptual"))(lambda: None)
    with pytest.raises(ValueError, match="the perceptual model has no option widht \\(--model-opt\\); its options: "
                                         "activation, batch_norm, .*width"):  # fmt: skip
        create_model("perceptual", widht=0.5)


def test_a_model_without_output_space_is_named(monkeypatch):
    import colorization.models as registry

    monkeypatch.setitem(registry._builders, "bare", lambda: torch.nn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match="the bare model \\(Conv2d\\) has no `output_space` attribute"):
        create_model("bare")


def test_pad_to_multiple_and_crop_back():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape == (1, 2, 8, 8) and size == (5, 7)
    assert torch.equal(padded[..., 5, :7], x[..., 3, :])  # reflect: row 5 mirrors row 3
    assert torch.equal(crop_to(padded, size), x)
    tiny, _ = pad_to_multiple(torch.ones(1, 1, 1, 2), 8)  # too small to reflect: replicate
    assert tiny.shape == (1, 1, 8, 8) and torch.equal(tiny, torch.ones(1, 1, 8, 8))
    square = x[..., :4, :4]
    assert pad_to_multiple(square, 4) == (square, (4, 4))

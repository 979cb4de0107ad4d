"""The paper's image transformation network (section 3.2), with its ablations as options.

Encoder: 10 conv 3x3 layers, each followed by batch norm and the activation, padding that keeps the size.
Channel widths 64, 64, 128, 128, 256, 256, 512, 512, 512, 512 (times `width`), so the bottleneck has the
paper's 512 channels.

Where it downsamples (`down_layers`, 1-based layer numbers): the paper says stride 2 "on 4th and 6th layers"
yet an H/8 x W/8 x 512 encoder output, and its decoder doubles the size with nearest-neighbour upsampling
until it is back at H x W. Two stride-2 layers give H/4, not H/8; the stated H/8 output (and a decoder of
three x2 upsamplings) needs three halvings, so the default is (2, 4, 6). `down_layers=(4, 6)` reproduces the
literal text and gives H/4 with two upsamplings.

Decoder: a 3x3 conv 512 -> 256 at the bottleneck (the paper's "H/8 x W/8 x 256 volume"), then per
downsampling an x2 nearest-neighbour upsampling and a 3x3 conv halving the channels (256 -> 128 -> 64 -> 32),
then a 3x3 conv to the output. The ab output goes through tanh: ab_norm = ab / 128 lies in about
[-0.85, 0.77] for sRGB colours, inside tanh's range, so the targets are reachable while predictions can never
leave the a/b range (an unbounded output could drift far out of gamut, where the clamped Lab -> RGB
conversion gives no gradient to the perceptual loss). The RGB variant (the paper's proposal against colour bleeding,
section 6) outputs 3 channels through a sigmoid, in [0, 1].

Options (all JSON-serializable, as checkpoints store them): activation "relu" | "tanh" (section 4.1),
batch_norm (4.2), downsample "stride" | "maxpool" (4.3), upsample "nearest" | "transposed" (4.3),
output "ab" | "rgb" (6), width (channel multiplier, e.g. 0.125 for tests and CPU demos), down_layers.

Fully convolutional: inputs are reflect-padded to a multiple of 2 ** len(down_layers) and the output cropped
back, so any H x W works. `model.encoder` is an nn.Sequential of the 10 layer blocks (index i is layer i + 1),
so forward hooks give the layer activation maps (the paper's figures 24-27; colorization.plots).
"""

import torch
from torch import nn

from colorization.errors import ConfigError
from colorization.models import Recipe, register_model, scaled
from colorization.models.padding import crop_to, pad_to_multiple

ENCODER_CHANNELS = (64, 64, 128, 128, 256, 256, 512, 512, 512, 512)
DECODER_CHANNELS = 256

# Sections 4.4, 4.5 and 6 of the paper; the choices it leaves open are listed as assumptions.
PAPER_RECIPE = Recipe(
    source='the paper, "Colour image synthesis using CNNs", sections 3.3, 4.4, 4.5, 6',
    loss="perceptual",
    optimizer="rmsprop",
    schedule="30:1e-3,35:1e-4,35:1e-8",
    batch_size=16,
    image_size=256,
    assumptions=(
        ("batch_size", "16: the paper does not say (--batch-size)"),
        (
            "loss layers",
            "relu2_2 and relu3_3 of VGG16, equal weights: the paper names neither (--vgg-layers, --vgg-layer-weights)",
        ),
        (
            "widths",
            "encoder 64-64-128-128-256-256-512-512-512-512, decoder 256 halving per upsampling: the "
            "paper gives only the 512 bottleneck and the 256 decoder input (--model-opt width=...)",
        ),
        (
            "down_layers",
            "stride 2 on layers 2, 4 and 6 for the stated H/8 output; the text says 4 and 6 "
            "(--model-opt down_layers=[4,6])",
        ),
        ("optimizer", "RMSprop with TensorFlow's decay 0.9 (torch's default is 0.99)"),
    ),
)

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_OUTPUTS = {"ab": (2, nn.Tanh), "rgb": (3, nn.Sigmoid)}


@register_model("perceptual", recipe=PAPER_RECIPE)
class TransformNet(nn.Module):
    def __init__(
        self,
        *,
        activation: str = "relu",
        batch_norm: bool = True,
        downsample: str = "stride",
        upsample: str = "nearest",
        output: str = "ab",
        width: float = 1.0,
        down_layers=(2, 4, 6),
    ):
        super().__init__()
        _check_choice("activation", activation, _ACTIVATIONS)
        _check_choice("downsample", downsample, ("stride", "maxpool"))
        _check_choice("upsample", upsample, ("nearest", "transposed"))
        _check_choice("output", output, _OUTPUTS)
        down_layers = tuple(sorted(set(down_layers)))
        if not down_layers or not all(1 <= layer <= len(ENCODER_CHANNELS) for layer in down_layers):
            raise ConfigError(f"down_layers must name layers 1..{len(ENCODER_CHANNELS)}, got {down_layers}")
        if width <= 0:
            raise ConfigError(f"width must be positive, got {width}")

        self.output_space = output
        self.total_stride = 2 ** len(down_layers)
        act = _ACTIVATIONS[activation]

        def norm_act(c_out: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(c_out), act()] if batch_norm else [act()]

        def conv_block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
            # No conv bias before batch norm: its shift would be cancelled by the normalization.
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm), *norm_act(c_out)]

        encoder, c_in = [], 1
        for layer, base in enumerate(ENCODER_CHANNELS, start=1):
            halves = layer in down_layers
            c_out = scaled(base, width)
            if halves and downsample == "maxpool":
                encoder.append(nn.Sequential(*conv_block(c_in, c_out), nn.MaxPool2d(2)))
            else:
                encoder.append(nn.Sequential(*conv_block(c_in, c_out, stride=2 if halves else 1)))
            c_in = c_out
        self.encoder = nn.Sequential(*encoder)

        c_out = scaled(DECODER_CHANNELS, width)
        decoder = [nn.Sequential(*conv_block(c_in, c_out))]
        for _ in down_layers:
            c_in, c_out = c_out, max(1, c_out // 2)
            if upsample == "nearest":
                decoder.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *conv_block(c_in, c_out)))
            else:
                transposed = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=not batch_norm)
                decoder.append(nn.Sequential(transposed, *norm_act(c_out)))
        out_channels, out_act = _OUTPUTS[output]
        decoder.append(nn.Sequential(nn.Conv2d(c_out, out_channels, 3, padding=1), out_act()))
        self.decoder = nn.Sequential(*decoder)

    def forward(self, L_norm: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(L_norm, self.total_stride)
        return crop_to(self.decoder(self.encoder(padded)), size)


def _check_choice(option: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{option} must be one of {sorted(choices)}, got {value!r}")

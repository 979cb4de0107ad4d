"""Zhang et al.'s network in the layout of the authors' PyTorch port, and reading their released state_dict
(see the package docstring for the layers, the contract and the decoding)."""

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from baselines.eccv16.bins import AUTHORS_AB_SCALE, BIN_COUNT, ab_bins, centres_of
from colorization.backbones import RANDOM_INIT, read_state_dict, shape_mismatches
from colorization.errors import ConfigError
from colorization.lab import AB_SCALE
from colorization.models import scaled
from colorization.models.padding import crop_to, pad_to_multiple

MODEL_NAME = "eccv16"
RELEASED_FILE = "colorization_release_v2-9b330a0b.pth"

L_CENTRE = 0.5  # (L - 50) / 100 == L_norm - 0.5
TEMPERATURE = 0.38
INPUT_MULTIPLE = 8  # three stride-2 layers
OUTPUT_STRIDE = 4  # the transposed convolution brings H/8 back to H/4

# Per block: (output channels, convolutions, stride of the last one, dilation), from colorizers/eccv16.py.
BLOCKS = ((64, 2, 2, 1), (128, 2, 2, 1), (256, 3, 2, 1), (512, 3, 1, 1), (512, 3, 1, 2), (512, 3, 1, 2),
          (512, 3, 1, 1))  # fmt: skip
DECODER_CHANNELS = 256


def read_released_state(path) -> dict:
    """The state_dict in file `path` (the authors' PyTorch release, or one in its layout), checked loosely:
    a mapping of tensors holding `model_out.weight` (2, Q, 1, 1). Errors name the file and the problem."""
    path = Path(path)
    state = read_state_dict(
        path,
        missing=f"eccv16 weights {path}: no such file (expected '{RANDOM_INIT}' or the authors' PyTorch "
        f"state_dict, e.g. {RELEASED_FILE})",
    )
    if "model_state" in state:
        raise ConfigError(
            f"{path}: a checkpoint of this package, not the authors' state_dict: use it with --checkpoint"
        )
    not_tensors = [str(key) for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ConfigError(f"{path}: expected a state_dict (a mapping of tensors); {not_tensors[:3]} are not tensors")
    weight = state.get("model_out.weight")
    if weight is None or weight.dim() != 4 or weight.shape[0] != 2 or weight.shape[2:] != (1, 1):
        found = f"model_out.weight {tuple(weight.shape)}" if weight is not None else "no model_out.weight"
        raise ConfigError(
            f"{path}: not an eccv16 state_dict: expected model_out.weight (2, Q, 1, 1) holding the bin centres "
            f"and keys like model1.0.weight, found {found} ({len(state)} keys, e.g. {list(state)[:3]})"
        )
    return dict(state)


def width_of(state: Mapping) -> float:
    """The width multiplier a state_dict was made with (its first convolution has 64 x width filters)."""
    return state["model1.0.weight"].shape[0] / BLOCKS[0][0]


def _block(in_channels, out_channels, convolutions, stride, dilation, batch_norm=True):
    layers = []
    for index in range(convolutions):
        last = index == convolutions - 1
        layers += [
            nn.Conv2d(in_channels, out_channels, 3, stride=stride if last else 1, padding=dilation,
                      dilation=dilation),
            nn.ReLU(inplace=True),
        ]  # fmt: skip
        in_channels = out_channels
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


class ECCV16(nn.Module):
    """Zhang et al.'s colorization network: forward(L_norm (N, 1, H, W)) -> logits (N, Q, ceil(H/4), ceil(W/4)).

    Kwargs (JSON-serializable, stored in checkpoints):
    weights: "none" (random init, the default) or a PATH to the authors' PyTorch state_dict (e.g.
        colorization_release_v2-9b330a0b.pth) or one in its layout; its bins replace the computed ones.
    width: multiplier on the channels of blocks 1-8 (1.0 is the published network); the class scores and the
        bin centres are not scaled.
    temperature: T of the annealed-mean decoding in to_ab (0.38, the paper's; 1.0 is the plain mean).
    num_bins: the number of classes, for a model whose bins come from a checkpoint's state (the converter
        stores 313 for the released model); left out, the computed bins (or the weights file's) decide.
    """

    bin_centres: torch.Tensor  # a buffer, registered in __init__

    output_space = "ab_bins"

    def checkpoint_kwargs(self) -> dict:
        """Kwargs that rebuild this network without the weights file it may have started from (a checkpoint
        carries the weights in its model_state, so it must load where that file is gone)."""
        return {"width": self.width, "temperature": self.temperature, "num_bins": self.num_bins}

    def __init__(self, weights=RANDOM_INIT, width=1.0, temperature=TEMPERATURE, num_bins=None):
        super().__init__()
        if not width > 0:
            raise ConfigError(f"width must be positive, got {width}")
        if not temperature > 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        self.temperature, self.width = float(temperature), float(width)
        state = None if str(weights) == RANDOM_INIT else read_released_state(weights)
        if state is not None:
            centres = centres_of(state)
        elif num_bins is None or num_bins == BIN_COUNT:
            centres = ab_bins()
        else:
            # Placeholders for a checkpoint's own bins, which load_state_dict fills in.
            centres = torch.full((int(num_bins), 2), math.nan)
        if num_bins is not None and num_bins != len(centres):
            raise ConfigError(f"num_bins={num_bins} but the weights file {weights} holds {len(centres)} bins")
        bins = len(centres)

        channels = 1
        for index, (filters, convolutions, stride, dilation) in enumerate(BLOCKS, start=1):
            out = scaled(filters, width)
            setattr(self, f"model{index}", _block(channels, out, convolutions, stride, dilation))
            channels = out
        decoder = scaled(DECODER_CHANNELS, width)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(channels, decoder, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            *_block(decoder, decoder, 2, 1, 1, batch_norm=False),
            nn.Conv2d(decoder, bins, 1),
        )
        self.model_out = nn.Conv2d(bins, 2, 1, bias=False)
        self.register_buffer("bin_centres", centres.clone())
        with torch.no_grad():
            self.model_out.weight.copy_(centres.T.reshape(2, bins, 1, 1) / AUTHORS_AB_SCALE)
        # Not trained: the bin centres are fixed, and Caffe's batch norm has no scale and shift (see
        # baselines.eccv16.loss).
        self.model_out.requires_grad_(False)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.requires_grad_(False)
        self.register_load_state_dict_pre_hook(_centres_from_model_out)
        if state is not None:
            self._load_released(state, weights, width)

    @property
    def num_bins(self) -> int:
        return len(self.bin_centres)

    def _load_released(self, state: dict, path, width) -> None:
        own = self.state_dict()
        expected = set(own) - {"bin_centres"}
        # Files saved by an older torch have no num_batches_tracked; batch norm then starts it at 0.
        missing = sorted(key for key in expected - set(state) if not key.endswith("num_batches_tracked"))
        unexpected = sorted(set(state) - expected - {"bin_centres"})
        if missing or unexpected:
            raise ConfigError(
                f"{path}: not an eccv16 state_dict of this layout: "
                + "; ".join(part for part in (f"missing {missing[:5]}" if missing else "",
                                               f"unexpected {unexpected[:5]}" if unexpected else "") if part)
                + f" ({len(missing)} missing, {len(unexpected)} unexpected)"
            )  # fmt: skip
        mismatched = shape_mismatches(state, {key: own[key] for key in expected})
        if mismatched:
            raise ConfigError(
                f"{path}: tensor shapes do not fit an eccv16 model of width {width} (file / model): "
                + "; ".join(mismatched[:5])
                + f"; the file looks like width {width_of(state):g}"
            )
        self.load_state_dict(state)

    def forward(self, L_norm: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = pad_to_multiple(L_norm, INPUT_MULTIPLE)
        x = padded - L_CENTRE
        for index in range(1, 9):
            x = getattr(self, f"model{index}")(x)
        return crop_to(x, (-(-height // OUTPUT_STRIDE), -(-width // OUTPUT_STRIDE)))

    def to_ab(self, output: torch.Tensor, size) -> torch.Tensor:
        """ab_norm (N, 2, *size) from logits: annealed mean at self.temperature, x4 bilinear, cropped to size."""
        if self.bin_centres.device.type != "meta" and torch.isnan(self.bin_centres).any():
            raise RuntimeError(
                "this eccv16 model's bin centres were never loaded: build it with weights=PATH or "
                "load a checkpoint's state into it"
            )
        probabilities = torch.softmax(output.float() / self.temperature, dim=1)
        with float32(output.device):
            ab = F.conv2d(probabilities, self.model_out.weight.float()) * (AUTHORS_AB_SCALE / AB_SCALE)
        upsampled = F.interpolate(ab, scale_factor=OUTPUT_STRIDE, mode="bilinear", align_corners=False)
        if upsampled.shape[-2] < size[0] or upsampled.shape[-1] < size[1]:
            raise ValueError(f"logits {tuple(output.shape[-2:])} are too small for an output of size {tuple(size)}")
        return crop_to(upsampled, tuple(size))


def float32(device: torch.device):
    """Autocast off (bf16 autocast would run the bin arithmetic in bf16); meta tensors (FLOP counting) have none."""
    return contextlib.nullcontext() if device.type == "meta" else torch.autocast(device.type, enabled=False)


def _centres_from_model_out(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                            error_msgs):  # fmt: skip
    """Keep `bin_centres` and `model_out.weight` one thing: a released state_dict has only the latter."""
    centres_key, weight_key = prefix + "bin_centres", prefix + "model_out.weight"
    weight, centres = state_dict.get(weight_key), state_dict.get(centres_key)
    if weight is not None and centres is None:
        state_dict[centres_key] = centres_of({"model_out.weight": weight})
    elif centres is not None and weight is None:
        state_dict[weight_key] = centres.T.reshape(2, -1, 1, 1) / AUTHORS_AB_SCALE
    elif weight is not None and centres is not None and weight.shape[1] == centres.shape[0]:
        if not torch.allclose(centres_of({"model_out.weight": weight}), centres.float(), atol=1e-3):
            error_msgs.append("bin_centres and model_out.weight (the centres / 110) disagree")


def bins_for_model_opts(model_opts: Mapping) -> torch.Tensor:
    """The bin centres, in class order, of the model that `model_opts` build (for the loss of a training run)."""
    weights = str(model_opts.get("weights", RANDOM_INIT))
    if weights != RANDOM_INIT:
        return centres_of(read_released_state(weights))
    num_bins = model_opts.get("num_bins")
    if num_bins is not None and num_bins != BIN_COUNT:
        raise ConfigError(
            f"--model-opt num_bins={num_bins} without weights: the centres of those bins are unknown "
            f"(give --model-opt weights=PATH, or leave num_bins out for the {BIN_COUNT} computed bins)"
        )
    return ab_bins()

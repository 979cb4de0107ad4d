"""Colorful Image Colorization (Zhang, Isola, Efros, ECCV 2016, arXiv 1603.08511) as a registered model.

Colour is predicted by classification: for every position at a quarter of the input resolution the network
gives scores over Q quantized ab bins, trained with a class-rebalanced multinomial cross-entropy, and a
colour is read off the distribution by an "annealed mean". Layer sizes follow the authors' PyTorch port
(richzhang/colorization, colorizers/eccv16.py), which mirrors their Caffe deploy net
(models/colorization_deploy_v2.prototxt); the module and key names are the port's, so its released state_dict
loads as it is (`model1.0.weight`, ..., `model_out.weight`):

- model1..model7: 3x3 convolutions with ReLU, each block ending in batch norm. Channels 64, 128, 256, 512, 512,
  512, 512 (two convolutions in blocks 1-2, three in 3-7); the last convolution of blocks 1, 2 and 3 has
  stride 2 (H/8 after block 3); blocks 5 and 6 use dilation 2 (padding 2);
- model8: a 4x4 stride-2 transposed convolution to 256 channels (H/4), two 3x3 convolutions with ReLU, and a
  1x1 convolution to the Q class scores (logits);
- model_out: a 1x1 convolution Q -> 2 without bias whose weights are the bin centres divided by 110 (the
  authors' ab scaling); softmax then model_out is the mean of the distribution, which the port scales by 110
  and upsamples x4 bilinearly.

Contract of this package. forward(L_norm = L / 100 in [0, 1], (N, 1, H, W), any H and W) returns the logits
(N, Q, ceil(H/4), ceil(W/4)), which training needs. The network sees L_norm - 0.5 = (L - 50) / 100, the
authors' normalization; the input is reflect-padded to a multiple of 8 (three stride-2 layers) and the logits
cropped back. `output_space` is "ab_bins", and `to_ab(logits, size)` gives ab_norm = ab / 128 (N, 2, *size):
the annealed mean softmax(logits / T) . centres with T = 0.38 (paper, section 2.3), upsampled x4 bilinearly
and cropped to size. colorization.inference.predict_ab calls it.

Temperature. The paper and the Caffe deploy net decode with T = 0.38: the deploy net scales the logits by
2.606 = 1 / 0.38 (its `conv8_313_rh` Scale layer) before the softmax. The PyTorch port has no such scale: it
takes the plain mean (T = 1), which is less saturated. to_ab applies T itself (kwarg `temperature`);
`temperature=1.0` reproduces the port's output exactly. Whether the port's released weights fold the 2.606
into the last convolution could not be checked here (the weights are not in this repository).

Bins. The paper keeps the Q = 313 points of a grid of spacing 10 in ab that are "in gamut"; the file that
lists them (pts_in_hull.npy) is not distributed here, so the bins are computed (`ab_bins`): sRGB colours (every
8-bit step on the faces of the RGB cube, where the gamut's outline lies, plus a 33^3 grid inside) are converted
with colorization.lab, and every grid point closer than one grid step (in a and in b) to one of their ab values
is a bin, i.e. the four corners of every grid square that holds an sRGB colour. That gives 309 bins, sorted by
a then b. All 309 are among the authors' 313 (compared with a copy of their list in another repository);
their 4 others, (40, 90), (100, -90), (100, -10) and (100, 0), are 11 to 13 units in a or b from every sRGB
colour, and none of the rules tried gives exactly their set (cells centred on the grid points give 261, other
white points and observers no better). A model trained here therefore has 309 classes. Loading the released
weights takes the bins from their `model_out` (x110), 313 in their order; the centres are a persistent buffer
(`bin_centres`), so checkpoints carry them.

Training (loss "rebalanced_ce", RebalancedCrossEntropy). Targets: ab subsampled at every 4th pixel to the
logits' resolution (the training prototxt does this with a stride-4 1x1 convolution), soft-encoded over the
5 nearest bins with Gaussian weights (sigma 5). Each position is weighted by the rebalancing weight of its
nearest bin: w ~ 1 / ((1 - lambda) p~ + lambda / Q) with lambda = 0.5, where p~ is the bin prior of the run's
training images smoothed with a Gaussian (sigma 5) over the bins, normalized so that sum_q p~_q w_q = 1.
Images whose subsampled ab never exceeds 5 in magnitude get weight 0 (the prototxt's NonGrayMaskLayer). The
loss is averaged over images and positions. The prior is estimated when training starts, from a seeded sample
of at most 2000 training images read at a 64-pixel shorter side (estimate_prior says why a sample suffices):
about 10 ms an image on one CPU core, 20 s in all. Batch norm has no learned scale or shift in Caffe; the port's
affine parameters are kept (the released weights fill them) but not trained, which costs next to nothing: the
convolution after each absorbs any scale and shift (up to the zero padding at the borders).

Cost at width 1.0, measured with torch.utils.flop_counter (a multiply-add counts 2 FLOPs; batch norm, ReLU,
softmax and upsampling are not counted): 83.54 GFLOPs per 256x256 image for forward with the published 313
classes (83.54 with 309 too: the 1x1 class layer is under 1%), plus 0.005 for the decoding in to_ab. Two thirds
of it (55.6) are the 512-channel blocks 4-7 at H/8, 14.6 block 8 at H/4. 32.2M parameters.
tests/baselines/test_eccv16.py checks the figure on the meta device.

The released weights (no download happens here): the authors' PyTorch state_dict
https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth (129 MB; the port's
`eccv16(pretrained=True)` fetches the same file). Turn it into a checkpoint of this package, then use it like
any trained run:

    python -m baselines.eccv16 --weights colorization_release_v2-9b330a0b.pth --out runs/eccv16
    python -m colorization colorize --checkpoint runs/eccv16/last.pt --split runs/split --subset heldout \\
        --out runs/pred-eccv16
    python -m colorization compare --split runs/split --run eccv16=runs/eccv16 --run perceptual=runs/perceptual ...
    python manage.py build_study poster --split runs/split --run eccv16=runs/eccv16 ...

The checkpoint holds the weights in model_state (model_kwargs name no file, so the .pth may be deleted), the
recipe and image_size 256 (the released model's test resolution) in config, step 0 and a note naming the
source file and its SHA-256. It has no optimizer state, so `train --resume` cannot continue it; to fine-tune
the released model, train with `--model-opt weights=PATH`.
"""

import argparse
import contextlib
import functools
import hashlib
import math
import random
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn

from colorization.backbones import RANDOM_INIT, read_state_dict
from colorization.checkpoint import LAST_NAME, save_atomically
from colorization.config import ConfigError, Recipe, field_defaults
from colorization.images import ImageError, load_image
from colorization.lab import AB_SCALE, rgb_to_lab_norm
from colorization.losses import register_loss
from colorization.models import register_model, scaled
from colorization.models.padding import crop_to, pad_to_multiple
from colorization.split import read_split

if __name__ == "__main__":
    # `python -m baselines.eccv16` runs this file as __main__: run the importable module's main() instead, so
    # that the model and the loss register once, under the module name that checkpoints store.
    from baselines.eccv16 import main as _main

    sys.exit(_main())

MODEL_NAME = "eccv16"
LOSS_NAME = "rebalanced_ce"
RELEASED_FILE = "colorization_release_v2-9b330a0b.pth"

GRID = 10.0  # bin spacing in ab units
BIN_COUNT = 309  # what ab_bins() gives (the authors list 313; see Bins in the module docstring)
AUTHORS_AB_SCALE = 110.0  # the port's model_out holds centres / 110 and its output is multiplied by 110
L_CENTRE = 0.5  # (L - 50) / 100 == L_norm - 0.5
TEMPERATURE = 0.38
INPUT_MULTIPLE = 8  # three stride-2 layers
OUTPUT_STRIDE = 4  # the transposed convolution brings H/8 back to H/4

NEIGHBOURS = 5  # soft-encoding (paper; the repository's training layer uses 10)
ENCODING_SIGMA = 5.0
PRIOR_SIGMA = 5.0
UNIFORM_MIX = 0.5  # lambda
GRAY_THRESHOLD = 5.0  # ab magnitude below which a whole image counts as gray (NonGrayMaskLayer)
PRIOR_IMAGES = 2000  # most training images the prior is estimated from
PRIOR_SIZE = 64  # shorter side they are resized to first

# Per block: (output channels, convolutions, stride of the last one, dilation), from colorizers/eccv16.py.
BLOCKS = ((64, 2, 2, 1), (128, 2, 2, 1), (256, 3, 2, 1), (512, 3, 1, 1), (512, 3, 1, 2), (512, 3, 1, 2),
          (512, 3, 1, 1))  # fmt: skip
DECODER_CHANNELS = 256

# The paper's schedule is in iterations of 40 images: 3e-5, dropped to 1e-5 at 200k and to 3e-6 at 375k, about
# 450k in all. An ImageNet epoch (1,281,167 images) is 32,029 such steps: 6 + 6 + 2 epochs = 192k, 384k, 448k.
ECCV16_RECIPE = Recipe(
    source="Zhang, Isola, Efros 2016, section 3 (solver and schedule); richzhang/colorization "
    "models/colorization_train_val_v2.prototxt (batch 40, 176x176 crops) and train/solver.prototxt",
    loss=LOSS_NAME,
    optimizer="adam",
    schedule="6:3e-5,6:1e-5,2:3e-6",
    batch_size=40,
    image_size=176,
    optimizer_options={"betas": [0.9, 0.99], "weight_decay": 1e-3},  # a list, as --optimizer-opt betas=[...] gives
    assumptions=(
        (
            "schedule",
            "the paper's drops at 200k and 375k of about 450k steps, as epochs of ImageNet's 1.28M "
            "images at batch 40 (32k steps each): 6 at 3e-5, 6 at 1e-5, 2 at 3e-6. The paper dropped "
            "the rate when the loss plateaued; the repository's solver.prototxt steps x0.1 every 225k of "
            "500k instead. On a smaller training set keep the step counts with --schedule or --epochs",
        ),
        (
            "image_size",
            "176, the training crop of colorization_train_val_v2.prototxt; their crops come from "
            "ImageNet images stored for Caffe (usually resized to 256x256), here from the photo resized "
            "to a 176 shorter side, so objects look about 1.45x smaller, and colorize feeds the model "
            "176 too where the released model runs at 256 (--image-size 256: their object scale at 2.1x "
            "the cost)",
        ),
        (
            "bins",
            "309 computed in-gamut bins (see baselines/eccv16.py); the authors' pts_in_hull.npy lists 313, "
            "including 4 more beyond the sRGB gamut. Released weights bring their own 313 "
            "(--model-opt weights=PATH)",
        ),
        (
            "loss",
            "soft-encoding over 5 nearest bins (the paper; their Caffe training layer uses 10), bin prior "
            "from a seeded sample of at most 2000 training images of the run's split (theirs: all of "
            "ImageNet), loss averaged over images and positions (their Caffe layer's normalization is not "
            "in the repository); other values: build_loss('rebalanced_ce', neighbours=..., ...) in "
            "Python, no command-line option",
        ),
        ("initialization", "torch's default; the authors used k-means (data-dependent) initialization: no option"),
        (
            "batch norm",
            "running statistics with torch's momentum 0.1 where Caffe's BatchNorm keeps a 0.999 moving "
            "average: no option. Under --micro-batch-size the batch statistics are each chunk's, so a "
            "step differs from one on the whole batch of 40",
        ),
        (
            "decoding",
            "annealed mean with T = 0.38 (paper, Caffe deploy net); their PyTorch port decodes with "
            "T = 1 (--model-opt temperature=1.0)",
        ),
    ),
)


# --------------------------------------------------------------------------------------------------- bins


@functools.lru_cache(maxsize=1)
def _computed_bins() -> torch.Tensor:
    device = torch.device("cpu")  # also under a `with torch.device("meta")` block
    steps = torch.linspace(0.0, 1.0, 256, device=device)
    u, v = (grid.flatten() for grid in torch.meshgrid(steps, steps, indexing="ij"))
    colours = []
    for axis in range(3):
        others = [index for index in range(3) if index != axis]
        for value in (0.0, 1.0):
            face = torch.empty(u.numel(), 3, device=device)
            face[:, axis], face[:, others[0]], face[:, others[1]] = value, u, v
            colours.append(face)
    inside = torch.linspace(0.0, 1.0, 33, device=device)
    colours.append(torch.stack(torch.meshgrid(inside, inside, inside, indexing="ij"), dim=-1).reshape(-1, 3))
    rgb = torch.cat(colours).T.reshape(1, 3, -1, 1)
    _, ab_norm = rgb_to_lab_norm(rgb)
    steps_ab = ab_norm.reshape(2, -1).T.double() * AB_SCALE / GRID
    corners = [
        torch.stack([a_corner, b_corner], dim=1)
        for a_corner in (steps_ab[:, 0].floor(), steps_ab[:, 0].ceil())
        for b_corner in (steps_ab[:, 1].floor(), steps_ab[:, 1].ceil())
    ]
    return torch.unique(torch.cat(corners).long(), dim=0).float() * GRID  # sorted by a, then b


def ab_bins() -> torch.Tensor:
    """The computed bin centres (BIN_COUNT, 2) in ab units, sorted by a then b (see Bins in the module docstring).

    Computed once per process (about a second on one CPU core).
    """
    return _computed_bins().clone()


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, neighbours=NEIGHBOURS, sigma=ENCODING_SIGMA):
    """Soft-encode ab values (..., 2), in ab units, over bin centres (Q, 2).

    Returns (indices, weights), both (..., neighbours): the nearest bins, nearest first, and Gaussian weights
    exp(-d^2 / (2 sigma^2)) of their distances, normalized to sum to 1.
    """
    points = ab.reshape(-1, 2).float()
    distances = torch.cdist(points, centres.float(), compute_mode="donot_use_mm_for_euclid_dist")
    nearest, indices = distances.topk(neighbours, dim=1, largest=False)
    # Softmax of -d^2 / 2 sigma^2: the normalized Gaussian weights, without underflow far from every bin.
    weights = torch.softmax(-nearest.square() / (2 * sigma**2), dim=1)
    shape = (*ab.shape[:-1], neighbours)
    return indices.reshape(shape), weights.reshape(shape)


def nearest_bins(ab: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest bin for ab values (..., 2) in ab units (cheaper than soft_encode's exact distances)."""
    return torch.cdist(ab.reshape(-1, 2).float(), centres.float()).argmin(dim=1).reshape(ab.shape[:-1])


def smooth_prior(prior: torch.Tensor, centres: torch.Tensor, sigma=PRIOR_SIGMA) -> torch.Tensor:
    """The bin distribution smoothed with a Gaussian over the ab plane; each bin's mass spreads over the bins
    (none is lost outside the gamut), so the result still sums to 1."""
    distances = torch.cdist(centres.double(), centres.double())
    kernel = torch.exp(-distances.square() / (2 * sigma**2))
    kernel = kernel / kernel.sum(dim=0, keepdim=True)
    return kernel @ prior.double()


def rebalancing_weights(prior, centres, sigma=PRIOR_SIGMA, mix=UNIFORM_MIX) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, smoothed prior), both (Q,): w ~ 1 / ((1 - mix) p~ + mix / Q) with sum_q p~_q w_q = 1."""
    smoothed = smooth_prior(prior, centres, sigma)
    weights = 1.0 / ((1.0 - mix) * smoothed + mix / len(centres))
    weights = weights / (smoothed * weights).sum()
    return weights.float(), smoothed.float()


def estimate_prior(paths, centres, *, seed=0, max_images=PRIOR_IMAGES, size=PRIOR_SIZE) -> torch.Tensor:
    """Empirical bin distribution (Q,) of the pixels of at most max_images of paths (a seeded sample).

    Each image is resized so its shorter side is `size` (antialiased) and every pixel counts towards its
    nearest bin. Unreadable and grayscale files are skipped, as training skips them.

    Why a sample suffices: the prior enters the loss only through the rebalancing weights, and mixing it with
    the uniform distribution (lambda = 0.5) makes them insensitive to exactly the bins a sample estimates
    badly: a bin holding well under lambda / Q of the pixels (about 0.16%) gets close to the largest weight
    whatever its count, while a bin above that level holds over ten thousand of the ten million pixels of
    2000 images at 64 pixels. The Gaussian smoothing pools each bin with its neighbours as well. The sample
    is drawn at random (seeded), not taken from the front of the sorted file list, which would over-represent
    the first folders (ImageNet's first classes, say).
    """
    paths = list(paths)
    if len(paths) > max_images:
        paths = random.Random(seed).sample(paths, max_images)
    counts = torch.zeros(len(centres), dtype=torch.float64)
    for path in paths:
        try:
            image = load_image(path, allow_gray=False)
        except ImageError:
            continue
        small = TF.to_tensor(TF.resize(image, size, antialias=True)).unsqueeze(0)
        _, ab_norm = rgb_to_lab_norm(small)
        indices = nearest_bins(ab_norm[0].permute(1, 2, 0) * AB_SCALE, centres)
        counts += torch.bincount(indices.flatten(), minlength=len(centres)).double()
    if counts.sum() == 0:
        raise ValueError(
            f"no readable colour image among the {len(paths)} training images sampled to estimate the "
            "colour prior of the rebalanced loss"
        )
    return (counts / counts.sum()).float()


# --------------------------------------------------------------------------------------------------- weights


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
        raise ValueError(f"{path}: a checkpoint of this package, not the authors' state_dict: use it with --checkpoint")
    not_tensors = [str(key) for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{path}: expected a state_dict (a mapping of tensors); {not_tensors[:3]} are not tensors")
    weight = state.get("model_out.weight")
    if weight is None or weight.dim() != 4 or weight.shape[0] != 2 or weight.shape[2:] != (1, 1):
        found = f"model_out.weight {tuple(weight.shape)}" if weight is not None else "no model_out.weight"
        raise ValueError(
            f"{path}: not an eccv16 state_dict: expected model_out.weight (2, Q, 1, 1) holding the bin centres "
            f"and keys like model1.0.weight, found {found} ({len(state)} keys, e.g. {list(state)[:3]})"
        )
    return dict(state)


def centres_of(state: Mapping) -> torch.Tensor:
    """Bin centres (Q, 2) in ab units from a state_dict in the released layout (model_out.weight x 110)."""
    return state["model_out.weight"][:, :, 0, 0].T.float() * AUTHORS_AB_SCALE


def width_of(state: Mapping) -> float:
    """The width multiplier a state_dict was made with (its first convolution has 64 x width filters)."""
    return state["model1.0.weight"].shape[0] / BLOCKS[0][0]


# --------------------------------------------------------------------------------------------------- model


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


@register_model(MODEL_NAME, recipe=ECCV16_RECIPE)
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
            raise ValueError(f"width must be positive, got {width}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
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
            raise ValueError(f"num_bins={num_bins} but the weights file {weights} holds {len(centres)} bins")
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
        # Not trained: the bin centres are fixed, and Caffe's batch norm has no scale and shift (see the docstring).
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
            raise ValueError(
                f"{path}: not an eccv16 state_dict of this layout: "
                + "; ".join(part for part in (f"missing {missing[:5]}" if missing else "",
                                               f"unexpected {unexpected[:5]}" if unexpected else "") if part)
                + f" ({len(missing)} missing, {len(unexpected)} unexpected)"
            )  # fmt: skip
        mismatched = [
            f"{key} {tuple(state[key].shape)} != {tuple(own[key].shape)}"
            for key in sorted(expected & set(state))
            if tuple(state[key].shape) != tuple(own[key].shape)
        ]
        if mismatched:
            raise ValueError(
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
        with _float32(output.device):
            ab = F.conv2d(probabilities, self.model_out.weight.float()) * (AUTHORS_AB_SCALE / AB_SCALE)
        upsampled = F.interpolate(ab, scale_factor=OUTPUT_STRIDE, mode="bilinear", align_corners=False)
        if upsampled.shape[-2] < size[0] or upsampled.shape[-1] < size[1]:
            raise ValueError(f"logits {tuple(output.shape[-2:])} are too small for an output of size {tuple(size)}")
        return crop_to(upsampled, tuple(size))


def _float32(device: torch.device):
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


# --------------------------------------------------------------------------------------------------- loss


@register_loss(LOSS_NAME)
class RebalancedCrossEntropy(nn.Module):
    """Zhang et al.'s class-rebalanced multinomial cross-entropy over soft-encoded targets (paper, 2.1-2.2).

    loss_fn(logits (N, Q, h, w), batch, "ab_bins"): batch["ab"] (N, 2, H, W) is subsampled at every 4th pixel
    to h = ceil(H/4) x w, each target soft-encoded over the `neighbours` nearest bins (Gaussian, `sigma`), each
    position weighted by the rebalancing weight of its nearest bin (1 without a prior) and by 0 in images that
    are gray (|ab| <= gray_threshold everywhere), and the weighted cross-entropy averaged over all positions.

    prior: the empirical bin distribution (Q,) to rebalance by, or None (no rebalancing). bin_centres: (Q, 2)
    in ab units, in the order of the model's classes (default: the computed bins). from_config estimates the
    prior from the run's training images and takes the centres from the weights file the model starts from.
    """

    bin_centres: torch.Tensor  # buffers, registered in __init__
    class_weights: torch.Tensor
    smoothed_prior: torch.Tensor

    output_spaces = ("ab_bins",)

    def __init__(self, prior=None, bin_centres=None, neighbours=NEIGHBOURS, sigma=ENCODING_SIGMA,
                 prior_sigma=PRIOR_SIGMA, mix=UNIFORM_MIX, gray_threshold=GRAY_THRESHOLD):  # fmt: skip
        super().__init__()
        centres = ab_bins() if bin_centres is None else torch.as_tensor(bin_centres, dtype=torch.float32)
        self.neighbours, self.sigma, self.gray_threshold = int(neighbours), float(sigma), float(gray_threshold)
        self.register_buffer("bin_centres", centres.clone())
        if prior is None:
            weights, smoothed = torch.ones(len(centres)), torch.full((len(centres),), 1.0 / len(centres))
        else:
            prior = torch.as_tensor(prior, dtype=torch.float32)
            if prior.shape != (len(centres),):
                raise ValueError(f"prior has shape {tuple(prior.shape)}, expected ({len(centres)},), one per bin")
            weights, smoothed = rebalancing_weights(prior, centres, prior_sigma, mix)
        self.register_buffer("class_weights", weights)
        self.register_buffer("smoothed_prior", smoothed)

    @classmethod
    def from_config(cls, config) -> "RebalancedCrossEntropy":
        centres = bins_for_model_opts(config.model_opts)
        paths = read_split(config.split).train[: config.limit_images]
        return cls(prior=estimate_prior(paths, centres, seed=config.seed), bin_centres=centres)

    def forward(self, output: torch.Tensor, batch: Mapping, output_space: str) -> torch.Tensor:
        if output_space != "ab_bins":
            raise ValueError(
                f"the {LOSS_NAME} loss needs class scores over ab bins (output_space 'ab_bins'), "
                f"got output_space {output_space!r}"
            )
        with _float32(output.device):
            ab = batch["ab"][..., ::OUTPUT_STRIDE, ::OUTPUT_STRIDE].float() * AB_SCALE
            if output.shape[1] != len(self.bin_centres) or output.shape[-2:] != ab.shape[-2:]:
                raise ValueError(
                    f"logits {tuple(output.shape)} do not fit {len(self.bin_centres)} bins at the targets' "
                    f"resolution {tuple(ab.shape[-2:])}"
                )
            indices, weights = soft_encode(ab.permute(0, 2, 3, 1), self.bin_centres, self.neighbours, self.sigma)
            log_probabilities = torch.log_softmax(output.float(), dim=1)
            picked = log_probabilities.gather(1, indices.permute(0, 3, 1, 2))
            cross_entropy = -(weights.permute(0, 3, 1, 2) * picked).sum(dim=1)
            colourful = (ab.abs() > self.gray_threshold).flatten(1).any(dim=1).float()
            position_weights = self.class_weights[indices[..., 0]] * colourful[:, None, None]
            return (position_weights * cross_entropy).mean()


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


# --------------------------------------------------------------------------------------------------- converter


def convert_released(weights, out, *, image_size=256, temperature=TEMPERATURE) -> Path:
    """Write OUT/last.pt, a checkpoint of this package holding the released model of file `weights`.

    The width is read from the file (1.0 for the authors' release). model_kwargs name no file: the weights
    are in model_state. Refuses to overwrite an existing last.pt.
    """
    out = Path(out)
    last = out / LAST_NAME
    if last.exists():
        raise FileExistsError(f"{last} exists: choose another --out, or delete it first")
    width = width_of(read_released_state(weights))
    model = ECCV16(weights=str(weights), width=width, temperature=temperature)
    kwargs = model.checkpoint_kwargs()
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    note = (
        f"converted from {Path(weights).name} (sha256 {digest}) by `python -m baselines.eccv16`: the "
        f"authors' released weights, not trained here; no optimizer state, so it cannot be resumed"
    )
    config = _default_config()
    config.update(
        model=MODEL_NAME,
        split=None,
        out=str(out),
        image_size=int(image_size),
        loss=ECCV16_RECIPE.loss,
        optimizer=ECCV16_RECIPE.optimizer,
        optimizer_options=dict(ECCV16_RECIPE.optimizer_options),
        schedule=ECCV16_RECIPE.schedule,
        batch_size=ECCV16_RECIPE.batch_size,
        model_opts={key: value for key, value in kwargs.items() if key != "num_bins"},  # the weights bring theirs
        max_steps=0,
        progress=False,
    )
    state = {
        "model_name": MODEL_NAME,
        "model_module": __name__,
        "model_kwargs": kwargs,
        "model_state": model.state_dict(),
        "epoch": 0,
        "batch_in_epoch": 0,
        "step": 0,
        "config": config,
        "note": note,
        "source_weights": {"file": Path(weights).name, "sha256": digest},
    }
    out.mkdir(parents=True, exist_ok=True)
    save_atomically(state, last)
    return last


def _default_config() -> dict:
    """TrainConfig's defaults as a checkpoint stores its config (tuples as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in field_defaults().items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baselines.eccv16",
        description="Turn the authors' released eccv16 weights into a checkpoint (RUN_DIR/last.pt) that colorize, "
        "compare and build_study use like a trained run.",
    )
    parser.add_argument("--weights", required=True, metavar="PATH",
                        help=f"the authors' PyTorch state_dict, e.g. {RELEASED_FILE}")  # fmt: skip
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="folder to write last.pt into")
    parser.add_argument("--image-size", type=int, default=256,
                        help="shorter side colorize feeds the model (default 256, the released model's)")  # fmt: skip
    parser.add_argument(
        "--temperature",
        type=float,
        default=TEMPERATURE,
        help=f"annealed-mean T (default {TEMPERATURE}; 1.0 decodes as the authors' PyTorch port)",
    )
    args = parser.parse_args(argv)
    if args.image_size < 1:
        parser.error(f"--image-size must be at least 1, got {args.image_size}")
    if args.weights == RANDOM_INIT:
        parser.error("--weights needs the released weights file: random weights are not the released model")
    try:
        path = convert_released(args.weights, args.out, image_size=args.image_size, temperature=args.temperature)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}; colorize with: python -m colorization colorize --checkpoint {path} --images DIR --out DIR")
    return 0

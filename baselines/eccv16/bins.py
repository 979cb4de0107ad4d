"""The ab bins of Zhang et al.'s classification, soft-encoding over them, and the rebalancing prior.

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
"""

import functools
import random
from collections.abc import Mapping

import torch
import torchvision.transforms.functional as TF

from colorization.errors import ConfigError, ImageError
from colorization.images import load_image
from colorization.lab import AB_SCALE, rgb_to_lab_norm

GRID = 10.0  # bin spacing in ab units
BIN_COUNT = 309  # what ab_bins() gives (the authors list 313; see Bins above)
AUTHORS_AB_SCALE = 110.0  # the port's model_out holds centres / 110 and its output is multiplied by 110

NEIGHBOURS = 5  # soft-encoding (paper; the repository's training layer uses 10)
ENCODING_SIGMA = 5.0
PRIOR_SIGMA = 5.0
UNIFORM_MIX = 0.5  # lambda
PRIOR_IMAGES = 2000  # most training images the prior is estimated from
PRIOR_SIZE = 64  # shorter side they are resized to first


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
        raise ConfigError(
            f"no readable colour image among the {len(paths)} training images sampled to estimate the "
            "colour prior of the rebalanced loss"
        )
    return (counts / counts.sum()).float()


def centres_of(state: Mapping) -> torch.Tensor:
    """Bin centres (Q, 2) in ab units from a state_dict in the released layout (model_out.weight x 110)."""
    return state["model_out.weight"][:, :, 0, 0].T.float() * AUTHORS_AB_SCALE

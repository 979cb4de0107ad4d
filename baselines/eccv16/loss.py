"""Zhang et al.'s class-rebalanced cross-entropy, the eccv16 model's training loss.

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
"""

from collections.abc import Mapping

import torch
from torch import nn

from baselines.eccv16.bins import (
    ENCODING_SIGMA,
    NEIGHBOURS,
    PRIOR_SIGMA,
    UNIFORM_MIX,
    ab_bins,
    estimate_prior,
    rebalancing_weights,
    soft_encode,
)
from baselines.eccv16.model import OUTPUT_STRIDE, bins_for_model_opts, float32
from colorization.lab import AB_SCALE
from colorization.split import read_split

LOSS_NAME = "rebalanced_ce"
GRAY_THRESHOLD = 5.0  # ab magnitude below which a whole image counts as gray (NonGrayMaskLayer)


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
        with float32(output.device):
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

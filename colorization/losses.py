"""Training losses: the paper's perceptual loss (section 3.3) and a pixel MSE.

Calling convention, shared by every loss here (the training loop and the Koalarization baseline use it):

    loss_fn = build_loss("perceptual", layers=("relu2_2", "relu3_3"), vgg_weights="imagenet").to(device)
    value = loss_fn(output, batch, output_space)      # -> scalar tensor

- output: the model's output, (N, 2, H, W) ab_norm or (N, 3, H, W) RGB in [0, 1];
- batch: a mapping with "L" (N, 1, H, W) L_norm, "ab" (N, 2, H, W) ab_norm and "rgb" (N, 3, H, W) in [0, 1]
  (ColorizationDataset's items, collated, on the output's device);
- output_space: the model's `output_space`, "ab" or "rgb" (or a model's own, for a loss made for it).

Losses register themselves by name (`@register_loss("mse")`), so a model in another package can bring its
own. `loss_from_config(config)` builds the one a training run asks for: a loss class may define
`from_config(config)` to read its settings from the TrainConfig, otherwise it is built without arguments.

"perceptual" compares the RGB image composed from L and the prediction (lab.compose_rgb) with the ground-truth
RGB through frozen VGG16 features; "mse" compares the prediction with its own target (ab_norm, or RGB for
RGB-output models) pixel by pixel.
"""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from colorization import backbones
from colorization.errors import ConfigError
from colorization.lab import compose_rgb

# Indices of the ReLU outputs in torchvision's vgg16().features.
VGG16_LAYERS = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
    "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}  # fmt: skip

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_VGG_SEED = 0


def pixel_mse(output: torch.Tensor, batch: Mapping, output_space: str) -> torch.Tensor:
    """Mean squared error between the prediction and its target in the model's own output space."""
    target = batch["ab"] if output_space == "ab" else batch["rgb"]
    return F.mse_loss(output.float(), target.float())


LOSSES: dict[str, type[nn.Module]] = {}


def register_loss(name: str):
    """Class decorator registering a loss under name (ValueError if another class holds it)."""

    def decorate(cls):
        if LOSSES.get(name, cls) is not cls:
            raise ValueError(f"loss name {name!r} is already registered by {LOSSES[name]!r}")
        LOSSES[name] = cls
        return cls

    return decorate


@register_loss("mse")
class MSELoss(nn.Module):
    def forward(self, output: torch.Tensor, batch: Mapping, output_space: str) -> torch.Tensor:
        return pixel_mse(output, batch, output_space)


@register_loss("perceptual")
class PerceptualLoss(nn.Module):
    """sum_j lambda_j * ||phi_j(I) - phi_j(I')||^2 / (C_j H_j W_j), averaged over the batch, + pixel term.

    phi_j: frozen VGG16 ReLU outputs named in `layers` (keys of VGG16_LAYERS); `layer_weights` are the lambda_j
    (default 1 each); vgg_weights: "imagenet" | PATH | "none" (see colorization.backbones); pixel_weight
    adds pixel_weight * pixel_mse.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, layers=("relu2_2", "relu3_3"), layer_weights=None, vgg_weights="imagenet", pixel_weight=0.0):
        super().__init__()
        layers = tuple(layers)
        unknown = [layer for layer in layers if layer not in VGG16_LAYERS]
        if not layers or unknown:
            raise ConfigError(f"unknown VGG16 layers {unknown or '(none given)'}; choose from {list(VGG16_LAYERS)}")
        lambdas = [1.0] * len(layers) if layer_weights is None else [float(weight) for weight in layer_weights]
        if len(lambdas) != len(layers):
            raise ConfigError(f"{len(lambdas)} layer weights given for {len(layers)} layers {layers}")
        self.layers = layers
        self.lambdas = lambdas
        self.pixel_weight = float(pixel_weight)
        self.features = _frozen_vgg16_features(vgg_weights, depth=max(VGG16_LAYERS[layer] for layer in layers) + 1)
        # The paper's preprocessing (subtract a fixed mean pixel, flip RGB to BGR) is Caffe's VGG16 convention;
        # torchvision's VGG16 was trained on RGB in [0, 1] normalized by the ImageNet mean and std instead.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @classmethod
    def from_config(cls, config) -> "PerceptualLoss":
        return cls(
            layers=config.vgg_layers,
            layer_weights=config.vgg_layer_weights,
            vgg_weights=config.vgg_weights,
            pixel_weight=config.pixel_weight,
        )

    def forward(self, output: torch.Tensor, batch: Mapping, output_space: str) -> torch.Tensor:
        predicted_rgb = compose_rgb(batch["L"], output, output_space)
        loss = self.perceptual_distance(predicted_rgb, batch["rgb"])
        if self.pixel_weight:
            loss = loss + self.pixel_weight * pixel_mse(output, batch, output_space)
        return loss

    def perceptual_distance(self, predicted_rgb: torch.Tensor, target_rgb: torch.Tensor) -> torch.Tensor:
        """The weighted feature distance between two RGB batches in [0, 1]."""
        with torch.no_grad():
            target_features = self._activations(target_rgb)
        predicted_features = self._activations(predicted_rgb)
        total = predicted_rgb.new_zeros((), dtype=torch.float32)
        for lam, predicted, target in zip(self.lambdas, predicted_features, target_features):
            # mse_loss's mean over N, C, H, W is the batch average of ||.||^2 / (C H W).
            total = total + lam * F.mse_loss(predicted.float(), target.float())
        return total

    def _activations(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb - self.mean) / self.std
        wanted = {VGG16_LAYERS[layer] for layer in self.layers}
        found = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                found[index] = x
        return [found[VGG16_LAYERS[layer]] for layer in self.layers]


def _frozen_vgg16_features(vgg_weights, *, depth: int) -> nn.Module:
    def random_features() -> nn.Sequential:
        # Seeded: a resumed or repeated run must rebuild the same random loss network ("none").
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_VGG_SEED)
            # torchvision's own VGG16 feature definition, without building the 120M-parameter classifier.
            return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])[:depth]

    features = backbones.load_backbone(
        vgg_weights,
        name="VGG16",
        option="--vgg-weights",
        load_default=lambda: backbones.imagenet_vgg16().features[:depth],
        model=random_features,
    )
    features.requires_grad_(False)
    # VGG16's features have no dropout or batch norm, so a later .train() on the loss changes nothing.
    return features.eval()


def build_loss(name: str, **options) -> nn.Module:
    """A loss module following the calling convention of the module docstring."""
    return _loss_class(name)(**options)


def loss_from_config(config) -> nn.Module:
    """The loss a TrainConfig asks for (its `loss`, already resolved from the model's recipe)."""
    cls = _loss_class(config.loss)
    return cls.from_config(config) if hasattr(cls, "from_config") else cls()


def _loss_class(name: str) -> type[nn.Module]:
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    return LOSSES[name]

"""Deep Koalarization (Baldassarre, Morín, Rodés-Guirao 2017, arXiv 1712.03400) as a registered model.

A convolutional encoder over L and a frozen Inception-ResNet-v2 that describes the whole image meet in a
fusion layer; a decoder turns the fused features into ab. Layer sizes follow the authors' repository
(src/koalarization/network_definition.py):

- encoder: eight 3x3 convs with ReLU, filters/strides 64/2, 128/1, 128/2, 256/1, 256/2, 512/1, 512/1, 256/1,
  so H x W -> H/8 x W/8 x 256;
- global vector: the Inception-ResNet-v2 classifier **logits** (timm's `inception_resnet_v2`: 1000 values;
  the authors' TF-slim checkpoint had 1001, background included). The authors' repository fuses the logits,
  not the softmax and not the 1536-d pooled features. The logits say what the image shows in terms of the
  ImageNet classes, the semantic hint the fusion is meant to add (a koala's colours follow from "koala"),
  and unlike the softmax they do not squash every class but the top one towards zero;
- fusion: the vector tiled over every H/8 x W/8 position, concatenated with the encoder output
  (256 + 1000 channels), 1x1 conv with 256 filters and ReLU;
- decoder: conv128, up x2, conv64, conv64, up x2, conv32, conv2 (tanh), up x2; 3x3 convs, ReLU except the
  tanh output; nearest-neighbour upsampling (Keras' UpSampling2D default, which the authors used).

Inputs and outputs follow this package's contract: forward(L_norm in [0, 1]) -> ab_norm = ab / 128. Inside,
the encoder sees 2 L_norm - 1 in [-1, 1] as in the authors' code (L -> 2L/100 - 1); their ab / 127 target
differs from our ab / 128 by under 1%, far inside the tanh range.

The embedding is the single largest cost: Inception-ResNet-v2 has 55.8M parameters and takes 13.2 GMACs per
299x299 image, against 7.5 GMACs for encoder, fusion and decoder together on a 224x224 input (measured with
torch.utils.flop_counter), so about 64% of an inference pass. It is computed inside the forward pass, without
autograd: one inference-only IRv2 pass per batch (no activations kept, no backward).

Caching (opt-in: `model.cache_embeddings()`, which `train --cache-features` calls). The authors stored one
embedding per image next to it in their TFRecords, which suits their fixed, un-augmented training images.
Here training inputs are random crops and flips (colorization.data.train_transform), so an embedding keyed by
the image's file or index would describe a different picture from the crop the encoder sees. The cache is
therefore keyed by the exact pixels the backbone is given (a hash of the L tensor): a new crop or a flip is a
new key and gets its own backbone pass, so a cached embedding is only ever reused for identical input, whatever
the augmentation. It pays off only when inputs repeat: held-out images (centre crops), and training images
that are already square at --image-size (the random crop is then the whole image and the flip gives each image
two inputs), as in the demo. With real random crops nearly every key is new and the cache only costs memory,
so it stops growing at CACHE_LIMIT entries. The backbone is frozen and in eval mode (batch norm on running
statistics), so an image's embedding does not depend on the other images of its batch (up to float rounding).
On a GPU the keys cost one copy of each batch's L to the CPU.

`backbone_size` feeds the backbone a smaller square than its native 299x299: its MACs fall with the square of
the side (128: 5.5x fewer; measured on 2 CPU cores, 4x less time), the semantic vector gets coarser, and the
model is no longer the published one. It is meant for CPU demos, like `width`.

The frozen backbone is kept out of training and out of checkpoints: its parameters have requires_grad False,
it stays in eval mode (its batch-norm statistics never move) whatever model.train() says, and state_dict()
omits its 55.8M parameters, so a checkpoint holds only the 6.6M trained ones (at width 1.0). It is rebuilt
from the `irv2_weights` kwarg stored with the checkpoint; a fingerprint of its weights is saved in its place,
and loading a checkpoint into a model whose backbone weights differ from those it was trained with is an
error rather than silently wrong colours.
"""

import hashlib

import timm
import torch
import torch.nn.functional as F
from torch import nn

from colorization.backbones import load_backbone
from colorization.errors import ConfigError
from colorization.models import Recipe, register_model, scaled
from colorization.models.padding import crop_to, pad_to_multiple

IRV2 = "inception_resnet_v2"
TOTAL_STRIDE = 8
ENCODER = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (256, 1))
FUSION_CHANNELS = 256
# Seed for a "none" (random) backbone: the backbone is not in checkpoints, so rebuilding it must give the
# same weights the model was trained with.
RANDOM_BACKBONE_SEED = 0
# Most embeddings the cache keeps: 50,000 x 1000 float32 logits is 200 MB.
CACHE_LIMIT = 50_000


# The authors' train.py; what their paper and repository leave open is listed as assumptions.
KOALARIZATION_RECIPE = Recipe(
    source="Baldassarre et al. 2017 and their repository (src/koalarization/train.py)",
    loss="mse",
    optimizer="adam",
    schedule="100:1e-3",
    batch_size=100,
    image_size=224,
    assumptions=(
        (
            "epochs",
            "100 at a constant 1e-3, as many as the paper's network's schedule: the authors give no "
            "epoch count for ImageNet (--epochs, --schedule)",
        ),
        (
            "batch_size",
            "100 images per step; where memory cannot hold them, --micro-batch-size N accumulates "
            "gradients over chunks of N (batch norm is not used, so the step is the same)",
        ),
    ),
)


def conv_relu(in_channels, out_channels, stride=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


def upsample():
    return nn.Upsample(scale_factor=2, mode="nearest")


def weights_fingerprint(module):
    """(sum, sum of squares) over all parameters and buffers in float64: equal weights, equal fingerprint."""
    values = [tensor.detach().double() for tensor in module.state_dict().values() if tensor.is_floating_point()]
    return torch.stack([sum(v.sum() for v in values), sum(v.square().sum() for v in values)]).cpu()


class FrozenEmbedder(nn.Module):
    """A frozen timm classifier mapping L_norm to its logits, with the image prepared as that classifier expects.

    The grayscale image is resized to the classifier's native input (299x299 for Inception-ResNet-v2),
    replicated to 3 channels and normalized with the classifier's mean and std, which for
    Inception-ResNet-v2 (mean = std = 0.5) is exactly the authors' scaling to [-1, 1]: 2 L_norm - 1.
    `size` replaces the native input side (see backbone_size in the module docstring).
    """

    def __init__(self, backbone, size=None):
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        config = backbone.pretrained_cfg
        self.input_size = (size, size) if size else tuple(config["input_size"][-2:])
        self.cache = None  # {pixel hash: embedding} after cache_embeddings(); not part of the state
        self.register_buffer("mean", torch.tensor(config["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config["std"]).view(1, 3, 1, 1), persistent=False)
        # A plain attribute, not a buffer, so that model.half() or .to(device) cannot alter it.
        self.fingerprint = weights_fingerprint(backbone)
        self.register_state_dict_post_hook(fingerprint_instead_of_backbone)
        self.register_load_state_dict_pre_hook(keep_own_backbone)

    @property
    def dim(self):
        return self.backbone.num_classes

    def train(self, mode=True):
        # Frozen means frozen: batch norm and dropout of the backbone stay in inference behaviour.
        return super().train(False)

    def forward(self, L_norm):
        if self.cache is None:
            return self.embed(L_norm)
        keys = [pixels_key(image) for image in L_norm.detach().cpu()]
        new = [index for index, key in enumerate(keys) if key not in self.cache]
        computed = dict(zip([keys[index] for index in new], self.embed(L_norm[new]))) if new else {}
        if len(self.cache) < CACHE_LIMIT:
            self.cache.update(computed)
        return torch.stack([computed[key] if key in computed else self.cache[key] for key in keys])

    def embed(self, L_norm):
        with torch.no_grad():
            gray = F.interpolate(L_norm, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
            return self.backbone((gray.expand(-1, 3, -1, -1) - self.mean) / self.std)


def pixels_key(image):
    """A key that equals another only for the same shape, dtype and bytes (a 128-bit hash of them)."""
    data = image.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
    return tuple(image.shape), str(image.dtype), hashlib.blake2b(data, digest_size=16).digest()


def fingerprint_instead_of_backbone(module, state_dict, prefix, local_metadata):
    for key in [key for key in state_dict if key.startswith(prefix + "backbone.")]:
        del state_dict[key]
    state_dict[prefix + "fingerprint"] = module.fingerprint.clone()


def keep_own_backbone(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    """Checkpoints carry no backbone: keep the one built from irv2_weights, after checking it is the same."""
    saved = state_dict.pop(prefix + "fingerprint", None)
    if saved is not None and not torch.allclose(saved.double().cpu(), module.fingerprint, rtol=1e-6):
        raise ConfigError(
            "this checkpoint was trained with different Inception-ResNet-v2 weights than the ones built now "
            "(irv2_weights points at other weights, or the file changed); pass the irv2_weights it was trained with"
        )
    for key, value in module.backbone.state_dict().items():
        state_dict.setdefault(f"{prefix}backbone.{key}", value)


def build_backbone(irv2_weights, irv2_model):
    def random_init():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_BACKBONE_SEED)
            return timm.create_model(irv2_model, pretrained=False)

    return load_backbone(
        irv2_weights,
        name="Inception-ResNet-v2" if irv2_model == IRV2 else f"timm {irv2_model}",
        option="--irv2-weights",
        load_default=lambda: timm.create_model(irv2_model, pretrained=True),
        model=random_init,
    )


@register_model("koalarization", recipe=KOALARIZATION_RECIPE)
class Koalarization(nn.Module):
    """Deep Koalarization: forward(L_norm (N, 1, H, W)) -> ab_norm (N, 2, H, W), any H and W.

    Kwargs (JSON-serializable, stored in checkpoints):
    irv2_weights: "imagenet" (timm's pretrained ImageNet weights, the default), a PATH to a state_dict of
        timm's inception_resnet_v2, or "none" (random init, seeded so that a rebuilt model matches).
    width: multiplier on the encoder, fusion and decoder channels (1.0 is the published network).
    irv2_model: the timm classifier used as the global feature extractor. "inception_resnet_v2" is the model;
        another name (e.g. timm's "test_resnet") is an option for tests and CPU smoke runs only.
    backbone_size: side of the square the backbone sees (default: its native 299); smaller is cheaper and
        further from the published model (see the module docstring).
    """

    output_space = "ab"

    def __init__(self, irv2_weights="imagenet", width=1.0, irv2_model=IRV2, backbone_size=None):
        super().__init__()
        self.embedder = FrozenEmbedder(build_backbone(irv2_weights, irv2_model), size=backbone_size)
        layers, channels = [], 1
        for filters, stride in ENCODER:
            layers.append(conv_relu(channels, scaled(filters, width), stride))
            channels = scaled(filters, width)
        self.encoder = nn.Sequential(*layers)
        fused = scaled(FUSION_CHANNELS, width)
        self.fusion = nn.Sequential(nn.Conv2d(channels + self.embedder.dim, fused, 1), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(
            conv_relu(fused, scaled(128, width)),
            upsample(),
            conv_relu(scaled(128, width), scaled(64, width)),
            conv_relu(scaled(64, width), scaled(64, width)),
            upsample(),
            conv_relu(scaled(64, width), scaled(32, width)),
            nn.Conv2d(scaled(32, width), 2, 3, padding=1),
            nn.Tanh(),
            upsample(),
        )

    def cache_embeddings(self):
        """Reuse the backbone's embedding of any input seen before (see Caching in the module docstring)."""
        self.embedder.cache = {}

    def forward(self, L_norm):
        embedding = self.embedder(L_norm)
        padded, size = pad_to_multiple(L_norm, TOTAL_STRIDE)
        features = self.encoder(2 * padded - 1)
        tiled = embedding[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        return crop_to(self.decoder(self.fusion(torch.cat([features, tiled], dim=1))), size)

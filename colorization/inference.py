"""Colorize photos with a trained checkpoint, at the photo's own resolution.

The model sees the photo's L channel resized so that its shorter side is the training size (objects then
have the scale the model was trained on; the model is fully convolutional, so the aspect ratio is kept). Its
a/b prediction is upsampled bilinearly to the full resolution and combined with the photo's own full-resolution
L, so the output's lightness is exactly the input's. For the RGB-output variant, the a/b of its RGB output is
used the same way. Grayscale photos (or colour photos, whose colour is discarded) go in; colour comes out.

Saturation boost (the paper's +40% post-processing, off by default): `saturation=1.4` multiplies a and b by
1.4, i.e. the chroma of CIE LCh, keeping lightness and hue; colours pushed out of the RGB gamut are clipped.
It is the Lab counterpart of scaling HSV saturation, which would also change the lightness.

Speed (benchmarks/inference.py; figures in benchmarks/README.md). For colorizing, load_model(...,
optimize=True) runs optimize_for_inference: every batch norm that directly follows a convolution is folded into
it (the same outputs up to float rounding, within 1e-4) and the weights are stored channels_last, which
oneDNN's CPU convolutions run 1.1-1.2x faster and cuDNN's bf16 ones prefer too. colorize_paths feeds
DEFAULT_BATCH_SIZE images per forward pass on each device unless told otherwise: on CPU 1, where the paper's
network measured fastest (6-7% faster than at 8; Koalarization is about 10% slower there than at 8).
"""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.transforms.functional import to_tensor
from tqdm import tqdm

from colorization.checkpoint import load_checkpoint
from colorization.devices import resolve_device
from colorization.errors import ImageError
from colorization.images import DuplicateStemError, by_stem, load_image
from colorization.lab import lab_norm_to_rgb, rgb_to_lab_norm
from colorization.models import create_model

# Images per forward pass in colorize_paths when its batch_size is None, by device type (benchmarks/inference.py,
# benchmarks/README.md): on CPU the fastest for the paper's network; CUDA keeps the earlier 8, not yet measured
# against other sizes.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 8}


def default_batch_size(device) -> int:
    """colorize_paths's batch size on device (a torch.device or its name) when none is given."""
    return DEFAULT_BATCH_SIZE.get(torch.device(device).type, 8)


def load_model(checkpoint_path, device="auto", *, optimize=False) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on device, checkpoint dict) from a checkpoint written by colorization.train.

    optimize: also run optimize_for_inference (what colorize_paths does): faster, the same outputs up to float
    rounding, but batch norm is folded away, so the model's state_dict no longer matches the checkpoint's and
    it is for inference only. Without it, the model holds exactly the checkpoint's weights.
    """
    ckpt = load_checkpoint(checkpoint_path)
    model = create_model(ckpt["model_name"], **ckpt["model_kwargs"])
    model.load_state_dict(ckpt["model_state"])
    return prepare_model(model, device, optimize=optimize), ckpt


def prepare_model(model: nn.Module, device="auto", *, optimize=False) -> nn.Module:
    """The model in eval mode on device, as load_model gives it (optimize: see load_model); in place."""
    device = resolve_device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    if optimize:
        optimize_for_inference(model, device)
    elif device.type == "cuda":  # as in training (colorization.train.build_training): faster convs under bf16
        model = model.to(memory_format=torch.channels_last)
    return model


def optimize_for_inference(model: nn.Module, device) -> nn.Module:
    """Make an eval-mode model faster for predict_ab, in place; returns it.

    Folds batch norm into the convolution before it (fold_batch_norm) and stores the weights channels_last,
    on CPU as on CUDA (measured: benchmarks/README.md). Outputs stay those of the plain model up to float
    rounding. The model must already be on device and in eval mode.
    """
    if model.training:
        raise ValueError("optimize_for_inference needs a model in eval mode (batch norm on running statistics)")
    device = resolve_device(device) if isinstance(device, str) else device
    fold_batch_norm(model)
    if device.type in ("cpu", "cuda"):
        model.to(memory_format=torch.channels_last)
    return model


def fold_batch_norm(model: nn.Module) -> int:
    """Fold every eval-mode batch norm that directly follows a convolution into it, in place; returns how many.

    Recognized: a Conv2d or ConvTranspose2d followed by a BatchNorm2d in an nn.Sequential (this package's
    networks), and timm's ConvNormAct (conv, then BatchNormAct2d: batch norm, dropout, activation), which
    Inception-ResNet-v2, Koalarization's backbone, is built of. The fused weights come from torch's own
    torch.nn.utils.fusion.fuse_conv_bn_eval; each folded batch norm is replaced by nn.Identity, or by its
    dropout and activation. Any other layout (batch norm after an activation, as in eccv16) is left as it is.
    The module tree is kept, so forward hooks on the blocks and python-level logic around them (Koalarization's
    embedding cache) still work. Not folded: a pair where either layer has forward hooks, and pairs inside
    subclasses of nn.Sequential. Code that calls a folded convolution on its own (seq[0](x)) gets the fused
    output: models meant for optimize=True must not do that (none in this package does).
    """
    conv_norm_act, norm_act = _timm_norm_layers()
    folded = 0
    for module in list(model.modules()):
        # Exactly nn.Sequential: a subclass may use its layers in another order or more than once.
        if type(module) is nn.Sequential:
            for index in range(len(module) - 1):
                replacement = _folded(module[index], module[index + 1], norm_act)
                if replacement:
                    module[index], module[index + 1] = replacement
                    folded += 1
        elif conv_norm_act is not None and type(module) is conv_norm_act:
            replacement = _folded(module.conv, module.bn, norm_act)
            if replacement:
                module.conv, module.bn = replacement
                folded += 1
    return folded


def _folded(conv: Any, norm: Any, norm_act) -> tuple[nn.Module, nn.Module] | None:
    """(fused convolution, what replaces the batch norm) when norm can be folded into conv, else None."""
    rest: nn.Module
    if type(norm) is nn.BatchNorm2d:
        rest = nn.Identity()
    elif norm_act is not None and type(norm) is norm_act:
        rest = nn.Sequential(getattr(norm, "drop", nn.Identity()), getattr(norm, "act", nn.Identity()))
    else:
        return None
    transpose = type(conv) is nn.ConvTranspose2d
    if type(conv) is not nn.Conv2d and not (transpose and conv.groups == 1):
        return None
    if conv.training or norm.training or norm.running_mean is None or norm.running_var is None:
        return None
    if any(layer._forward_hooks or layer._forward_pre_hooks for layer in (conv, norm)):
        return None  # a hook on either would see (or change) the fused output, or never run again
    if conv.out_channels != norm.num_features or not conv.weight.is_floating_point():
        return None
    return fuse_conv_bn_eval(conv, norm, transpose=transpose), rest


def _timm_norm_layers():
    """timm's (ConvNormAct, BatchNormAct2d) if timm is loaded (else no module of the model can be one of them)."""
    layers = sys.modules.get("timm.layers")
    if layers is None:
        return None, None
    return getattr(layers, "ConvNormAct", None), getattr(layers, "BatchNormAct2d", None)


def image_L(image: Image.Image) -> torch.Tensor:
    """L_norm (1, 1, H, W) of an RGB PIL image."""
    L_norm, _ = rgb_to_lab_norm(to_tensor(image).unsqueeze(0))
    return L_norm


def resize_shorter_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) so that min(H, W) = size, keeping the aspect ratio (antialiased bilinear)."""
    height, width = x.shape[-2:]
    scale = size / min(height, width)
    new_size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(x, size=new_size, mode="bilinear", antialias=True, align_corners=False)


def model_input(image: Image.Image, size: int) -> torch.Tensor:
    """What the model is fed for one photo: its L_norm with the shorter side resized to size."""
    return resize_shorter_side(image_L(image), size)


@torch.inference_mode()
def predict_ab(model: Any, L_small: torch.Tensor) -> torch.Tensor:
    """ab_norm predicted for a batch of model inputs, whatever the model's output space (a registered model:
    output_space, and to_ab when its outputs are not colours)."""
    device = L_small.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        output = model(L_small).float()
    if model.output_space == "ab":
        return output
    if model.output_space == "rgb":
        return rgb_to_lab_norm(output)[1]
    return model.to_ab(output, L_small.shape[-2:]).float()


def colorize_paths(
    checkpoint,
    paths,
    out_dir,
    *,
    image_size=None,
    saturation=None,
    device="auto",
    batch_size=None,
    skip_existing=False,
    progress=True,
) -> list[Path]:
    """Colorize every image in paths into OUT_DIR/<stem>.png; returns the output paths in input order.

    checkpoint: a checkpoint file, loaded (load_model(..., optimize=True)) on device; or a (model, checkpoint
    dict) pair that the caller has loaded already (with load_model, optimize=True for speed), which runs on the
    device it is on, whatever `device` says. image_size: shorter side fed to the model (default: the
    checkpoint's training size). saturation: a/b factor (see the module docstring). batch_size: images per
    forward pass (default: default_batch_size of the device); inputs that give the same model-input size are
    batched together. With skip_existing, outputs already present are left as they are (and still returned).
    Stems must be unique; an unreadable input raises ImageError naming it.
    """
    paths = [Path(path) for path in paths]
    out_dir = Path(out_dir)
    outputs = _output_paths(paths, out_dir)
    todo = [(path, out) for path, out in zip(paths, outputs) if not (skip_existing and out.exists())]
    if not todo:
        return outputs
    if isinstance(checkpoint, tuple):
        model, ckpt = checkpoint
        device = _device_of(model)
    else:
        device = resolve_device(device) if isinstance(device, str) else device
        model, ckpt = load_model(checkpoint, device, optimize=True)
    if batch_size is None:
        batch_size = default_batch_size(device)
    size = image_size or ckpt["config"]["image_size"]
    out_dir.mkdir(parents=True, exist_ok=True)

    # (output path, full-resolution L, model input), all of one model-input size
    pending: list[tuple[Path, torch.Tensor, torch.Tensor]] = []

    def flush():
        ab_small = predict_ab(model, torch.cat([L_small for _, _, L_small in pending]).to(device))
        for index, (out, L_full, _) in enumerate(pending):
            _write_colorized(out, L_full.to(device), ab_small[index : index + 1], saturation)
        pending.clear()

    # Ordering by the size in the file header puts equal sizes next to each other, so they share batches.
    by_size = sorted(todo, key=lambda item: _header_size(item[0]))
    for path, out in tqdm(by_size, desc="colorize", unit="img", disable=not progress):
        L_full = image_L(load_image(path))
        L_small = resize_shorter_side(L_full, size)
        if pending and (len(pending) == batch_size or pending[0][2].shape != L_small.shape):
            flush()
        pending.append((out, L_full, L_small))
    flush()
    return outputs


def _device_of(model: nn.Module) -> torch.device:
    tensor: torch.Tensor | None = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _write_colorized(out: Path, L_full: torch.Tensor, ab_small: torch.Tensor, saturation) -> None:
    ab_full = F.interpolate(ab_small, size=L_full.shape[-2:], mode="bilinear", align_corners=False)
    if saturation is not None:
        ab_full = ab_full * saturation
    rgb = lab_norm_to_rgb(L_full, ab_full)[0]
    pixels = (rgb * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out)


def _output_paths(paths: list[Path], out_dir: Path) -> list[Path]:
    try:
        by_stem(paths)
    except DuplicateStemError as error:
        raise ImageError(f"{error}: outputs would collide") from None
    return [out_dir / f"{path.stem}.png" for path in paths]


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError):
        return (0, 0)  # load_image reports the problem when the file's turn comes

"""Colorize photos with a trained checkpoint, at the photo's own resolution.

The model sees the photo's L channel resized so that its shorter side is the training size (objects then
have the scale the model was trained on; the model is fully convolutional, so the aspect ratio is kept). Its
a/b prediction is upsampled bilinearly to the full resolution and combined with the photo's own full-resolution
L, so the output's lightness is exactly the input's. For the RGB-output variant, the a/b of its RGB output is
used the same way. Grayscale photos (or colour photos, whose colour is discarded) go in; colour comes out.

Saturation boost (the paper's +40% post-processing, off by default): `saturation=1.4` multiplies a and b by
1.4, i.e. the chroma of CIE LCh, keeping lightness and hue; colours pushed out of the RGB gamut are clipped.
It is the Lab counterpart of scaling HSV saturation, which would also change the lightness.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import to_tensor
from tqdm import tqdm

from colorization.devices import resolve_device
from colorization.images import load_image
from colorization.lab import lab_norm_to_rgb, rgb_to_lab_norm
from colorization.models import create_model


def load_model(checkpoint_path, device="auto") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on device, checkpoint dict) from a checkpoint written by colorization.train."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch reports damaged or foreign files with many exception types
        raise ValueError(f"{path}: not a readable checkpoint ({error})") from None
    model = create_model(ckpt["model_name"], **ckpt["model_kwargs"])
    model.load_state_dict(ckpt["model_state"])
    device = resolve_device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    if device.type == "cuda":  # as in training (colorization.train.build_training): faster convs under bf16
        model = model.to(memory_format=torch.channels_last)
    return model, ckpt


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
def predict_ab(model: torch.nn.Module, L_small: torch.Tensor) -> torch.Tensor:
    """ab_norm predicted for a batch of model inputs, whatever the model's output space."""
    device = L_small.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        output = model(L_small).float()
    return output if model.output_space == "ab" else rgb_to_lab_norm(output)[1]


def colorize_paths(
    checkpoint_path,
    paths,
    out_dir,
    *,
    image_size=None,
    saturation=None,
    device="auto",
    batch_size=8,
    skip_existing=False,
    progress=True,
) -> list[Path]:
    """Colorize every image in paths into OUT_DIR/<stem>.png; returns the output paths in input order.

    image_size: shorter side fed to the model (default: the checkpoint's training size). saturation: a/b
    factor (see the module docstring). Inputs that give the same model-input size are batched together.
    With skip_existing, outputs already present are left as they are (and still returned). Stems must be
    unique; an unreadable input raises ImageError naming it.
    """
    paths = [Path(path) for path in paths]
    out_dir = Path(out_dir)
    outputs = _output_paths(paths, out_dir)
    todo = [(path, out) for path, out in zip(paths, outputs) if not (skip_existing and out.exists())]
    if not todo:
        return outputs
    device = resolve_device(device) if isinstance(device, str) else device
    model, ckpt = load_model(checkpoint_path, device)
    size = image_size or ckpt["config"]["image_size"]
    out_dir.mkdir(parents=True, exist_ok=True)

    pending = []  # (output path, full-resolution L, model input), all of one model-input size

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


def _write_colorized(out: Path, L_full: torch.Tensor, ab_small: torch.Tensor, saturation) -> None:
    ab_full = F.interpolate(ab_small, size=L_full.shape[-2:], mode="bilinear", align_corners=False)
    if saturation is not None:
        ab_full = ab_full * saturation
    rgb = lab_norm_to_rgb(L_full, ab_full)[0]
    pixels = (rgb * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out)


def _output_paths(paths: list[Path], out_dir: Path) -> list[Path]:
    seen = {}
    for path in paths:
        if path.stem in seen:
            raise ValueError(f"{seen[path.stem]} and {path} share the stem {path.stem!r}: outputs would collide")
        seen[path.stem] = path
    return [out_dir / f"{path.stem}.png" for path in paths]


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError):
        return (0, 0)  # load_image reports the problem when the file's turn comes

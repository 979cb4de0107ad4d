"""The one normalizer every stimulus passes through, so real and generated images differ only in their pixels.

Every stimulus, real or generated, is loaded exactly as the colorization models load their inputs
(colorization.images.load_image: EXIF orientation applied, CMYK/alpha/16-bit/palette converted to 8-bit RGB,
no ICC colour management), center-cropped to a square, resized to size x size with LANCZOS, and encoded as a
PNG with the same encoder settings and nothing but the IHDR, IDAT and IEND chunks: no EXIF, ICC profile,
text, gamma or resolution chunks.

The PNG is stored uncompressed (compress_level=0). An uncompressed PNG's length depends only on its
dimensions, so every stimulus of a study has exactly the same file size and the same Content-Length: a
participant cannot tell a smooth model output from a noisy photo by how many bytes it took to download.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage import color

from colorization.errors import UserError
from colorization.images import ImageError, load_image

DEFAULT_STIMULUS_SIZE = 256

# Fixed for every stimulus; see the module docstring for why level 0.
PNG_SETTINGS = {"optimize": False, "compress_level": 0}


class StimulusError(UserError):
    """A file that cannot become a stimulus; the message starts with the file's path."""


def normalize_image(path: Path, size: int = DEFAULT_STIMULUS_SIZE) -> bytes:
    """PNG bytes of the image at path as an 8-bit RGB size x size stimulus without any metadata."""
    if size < 1:
        raise ValueError(f"stimulus size must be positive, got {size}")
    try:
        image = load_image(path)
    except ImageError as error:
        raise StimulusError(str(error)) from None
    square = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return encode_png(square)


def encode_png(image: Image.Image) -> bytes:
    """The image's RGB pixels as a PNG with the fixed encoder settings and no metadata."""
    # A fresh image built from the raw pixels carries no info dict, so Pillow has no ICC profile,
    # transparency or text to copy into the file.
    clean = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", **PNG_SETTINGS)
    return buffer.getvalue()


def stored_rgb(stimulus) -> np.ndarray:
    """The 8-bit RGB pixels (height x width x 3) of a stimulus's stored image."""
    with stimulus.image.storage.open(stimulus.image.name, "rb") as file:
        with Image.open(file) as image:
            return np.asarray(image.convert("RGB"))


def catch_version(image: Image.Image) -> Image.Image:
    """An obviously wrong colorization for attention-check trials: every hue turned by 180°, lightness kept.

    Done in CIELAB by negating a and b, which turns the hue angle by 180° and keeps chroma and L. Keeping L
    makes colour the only thing that is wrong, as in a model's output: the image has the photo's brightness
    and detail, so it can be told apart by its colours alone and passes the audit's lightness check
    (turing.stimuli.audit.luminance_problems). Turning the hue in HSV instead would change the lightness too (blue
    turned yellow becomes much lighter). Colours that sRGB cannot show are clipped, as a model's are.
    """
    lab = color.rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0)
    lab[..., 1:] = -lab[..., 1:]
    rgb = color.lab2rgb(lab).clip(0.0, 1.0)
    return Image.fromarray((rgb * 255.0).round().astype(np.uint8))

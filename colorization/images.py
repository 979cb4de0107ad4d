"""Load any photo as 8-bit RGB, or fail with an ImageError that names the file and the problem.

Conversions (all to 8-bit RGB):
- EXIF orientation is applied, so phone photos come out upright;
- CMYK: Pillow's conversion (no ICC colour management);
- alpha (RGBA, LA, PA, palette transparency): composited on white;
- 16-bit grayscale (I;16 modes, 32-bit "I"): scaled by 255/65535; 16-bit RGB is reduced to 8 bits by Pillow;
- palette: expanded to RGB.
An image is grayscale when its three channels are identical after conversion (L, LA, 16-bit gray, gray
palettes, or a gray photo saved as RGB). It is returned as RGB when allow_gray, rejected otherwise: a
grayscale photo carries no colour to learn.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.color import lab2rgb, rgb2lab

from colorization.errors import ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}

_SIXTEEN_BIT_GRAY_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def is_image_file(path) -> bool:
    """Whether a file counts as an image: its extension is one of IMAGE_EXTENSIONS and its name is not hidden.

    The one rule for every command that reads a folder of images (split, colorize --images, the study
    import), so that a stray notes.txt or metrics.csv is skipped by all of them alike. Decided by name only:
    nothing is opened, and a corrupt image is found when it is loaded.
    """
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def first_few(items, shown=5) -> str:
    """ "a, b, c" or, for a long list, its first `shown` items and how many more (file names for paths): how an
    error names the files it is about without a screenful of them."""
    names = [item.name if isinstance(item, Path) else str(item) for item in items]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def find_images(directory) -> list[Path]:
    """Image files under directory (recursive, by is_image_file), sorted by relative path.

    Hidden files and folders (names starting with ".", e.g. macOS "._x.jpg" resource forks) are ignored.
    Files are not opened here; corrupt ones are found when loaded.
    """
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder of images")
    found = [
        path
        for path in root.rglob("*")
        if is_image_file(path)
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


class DuplicateStemError(ImageError):
    """Two files share a stem, which names a scene, an output file and a stimulus."""

    def __init__(self, first, second, stem: str):
        super().__init__(f"{first} and {second} share the stem {stem!r}")
        self.first, self.second, self.stem = first, second, stem


def by_stem(paths) -> dict:
    """{stem: path} in the order given; DuplicateStemError naming both files when two share a stem."""
    found: dict = {}
    for path in paths:
        stem = Path(path).stem
        if stem in found:
            raise DuplicateStemError(found[stem], path, stem)
        found[stem] = path
    return found


def prediction_of(folder, stem: str) -> Path | None:
    """The image in folder named after a ground truth's stem: <stem>.png (what `colorize` writes), else
    <stem> with any other image extension (another tool's outputs: DDColor keeps the input's .jpg); None if
    there is none."""
    folder = Path(folder)
    for extension in (".png", *sorted(IMAGE_EXTENSIONS - {".png"})):
        for candidate in (folder / f"{stem}{extension}", folder / f"{stem}{extension.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def load_image(path, *, allow_gray: bool = True) -> Image.Image:
    """The image at path as an 8-bit RGB PIL image (see the module docstring for the conversions)."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # Pillow reports truncated or unrecognised data as OSError/UnidentifiedImageError, bad headers
        # sometimes as ValueError or SyntaxError.
        raise ImageError(f"{path}: unreadable or corrupt image ({error})") from None
    try:
        rgb = _to_rgb8(image)
    except (OSError, ValueError) as error:
        raise ImageError(f"{path}: cannot convert {image.mode!r} image to RGB ({error})") from None
    if not allow_gray and is_grayscale(rgb):
        raise ImageError(f"{path}: grayscale image (mode {image.mode!r}) has no colour to learn from")
    return rgb


def is_grayscale(rgb: Image.Image) -> bool:
    """True when an RGB image's three channels are identical."""
    pixels = np.asarray(rgb)
    return bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())


def _to_rgb8(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_GRAY_MODES:
        # Pillow's own I;16 -> L conversion clips at 255 instead of scaling.
        levels = np.asarray(image, dtype=np.float64).clip(0, 65535) * (255.0 / 65535.0)
        image = Image.fromarray(levels.round().astype(np.uint8))
    if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def grayscale_view(rgb: Image.Image) -> Image.Image:
    """What the colorization model was given: the image's CIELAB lightness L with a = b = 0, as a mode "L" image.

    The first column of every gallery (compare's and the staff gallery's); never a stimulus. Gray with the
    photo's own L (rather than Pillow's luma conversion) shows exactly the information the model received.
    """
    lab = rgb2lab(np.asarray(rgb.convert("RGB"), dtype=np.float64) / 255.0)
    lab[..., 1:] = 0.0
    # With a = b = 0 the three sRGB channels agree up to rounding; their mean is the gray level.
    gray = lab2rgb(lab).mean(axis=-1)
    return Image.fromarray((gray.clip(0.0, 1.0) * 255.0).round().astype(np.uint8))

"""A small real-image dataset that needs no download: crops of scikit-image's bundled colour images.

They are photographs of scenes (astronaut, cat, coffee, rocket, motorcycle) and of scientific subjects (the
Hubble deep field, an immunohistochemistry slide, a retina): real captures, not drawings.

Enough to see the whole system work on a laptop (split, train, colorize, Turing test); far too small to
train a good colorizer, which is said wherever the demo reports results.
"""

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

# Colour photographs shipped inside scikit-image's wheel (no pooch download). The drawings it also
# ships (colorwheel, logo) are left out: a Turing test of photos should show photos.
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)


# The crops of one photo share a scene: split.make_split(..., group_by=CROPS_OF_ONE_PHOTO) keeps them on one side.
CROPS_OF_ONE_PHOTO = r"^(.+)-\d+$"


def load_photo(name, shorter_side):
    image = getattr(skimage.data, name)()
    # stereo_motorcycle returns (left, right, disparity); the left view is a plain photo.
    image = Image.fromarray(image[0] if isinstance(image, tuple) else image)
    # Scale large photos down first so that a crop shows a recognisable part of the scene.
    scale = shorter_side / min(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return np.asarray(image)


def crop_boxes(height, width, count, crop, rng):
    """`count` square boxes of side `crop` at random positions inside the photo."""
    side = min(crop, height, width)
    tops = rng.integers(0, height - side + 1, size=count)
    lefts = rng.integers(0, width - side + 1, size=count)
    return [(int(top), int(left), side) for top, left in zip(tops, lefts)]


def write_demo_photos(out_dir, *, crops_per_photo=6, crop_size=160, seed=0):
    """Write `crops_per_photo` random square crops of each bundled photo as PNGs; return their paths.

    Existing files are kept, so a second call costs nothing and yields the same set.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for name in PHOTOS:
        photo = load_photo(name, shorter_side=2 * crop_size)
        boxes = crop_boxes(photo.shape[0], photo.shape[1], crops_per_photo, crop_size, rng)
        for index, (top, left, side) in enumerate(boxes):
            path = out_dir / f"{name}-{index:02d}.png"
            if not path.exists():
                Image.fromarray(photo[top : top + side, left : left + side]).save(path)
            paths.append(path)
    return paths

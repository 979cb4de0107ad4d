"""Datasets and transforms: square crops of colour photos as (L_norm, ab_norm, rgb) tensors.

Files that cannot serve as colour training data (corrupt, unreadable, or grayscale: no colour to learn) are
skipped, never fatal: __getitem__ warns with SkippedImageWarning naming the file and returns None, and
`collate_skip_none` drops the Nones. Skipped files are counted in `dataset.skipped` (in the process that loaded
them: with DataLoader workers, count the batches' "skipped" entries instead, see collate_skip_none).
"""

import warnings
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset, default_collate
from torchvision import transforms

from colorization.images import ImageError, load_image
from colorization.lab import rgb_to_lab_norm


class SkippedImageWarning(UserWarning):
    """A file left out of a dataset; the message names it and why."""


def eval_transform(image: Image.Image, size: int) -> Image.Image:
    """Deterministic: resize the shorter side to size, then center crop size x size."""
    return TF.center_crop(TF.resize(image, size), size)


def train_transform(image: Image.Image, size: int) -> Image.Image:
    """Random: resize the shorter side to size, random size x size crop, horizontal flip half the time.

    Draws from torch's RNG, so DataLoader workers get distinct, seedable streams.
    """
    image = TF.resize(image, size)
    top, left, height, width = transforms.RandomCrop.get_params(image, (size, size))
    image = TF.crop(image, top, left, height, width)
    return TF.hflip(image) if torch.rand(()) < 0.5 else image


class ColorizationDataset(Dataset):
    """Items {"L": (1,S,S) L_norm, "ab": (2,S,S) ab_norm, "rgb": (3,S,S) in [0,1], "index": int}, or None."""

    def __init__(self, paths, image_size: int, train: bool):
        self.paths = [Path(path) for path in paths]
        self.image_size = image_size
        self.train = train
        self.skipped_paths: set[Path] = set()

    @property
    def skipped(self) -> int:
        return len(self.skipped_paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        try:
            image = load_image(path, allow_gray=False)
        except ImageError as error:
            if path not in self.skipped_paths:
                warnings.warn(f"{error}; skipped", SkippedImageWarning, stacklevel=2)
                self.skipped_paths.add(path)
            return None
        crop = (train_transform if self.train else eval_transform)(image, self.image_size)
        rgb = TF.to_tensor(crop)
        L_norm, ab_norm = rgb_to_lab_norm(rgb.unsqueeze(0))
        return {"L": L_norm[0], "ab": ab_norm[0], "rgb": rgb, "index": index}


def collate_skip_none(items: list):
    """default_collate over the items that were not skipped, plus "skipped": how many were dropped.

    "skipped" is a 0-dim tensor like every other entry, so a batch moves to a device with one loop over its
    values. When every item was skipped the batch holds "skipped" alone (see `has_images`), so the count
    still reaches the training loop.
    """
    kept = [item for item in items if item is not None]
    if not kept:
        return {"skipped": torch.tensor(len(items))}
    batch = default_collate(kept)
    batch["skipped"] = torch.tensor(len(items) - len(kept))
    return batch


def has_images(batch: dict) -> bool:
    """False for a batch whose every image was unreadable (collate_skip_none left only its count)."""
    return "L" in batch

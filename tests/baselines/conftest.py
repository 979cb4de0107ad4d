"""Fixtures for the baseline and comparison tests: tiny Koalarization models and trained tiny runs."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorization.config import TrainConfig
from colorization.models import create_model
from colorization.split import make_split
from colorization.train import train
from tests.colorization.conftest import write_color_images

# timm's 0.5M-parameter test classifier (160x160 input, 1000 logits, mean = std = 0.5) stands in for
# Inception-ResNet-v2 where a test exercises the model around the backbone rather than the backbone itself;
# test_koalarization.py builds the real inception_resnet_v2 architecture where that matters.
TINY_BACKBONE = "test_resnet"
TINY = {"irv2_weights": "none", "width": 0.125, "irv2_model": TINY_BACKBONE}


def tiny_koalarization(**overrides):
    """A Koalarization model with the TINY options, any of them overridden."""
    return create_model("koalarization", **{**TINY, **overrides})


def write_duotone_images(folder, count, *, size=(48, 40)):
    """PNGs whose colour is a function of lightness (dark blue to light orange over a smooth random field).

    A tiny model can learn this mapping in a few dozen steps, so a falling loss shows learning rather than
    the drift towards the mean colour that random colours would allow at best.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dark, light = np.array([20.0, 40.0, 160.0]), np.array([255.0, 170.0, 40.0])
    for index in range(count):
        field = np.random.default_rng(index).integers(0, 256, size=(3, 3), dtype=np.uint8)
        t = np.asarray(Image.fromarray(field).resize(size, Image.Resampling.BICUBIC))[..., None] / 255.0
        rgb = (1 - t) * dark + t * light
        Image.fromarray(rgb.round().astype(np.uint8)).save(folder / f"duo{index:02d}.png")


def train_tiny(split_dir, out, model, model_opts, **options):
    """Train a tiny run of `model` on split_dir into out (Adam, batches of 4, 32-pixel crops, random VGG; 1 epoch
    at lr 1e-3 unless options say otherwise) and return train()'s result."""
    config = TrainConfig(
        model=model,
        split=split_dir,
        out=out,
        optimizer="adam",
        batch_size=4,
        image_size=32,
        workers=0,
        vgg_weights="none",
        model_opts=model_opts,
        progress=False,
        **{"epochs": 1, "lr": 1e-3, **options},
    )
    return train(config)


@pytest.fixture(scope="package")
def compare_split(tmp_path_factory):
    """A split of 7 coloured 48x40 PNGs: 4 for training, 3 held out."""
    root = tmp_path_factory.mktemp("compare")
    write_color_images(root / "images", 7)
    make_split(root / "images", root / "split", holdout=3, seed=0)
    return root / "split"


@pytest.fixture(scope="package")
def trained_runs(compare_split, tmp_path_factory):
    """Two freshly trained tiny runs on compare_split: the paper's network and Koalarization."""
    root = tmp_path_factory.mktemp("runs")
    train_tiny(compare_split, root / "perceptual", "perceptual", {"width": 0.125}, max_steps=2)
    train_tiny(compare_split, root / "koalarization", "koalarization", TINY, max_steps=2)
    return {"perceptual": root / "perceptual", "koalarization": root / "koalarization"}

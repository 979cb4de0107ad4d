"""Shared fixtures for the colorization tests: small synthetic colour photos, a split of them and a tiny trained
run; and the helpers write_color_images and read_log. (One torch thread for every test: tests/conftest.py.)"""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorization.split import make_split


def write_color_images(folder, count: int, *, size=(48, 40), prefix="img", seed=0) -> list[Path]:
    """Write `count` distinct, smoothly coloured RGB PNGs (width x height = size) named {prefix}{i:02d}.png."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        # A random 3x3 colour grid upsampled bicubically: smooth regions of distinct colours and luminances.
        grid = Image.fromarray(rng.integers(0, 256, size=(3, 3, 3), dtype=np.uint8))
        path = folder / f"{prefix}{index:02d}.png"
        grid.resize(size, Image.Resampling.BICUBIC).save(path)
        paths.append(path)
    return paths


def read_log(run_dir) -> list[dict]:
    """A run folder's training log (colorization.train.LOG_NAME), one dict of strings per row."""
    from colorization.train import LOG_NAME

    with (Path(run_dir) / LOG_NAME).open() as file:
        return list(csv.DictReader(file))


@pytest.fixture
def make_images():
    """Factory: make_images(folder, count, size=(48, 40), prefix="img", seed=0) -> list of PNG paths."""
    return write_color_images


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """A folder of 10 coloured 48x40 PNGs: img00..img07 and nested/sub00, nested/sub01."""
    folder = tmp_path / "images"
    write_color_images(folder, 8)
    write_color_images(folder / "nested", 2, prefix="sub", seed=1)
    return folder


@pytest.fixture
def split_dir(image_dir, tmp_path) -> Path:
    """A split of image_dir: 3 held-out images, 7 for training, seed 0."""
    out = tmp_path / "split"
    make_split(image_dir, out, holdout=3, seed=0)
    return out


# --- Fixtures for the training, inference and command-line tests (added by the training helper). ---

# Small enough for two shared CPU cores: 32-pixel crops, a 1/8-width network, a randomly initialized VGG.
TINY_TRAINING = dict(
    image_size=32, batch_size=4, workers=0, vgg_weights="none", model_opts={"width": 0.125}, progress=False
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """A "perceptual" run trained for 2 steps on 10 images of three non-square sizes (48x40, 37x53, 61x33),
    4 of them held out: {"split": split dir, "run": run dir, "heldout": held-out paths}."""
    from colorization.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_run")
    write_color_images(root / "images", 6, size=(48, 40))
    write_color_images(root / "images", 2, size=(37, 53), prefix="tall", seed=1)
    write_color_images(root / "images", 2, size=(61, 33), prefix="wide", seed=2)
    split = make_split(root / "images", root / "split", holdout=4, seed=0)
    run = root / "run"
    train(TrainConfig(model="perceptual", split=root / "split", out=run, max_steps=2, lr=1e-3, **TINY_TRAINING))
    return {"split": root / "split", "run": run, "heldout": split.heldout}

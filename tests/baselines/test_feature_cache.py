"""Koalarization's embedding cache (`--cache-features`) and its smaller backbone input (`backbone_size`).

The cache must give the very training an uncached run gives, whatever the augmentation: an embedding is reused
only for the identical pixels it was computed from.
"""

import pytest
import torch

import colorization.train
from baselines.koalarization import pixels_key
from colorization.checkpoint import LAST_NAME, load_checkpoint
from colorization.config import ConfigError, TrainConfig
from colorization.models import create_model
from colorization.split import make_split
from colorization.train import train
from tests.baselines.conftest import TINY, tiny_koalarization, write_duotone_images


def count_backbone_images(model):
    """A list that grows by the batch size of every backbone pass, and one of every model input."""
    embedded, inputs = [], []
    model.embedder.backbone.register_forward_hook(lambda module, args, output: embedded.append(len(args[0])))
    model.register_forward_pre_hook(lambda module, args: inputs.extend(args[0].detach().clone()))
    return embedded, inputs


def distinct(images):
    return {(tuple(image.shape), image.numpy().tobytes()) for image in images}


def test_an_embedding_is_reused_only_for_identical_pixels():
    model = tiny_koalarization().eval()
    model.cache_embeddings()
    embedded, _ = count_backbone_images(model)
    L = torch.rand(4, 1, 32, 32)
    flipped_two = torch.cat([L[:2], L[2:].flip(-1)])
    shifted = torch.roll(L, 1, dims=-1)
    nudged = L.clone()
    nudged[0, 0, 0, 0] += 1e-6  # one pixel, one float step away

    with torch.no_grad():
        first = model(L)
        again = model(L)
        assert embedded == [4] and torch.equal(first, again)
        with_flips = model(flipped_two)
        assert embedded == [4, 2]  # only the flipped images are new
        model(shifted)
        model(nudged)
        assert embedded == [4, 2, 4, 1]

        # Every answer is the uncached model's answer for that input.
        model.embedder.cache = None
        for inputs, cached in ((L, first), (flipped_two, with_flips)):
            assert torch.allclose(model(inputs), cached, atol=1e-6)


def test_pixel_keys_tell_shape_dtype_and_content_apart():
    image = torch.zeros(1, 4, 6)
    assert pixels_key(image) == pixels_key(image.clone())
    assert pixels_key(image) != pixels_key(image.reshape(1, 6, 4))
    assert pixels_key(image) != pixels_key(image.double())
    assert pixels_key(image) != pixels_key(image + 1e-7)


def train_twice(split, tmp_path, monkeypatch, **options):
    """The same run without and with the cache. Checks that every embedding the cached run used is the one the
    backbone gives for that very input, and that the losses agree; returns (backbone images, model inputs)."""
    settings = dict(model="koalarization", split=split, optimizer="adam", batch_size=4, image_size=32, workers=0,
                    model_opts=TINY, progress=False, lr=1e-3, **options)  # fmt: skip
    plain = train(TrainConfig(out=tmp_path / "plain", **settings))

    made = {}

    def create_and_watch(*args, **kwargs):
        model = made["model"] = create_model(*args, **kwargs)
        made["embedded"], made["inputs"] = count_backbone_images(model)
        made["used"] = []
        model.embedder.register_forward_hook(lambda module, args, output: made["used"].append((args[0], output)))
        return model

    monkeypatch.setattr(colorization.train, "create_model", create_and_watch)
    cached = train(TrainConfig(out=tmp_path / "cached", cache_features=True, **settings))
    assert load_checkpoint(tmp_path / "cached" / LAST_NAME)["config"]["cache_features"]
    embedded = sum(made["embedded"])  # before the check below adds passes of its own

    # Flipping or shifting an image moves its embedding by about 1e-2; batch composition by about 1e-8.
    with torch.no_grad():
        for L, used in made["used"]:
            assert torch.allclose(used, made["model"].embedder.embed(L), atol=1e-5)
    assert cached.losses == pytest.approx(plain.losses, abs=1e-6)
    return embedded, made["inputs"]


def test_random_crops_and_flips_get_a_fresh_embedding_for_every_new_input(tmp_path, monkeypatch):
    # 48x40 photos at --image-size 32: resized to 38x32, then a random 32x32 crop and a random flip.
    write_duotone_images(tmp_path / "images", 10, size=(48, 40))
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    embedded, inputs = train_twice(tmp_path / "split", tmp_path, monkeypatch, epochs=4)

    # One backbone pass per distinct input (training crops and held-out centre crops). The crops did vary:
    # there are more distinct inputs than 8 images x 2 flips + 2 held out.
    assert embedded == len(distinct(inputs)) > 8 * 2 + 2


def test_fixed_square_crops_are_embedded_once_per_image_and_flip(tmp_path, monkeypatch):
    # 32x32 photos at --image-size 32: the crop is the whole image, only the flip varies, as in the demo.
    write_duotone_images(tmp_path / "images", 10, size=(32, 32))
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    embedded, inputs = train_twice(tmp_path / "split", tmp_path, monkeypatch, epochs=6)

    assert len(inputs) == 6 * 8 + 6 * 2  # training and held-out inputs of 6 epochs
    assert embedded == len(distinct(inputs)) <= 8 * 2 + 2


def test_cache_features_needs_a_model_with_frozen_features(tmp_path):
    write_duotone_images(tmp_path / "images", 4)
    make_split(tmp_path / "images", tmp_path / "split", holdout=1, seed=0)
    config = TrainConfig(model="perceptual", split=tmp_path / "split", out=tmp_path / "run", max_steps=1,
                         image_size=32, workers=0, vgg_weights="none", cache_features=True, progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="--cache-features"):
        train(config)


def test_backbone_size_sets_the_square_the_backbone_sees_and_is_kept_in_checkpoints(tmp_path):
    model = tiny_koalarization(backbone_size=64).eval()
    seen = []
    model.embedder.backbone.register_forward_hook(lambda module, args, output: seen.append(args[0].shape))
    with torch.no_grad():
        assert model(torch.rand(2, 1, 40, 56)).shape == (2, 2, 40, 56)
    assert seen == [(2, 3, 64, 64)]
    assert tiny_koalarization().embedder.input_size == (160, 160)  # test_resnet's native input

    write_duotone_images(tmp_path / "images", 4)
    make_split(tmp_path / "images", tmp_path / "split", holdout=1, seed=0)
    train(TrainConfig(model="koalarization", split=tmp_path / "split", out=tmp_path / "run", max_steps=1,
                      image_size=32, workers=0, model_opts={**TINY, "backbone_size": 64}, progress=False))  # fmt: skip
    assert load_checkpoint(tmp_path / "run" / LAST_NAME)["model_kwargs"]["backbone_size"] == 64

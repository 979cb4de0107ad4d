import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from colorization.inference import colorize_paths, load_model
from colorization.plots import plot_activations
from colorization.train import LAST_NAME, TrainConfig, load_checkpoint, train
from tests.colorization.conftest import TINY_TRAINING, write_color_images


def chroma(path):
    return np.hypot(*np.moveaxis(rgb2lab(np.asarray(Image.open(path)))[..., 1:], -1, 0))


def test_colorize_writes_one_full_size_png_per_heldout_image(tiny_run, tmp_path):
    outputs = colorize_paths(tiny_run["run"] / LAST_NAME, tiny_run["heldout"], tmp_path / "out", batch_size=3)

    assert outputs == [tmp_path / "out" / f"{path.stem}.png" for path in tiny_run["heldout"]]
    assert sorted(tmp_path.joinpath("out").iterdir()) == sorted(outputs)
    for source, output in zip(tiny_run["heldout"], outputs):
        with Image.open(source) as original, Image.open(output) as colorized:
            assert colorized.format == "PNG" and colorized.mode == "RGB"
            assert colorized.size == original.size


def test_grayscale_photo_in_colour_out_with_the_photos_own_lightness(tiny_run, tmp_path):
    color = write_color_images(tmp_path, 1, size=(45, 31), prefix="photo")[0]
    gray = tmp_path / "gray.png"
    Image.open(color).convert("L").save(gray)

    [output] = colorize_paths(tiny_run["run"] / LAST_NAME, [gray], tmp_path / "out")

    pixels = np.asarray(Image.open(output))
    assert pixels.shape == (31, 45, 3)
    assert chroma(output).mean() > 1.0  # the untrained-ish model's colours, but colours
    gray_lightness = rgb2lab(np.asarray(Image.open(gray).convert("RGB")))[..., 0]
    assert np.abs(rgb2lab(pixels)[..., 0] - gray_lightness).mean() < 1.0


def test_saturation_scales_chroma_and_skip_existing_keeps_outputs(tiny_run, tmp_path):
    checkpoint = tiny_run["run"] / LAST_NAME
    plain = colorize_paths(checkpoint, tiny_run["heldout"][:1], tmp_path / "plain")[0]
    boosted = colorize_paths(checkpoint, tiny_run["heldout"][:1], tmp_path / "boosted", saturation=1.4)[0]
    ratio = chroma(boosted).mean() / chroma(plain).mean()
    assert 1.3 < ratio < 1.45  # 1.4 up to 8-bit rounding and gamut clipping

    before = boosted.read_bytes()
    again = colorize_paths(checkpoint, tiny_run["heldout"][:1], tmp_path / "boosted", skip_existing=True)
    assert again == [boosted] and boosted.read_bytes() == before


def test_inputs_sharing_a_stem_are_refused(tiny_run, tmp_path):
    first = write_color_images(tmp_path / "a", 1)[0]
    second = write_color_images(tmp_path / "b", 1)[0]
    with pytest.raises(ValueError, match="img00"):
        colorize_paths(tiny_run["run"] / LAST_NAME, [first, second], tmp_path / "out")


def test_load_model_restores_the_trained_weights(tiny_run):
    model, ckpt = load_model(tiny_run["run"] / LAST_NAME, "cpu")
    assert not model.training and ckpt["step"] == 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["model_state"][key])


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(tmp_path / "nope.pt", "cpu")


def test_koalarization_runs_through_the_same_training_and_inference(tiny_run, tmp_path):
    model_opts = {"irv2_weights": "none", "width": 0.125, "irv2_model": "test_resnet"}
    options = dict(TINY_TRAINING, model_opts=model_opts)
    train(TrainConfig(model="koalarization", split=tiny_run["split"], out=tmp_path / "run", max_steps=1, **options))
    assert load_checkpoint(tmp_path / "run" / LAST_NAME)["model_name"] == "koalarization"

    outputs = colorize_paths(tmp_path / "run" / LAST_NAME, tiny_run["heldout"][:2], tmp_path / "out")
    assert [Image.open(path).size for path in outputs] == [Image.open(path).size for path in tiny_run["heldout"][:2]]


def test_rgb_output_variant_gives_its_colours_on_the_inputs_own_lightness(tiny_run, tmp_path):
    options = dict(TINY_TRAINING, model_opts={"width": 0.125, "output": "rgb"}, loss="mse")
    train(TrainConfig(model="perceptual", split=tiny_run["split"], out=tmp_path / "run", max_steps=1, **options))

    source = tiny_run["heldout"][0]
    [output] = colorize_paths(tmp_path / "run" / LAST_NAME, [source], tmp_path / "out")
    lightness = rgb2lab(np.asarray(Image.open(output)))[..., 0]
    assert np.abs(lightness - rgb2lab(np.asarray(Image.open(source)))[..., 0]).mean() < 1.0
    assert chroma(output).mean() > 1.0


def test_activation_maps_of_an_encoder_layer(tiny_run, tmp_path):
    out = plot_activations(tiny_run["run"] / LAST_NAME, tiny_run["heldout"][0], 5, tmp_path / "act.png", device="cpu")
    with Image.open(out) as figure:
        assert figure.size[0] > 200 and figure.size[1] > 200
    with pytest.raises(ValueError, match="between 1 and 10"):
        plot_activations(tiny_run["run"] / LAST_NAME, tiny_run["heldout"][0], 11, tmp_path / "x.png", device="cpu")

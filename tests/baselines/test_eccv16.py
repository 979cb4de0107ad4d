"""Zhang et al.'s ECCV 2016 colorization network (baselines/eccv16/): layout, decoding, bins, loss, weights."""

import io
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color
from torch.utils.flop_counter import FlopCounterMode

from baselines.eccv16 import bins, convert
from baselines.eccv16.loss import RebalancedCrossEntropy
from baselines.eccv16.model import ECCV16, bins_for_model_opts
from colorization.checkpoint import load_checkpoint
from colorization.config import TrainConfig
from colorization.errors import ConfigError
from colorization.inference import colorize_paths, load_model, predict_ab
from colorization.lab import AB_SCALE
from colorization.losses import build_loss, loss_from_config
from colorization.models import create_model, list_models, model_module, recipe
from colorization.split import make_split
from colorization.train import train
from tests.colorization.conftest import write_color_images

REPO = Path(__file__).resolve().parents[2]
TINY_WIDTH = 0.125

# The authors' port (colorizers/eccv16.py): per block, the Sequential indices of its convolutions and of its
# batch norm; model8 starts with the transposed convolution and ends with the 1x1 class layer.
PORT_LAYOUT = {
    "model1": ([0, 2], 4), "model2": ([0, 2], 4), "model3": ([0, 2, 4], 6), "model4": ([0, 2, 4], 6),
    "model5": ([0, 2, 4], 6), "model6": ([0, 2, 4], 6), "model7": ([0, 2, 4], 6), "model8": ([0, 2, 4, 6], None),
}  # fmt: skip


def port_keys() -> list[str]:
    keys = []
    for block, (convolutions, norm) in PORT_LAYOUT.items():
        for index in convolutions:
            keys += [f"{block}.{index}.weight", f"{block}.{index}.bias"]
        if norm is not None:
            keys += [f"{block}.{norm}.{name}" for name in
                     ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]  # fmt: skip
    return keys + ["model_out.weight"]


def tiny_model(**overrides):
    return create_model("eccv16", **{"width": TINY_WIDTH, **overrides}).eval()


def released_layout_file(path, *, seed=1, width=TINY_WIDTH, permute=False) -> tuple[Path, ECCV16]:
    """Save a randomly initialized model's state_dict in the released layout (no bin_centres) to path.

    With permute, the bins are stored in reverse order (class layer rows and model_out columns alike), as a
    release whose bins are ordered differently from ours would be.
    """
    torch.manual_seed(seed)
    model = ECCV16(width=width).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that loading them is seen
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    state = {key: value.clone() for key, value in model.state_dict().items() if key != "bin_centres"}
    if permute:
        order = torch.arange(model.num_bins - 1, -1, -1)
        for key in ("model8.6.weight", "model8.6.bias"):
            state[key] = state[key][order]
        state["model_out.weight"] = state["model_out.weight"][:, order]
    torch.save(state, path)
    return Path(path), model


def nearest_bin(centres, ab):
    return int(torch.cdist(torch.tensor([ab], dtype=torch.float32), centres).argmin())


# ------------------------------------------------------------------------------------------- registry, layout


def test_registered_with_zhangs_recipe():
    assert "eccv16" in list_models()
    assert model_module("eccv16") == "baselines.eccv16"
    published = recipe("eccv16")
    assert (published.loss, published.optimizer, published.batch_size, published.image_size) == (
        "rebalanced_ce", "adam", 40, 176)  # fmt: skip
    assert published.optimizer_options == {"betas": [0.9, 0.99], "weight_decay": 1e-3}
    assert published.schedule.startswith("6:3e-5,")
    settings = [setting for setting, note in published.assumptions]
    assert {"schedule", "image_size", "bins", "loss", "decoding"} <= set(settings)
    assert all(note for _, note in published.assumptions)
    assert tiny_model().output_space == "ab_bins"


def test_published_layout_key_names_and_cost():
    # Width 1.0 with the released model's 313 classes, on the meta device: no memory, no arithmetic.
    with torch.device("meta"):
        model = ECCV16(num_bins=313)
    state = model.state_dict()
    assert [key for key in state if key != "bin_centres"] == port_keys()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    assert shapes["model1.0.weight"] == (64, 1, 3, 3)
    assert shapes["model4.0.weight"] == (512, 256, 3, 3)
    assert shapes["model8.0.weight"] == (512, 256, 4, 4)  # ConvTranspose2d: (in, out, kH, kW)
    assert shapes["model8.6.weight"] == (313, 256, 1, 1)
    assert shapes["model_out.weight"] == (2, 313, 1, 1)
    assert [model.model1[2].stride, model.model2[2].stride, model.model3[4].stride] == [(2, 2)] * 3
    assert model.model4[0].stride == (1, 1)
    assert all(model.model5[i].dilation == (2, 2) and model.model5[i].padding == (2, 2) for i in (0, 2, 4))
    assert model.model6[4].dilation == (2, 2) and model.model7[0].dilation == (1, 1)
    assert model.model8[0].stride == (2, 2) and model.model8[0].padding == (1, 1)
    assert model.model_out.bias is None
    assert sum(parameter.numel() for parameter in model.parameters()) == 32_236_011

    L = torch.empty(1, 1, 256, 256, device="meta")
    with FlopCounterMode(display=False) as counter:
        model.to_ab(model(L), (256, 256))
    assert counter.get_total_flops() / 1e9 == pytest.approx(83.55, abs=0.01)  # the module docstring's figure


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (40, 24), (5, 3), (1, 1)])
def test_logits_at_a_quarter_and_ab_at_the_input_size(size):
    model = tiny_model()
    L = torch.rand(2, 1, *size)
    with torch.no_grad():
        logits = model(L)
    assert logits.shape == (2, bins.BIN_COUNT, math.ceil(size[0] / 4), math.ceil(size[1] / 4))
    ab = predict_ab(model, L)
    assert ab.shape == (2, 2, *size)
    assert ab.abs().max() < 110 / AB_SCALE  # a mean of bin centres stays inside their range


def test_network_sees_the_authors_l_normalization():
    model = tiny_model()
    seen = []
    model.model1[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    L_norm = torch.rand(1, 1, 16, 24)
    with torch.no_grad():
        model(L_norm)
    assert torch.allclose(seen[0], (L_norm * 100 - 50) / 100, atol=1e-6)


def test_batch_norm_affine_and_bin_centres_are_not_trained():
    model = tiny_model()
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert "model_out.weight" in frozen and "model1.4.weight" in frozen and "model7.6.bias" in frozen
    assert "model1.0.weight" not in frozen and "model8.6.weight" not in frozen


# ------------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("temperature", [0.38, 1.0])
def test_a_one_hot_logit_decodes_to_its_bins_colour(temperature):
    model = tiny_model(temperature=temperature)
    centres = model.bin_centres
    for q in (0, nearest_bin(centres, (0.0, 0.0)), nearest_bin(centres, (60.0, -40.0)), len(centres) - 1):
        logits = torch.zeros(1, len(centres), 3, 5)
        logits[:, q] = 60.0
        ab = model.to_ab(logits, (10, 19))
        assert ab.shape == (1, 2, 10, 19)
        expected = (centres[q] / AB_SCALE).view(1, 2, 1, 1).expand_as(ab)
        assert torch.allclose(ab, expected, atol=1e-5)


def test_annealing_moves_the_mean_toward_the_mode():
    model = tiny_model()
    centres = model.bin_centres
    mode, other = nearest_bin(centres, (50.0, 50.0)), nearest_bin(centres, (-40.0, -30.0))
    logits = torch.full((1, len(centres), 1, 1), -1e4)
    logits[0, mode], logits[0, other] = math.log(0.6), math.log(0.4)

    def decoded(temperature):
        model.temperature = temperature
        return model.to_ab(logits, (1, 1))[0, :, 0, 0] * AB_SCALE

    mean, annealed, nearly_mode = decoded(1.0), decoded(0.38), decoded(0.01)
    assert torch.allclose(mean, 0.6 * centres[mode] + 0.4 * centres[other], atol=1e-3)
    # 0.6^(1/T) : 0.4^(1/T) at T = 0.38: the mode's share grows from 0.6 to about 0.74.
    share = 0.6 ** (1 / 0.38) / (0.6 ** (1 / 0.38) + 0.4 ** (1 / 0.38))
    assert torch.allclose(annealed, share * centres[mode] + (1 - share) * centres[other], atol=1e-3)
    distance = lambda ab: float((ab - centres[mode]).norm())  # noqa: E731
    assert distance(nearly_mode) < 1e-3 < distance(annealed) < distance(mean)


def test_temperature_one_decodes_as_the_authors_port():
    model = tiny_model(temperature=1.0)
    logits = torch.randn(2, model.num_bins, 4, 6)
    with torch.no_grad():
        # The port: softmax, model_out, x110, x4 bilinear upsampling (ab in ab units; ours is ab / 128).
        port = torch.nn.functional.interpolate(
            model.model_out(torch.softmax(logits, dim=1)) * 110, scale_factor=4, mode="bilinear"
        )
    assert torch.allclose(model.to_ab(logits, (16, 24)) * AB_SCALE, port, atol=1e-4)


# ------------------------------------------------------------------------------------------- bins


def test_bins_are_the_grid_points_around_the_srgb_gamut():
    centres = bins.ab_bins()
    assert centres.shape == (bins.BIN_COUNT, 2) == (309, 2)
    assert torch.equal(centres, centres.round()) and torch.all(centres % 10 == 0)
    as_tuples = [tuple(point) for point in centres.tolist()]
    assert as_tuples == sorted(set(as_tuples))  # unique, sorted by a then b
    assert (0.0, 0.0) in as_tuples
    assert centres.min(0).values.tolist() == [-90, -110] and centres.max(0).values.tolist() == [100, 100]

    # Independently of colorization.lab: skimage's conversion of the RGB cube's faces and of random colours.
    steps = np.linspace(0.0, 1.0, 128)
    u, v = (grid.ravel() for grid in np.meshgrid(steps, steps, indexing="ij"))
    faces = []
    for axis in range(3):
        others = [index for index in range(3) if index != axis]
        for value in (0.0, 1.0):
            face = np.empty((u.size, 3))
            face[:, axis], face[:, others[0]], face[:, others[1]] = value, u, v
            faces.append(face)
    rgb = np.concatenate(faces + [np.random.default_rng(0).random((20_000, 3))])
    ab = torch.from_numpy(color.rgb2lab(rgb[None])[0, :, 1:]).float()
    chebyshev = torch.cdist(centres, ab, p=float("inf"))
    # Every bin is within one grid step (in a and in b) of an sRGB colour ...
    assert chebyshev.min(dim=1).values.max() < 10.5
    # ... and every sRGB colour has all the grid points that close to it among the bins.
    grid = torch.stack(torch.meshgrid(torch.arange(-130.0, 131, 10), torch.arange(-130.0, 131, 10), indexing="ij"),
                       dim=-1).reshape(-1, 2)  # fmt: skip
    near = torch.cdist(grid, ab, p=float("inf")).min(dim=1).values < 9.9
    assert {tuple(point) for point in grid[near].tolist()} <= set(as_tuples)


def test_soft_encoding_picks_the_nearest_bins_with_gaussian_weights():
    centres = bins.ab_bins()
    ab = torch.rand(500, 2) * torch.tensor([180.0, 190.0]) - torch.tensor([85.0, 105.0])
    indices, weights = bins.soft_encode(ab.view(20, 25, 2), centres)
    assert indices.shape == weights.shape == (20, 25, 5)
    indices, weights = indices.reshape(-1, 5), weights.reshape(-1, 5)
    assert torch.allclose(weights.sum(dim=1), torch.ones(500), atol=1e-6)
    distances = torch.cdist(ab, centres)
    chosen = distances.gather(1, indices)
    assert torch.allclose(chosen, distances.sort(dim=1).values[:, :5], atol=1e-4)  # the 5 nearest, nearest first
    expected = torch.softmax(-chosen.square() / (2 * 5.0**2), dim=1)
    assert torch.allclose(weights, expected, rtol=1e-4, atol=1e-6)

    # A colour on a bin centre: that bin first, its four grid neighbours (distance 10) at exp(-2) of its weight.
    q = nearest_bin(centres, (20.0, 30.0))
    indices, weights = bins.soft_encode(centres[q].view(1, 2), centres)
    assert int(indices[0, 0]) == q
    assert torch.allclose(weights[0, 1:5] / weights[0, 0], torch.full((4,), math.exp(-2.0)), atol=1e-5)


def test_rebalancing_weights_have_expectation_one_and_favour_rare_colours():
    centres = bins.ab_bins()
    generator = torch.Generator().manual_seed(0)
    prior = torch.rand(len(centres), generator=generator) ** 4
    prior[torch.rand(len(centres), generator=generator) < 0.5] = 0  # many colours never seen
    prior = prior / prior.sum()
    weights, smoothed = bins.rebalancing_weights(prior, centres)
    assert float(smoothed.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float((smoothed * weights).sum()) == pytest.approx(1.0, abs=1e-5)
    assert torch.all(weights > 0)
    rarer = smoothed[:, None] < smoothed[None, :]
    assert torch.all((weights[:, None] > weights[None, :])[rarer])  # rarer bins weigh more
    assert weights.max() <= 2 * len(centres)  # the bound the uniform mix sets (see estimate_prior)
    # lambda = 1 (all uniform): no rebalancing at all.
    uniform, _ = bins.rebalancing_weights(prior, centres, mix=1.0)
    assert torch.allclose(uniform, torch.ones(len(centres)), atol=1e-5)
    # Smoothing spreads a single bin's mass over its neighbours, most of it staying put.
    single = torch.zeros(len(centres))
    q = nearest_bin(centres, (0.0, 0.0))
    single[q] = 1.0
    spread = bins.smooth_prior(single, centres)
    assert int(spread.argmax()) == q and 0.2 < float(spread[q]) < 1.0


# ------------------------------------------------------------------------------------------- loss


def uniform_batch(ab_values, size=16):
    """A batch of images each of one colour (ab in ab units)."""
    ab = torch.tensor(ab_values, dtype=torch.float32).view(-1, 2, 1, 1).expand(-1, 2, size, size) / AB_SCALE
    return {"L": torch.full((len(ab_values), 1, size, size), 0.5), "ab": ab.contiguous()}


def test_loss_follows_the_calling_convention_and_rewards_the_right_bins():
    loss_fn = build_loss("rebalanced_ce")
    centres = loss_fn.bin_centres
    batch = uniform_batch([(23.0, -41.0), (-30.0, 62.0)])
    indices, weights = bins.soft_encode(batch["ab"][:, :, 0, 0] * AB_SCALE, centres)
    target = torch.zeros(2, len(centres)).scatter_(1, indices, weights)
    matching = (target + 1e-6).log()[:, :, None, None].expand(-1, -1, 4, 4)
    random = torch.randn(2, len(centres), 4, 4)
    assert float(loss_fn(matching, batch, "ab_bins")) < 0.5 * float(loss_fn(random, batch, "ab_bins"))
    # With the soft target's own log-probabilities the loss is the targets' entropy.
    entropy = -(target * (target + 1e-6).log()).sum(dim=1).mean()
    assert float(loss_fn(matching, batch, "ab_bins")) == pytest.approx(float(entropy), rel=1e-3)

    model = tiny_model().train()
    loss = loss_fn(model(torch.rand(2, 1, 16, 16)), batch, "ab_bins")
    loss.backward()
    assert torch.isfinite(loss) and model.model1[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="ab_bins"):
        loss_fn(random, batch, "ab")
    with pytest.raises(ValueError, match="do not fit"):
        loss_fn(torch.randn(2, len(centres), 5, 4), batch, "ab_bins")


def test_targets_are_subsampled_every_fourth_pixel():
    loss_fn = build_loss("rebalanced_ce")
    centres = loss_fn.bin_centres
    batch = uniform_batch([(0.0, 60.0)], size=13)
    indices, weights = bins.soft_encode(torch.tensor([[0.0, 60.0]]), centres)
    target = torch.zeros(1, len(centres)).scatter_(1, indices, weights)
    logits = (target + 1e-6).log()[:, :, None, None].expand(-1, -1, 4, 4)  # 13 -> ceil(13 / 4) = 4
    entropy = float(-(target * (target + 1e-6).log()).sum())
    batch["ab"] = batch["ab"].clone()
    batch["ab"][..., 1::4, :] = 0.4  # rows the subsampling skips: another colour there changes nothing
    assert float(loss_fn(logits, batch, "ab_bins")) == pytest.approx(entropy, rel=1e-3)
    batch["ab"][..., 4, :] = 0.4  # a row it keeps
    assert float(loss_fn(logits, batch, "ab_bins")) > 2 * entropy


def test_gray_images_weigh_nothing_and_rare_colours_weigh_their_class_weight():
    centres = bins.ab_bins()
    prior = torch.zeros(len(centres))
    common, rare = nearest_bin(centres, (0.0, 10.0)), nearest_bin(centres, (-60.0, 40.0))
    prior[common] = 0.99
    prior[rare] = 0.01
    rebalanced, plain = build_loss("rebalanced_ce", prior=prior), build_loss("rebalanced_ce")
    logits = torch.randn(1, len(centres), 4, 4)
    gray = uniform_batch([(1.0, -2.0)])
    assert float(rebalanced(logits, gray, "ab_bins")) == 0.0 == float(plain(logits, gray, "ab_bins"))
    for q in (common, rare):
        batch = uniform_batch([tuple(centres[q].tolist())])
        ratio = float(rebalanced(logits, batch, "ab_bins")) / float(plain(logits, batch, "ab_bins"))
        assert ratio == pytest.approx(float(rebalanced.class_weights[q]), rel=1e-5)
    assert rebalanced.class_weights[rare] > 1 > rebalanced.class_weights[common]


def test_prior_comes_from_the_runs_training_images(tmp_path):
    paths = write_color_images(tmp_path / "images", 7)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    config = TrainConfig(model="eccv16", split=tmp_path / "split", out=tmp_path / "run", image_size=32).resolve()
    loss_fn = loss_from_config(config)
    assert isinstance(loss_fn, RebalancedCrossEntropy)
    assert torch.equal(loss_fn.bin_centres, bins.ab_bins())
    assert float((loss_fn.smoothed_prior * loss_fn.class_weights).sum()) == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(loss_fn.class_weights, torch.ones_like(loss_fn.class_weights))

    centres = bins.ab_bins()
    prior = bins.estimate_prior(paths, centres)
    assert float(prior.sum()) == pytest.approx(1.0) and int((prior > 0).sum()) > 5
    # A seeded sample: the same images for the same seed, a different one otherwise.
    sampled = [bins.estimate_prior(paths, centres, seed=seed, max_images=2) for seed in (0, 0, 1)]
    assert torch.equal(sampled[0], sampled[1]) and not torch.equal(sampled[0], sampled[2])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert torch.equal(bins.estimate_prior(paths + [tmp_path / "broken.png"], centres), prior)
    with pytest.raises(ValueError, match="no readable colour image"):
        bins.estimate_prior([tmp_path / "broken.png"], centres)


# ------------------------------------------------------------------------------------------- released weights


def test_a_state_dict_in_the_released_layout_loads_and_gives_identical_outputs(tmp_path):
    path, reference = released_layout_file(tmp_path / "release.pth")
    loaded = create_model("eccv16", weights=str(path), width=TINY_WIDTH).eval()
    fresh = tiny_model()  # seeded differently: equality below means the file was loaded
    assert not torch.equal(fresh.model1[0].weight, reference.model1[0].weight)
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    L = torch.rand(2, 1, 37, 29)
    with torch.no_grad():
        assert torch.equal(loaded(L), reference(L))
    assert torch.equal(predict_ab(loaded, L), predict_ab(reference, L))

    # A file saved by a torch without num_batches_tracked loads too.
    state = torch.load(path, weights_only=True)
    old = tmp_path / "old.pth"
    torch.save({key: value for key, value in state.items() if "num_batches_tracked" not in key}, old)
    assert torch.equal(predict_ab(create_model("eccv16", weights=str(old), width=TINY_WIDTH).eval(), L),
                       predict_ab(reference, L))  # fmt: skip


def test_bins_come_from_the_files_model_out_in_its_order(tmp_path):
    path, reference = released_layout_file(tmp_path / "release.pth", permute=True)
    loaded = create_model("eccv16", weights=str(path), width=TINY_WIDTH).eval()
    assert torch.equal(loaded.bin_centres, reference.bin_centres.flip(0))
    assert torch.equal(bins_for_model_opts({"weights": str(path)}), loaded.bin_centres)
    L = torch.rand(1, 1, 24, 24)
    # The same colours: classes and centres were permuted together.
    assert torch.allclose(predict_ab(loaded, L), predict_ab(reference, L), atol=1e-6)


def test_wrong_weight_files_fail_naming_the_file_and_the_problem(tmp_path):
    missing = tmp_path / "colorization_release_v2.pth"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(missing))}: no such file"):
        tiny_model(weights=str(missing))

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(ValueError, match=f"{re.escape(str(other))}: not an eccv16 state_dict.*model_out.weight"):
        tiny_model(weights=str(other))

    path, _ = released_layout_file(tmp_path / "release.pth")
    shapes = r"model1.0.weight \(8, 1, 3, 3\) != \(16, 1, 3, 3\)"
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))}: tensor shapes do not fit .* width 0.25.*{shapes}"
        r".*looks like width 0.125",
    ):
        tiny_model(weights=str(path), width=0.25)

    state = torch.load(path, weights_only=True)
    del state["model3.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    incomplete = tmp_path / "incomplete.pth"
    torch.save(state, incomplete)
    keys = r"missing \['model3.0.weight'\].*unexpected \['extra.weight'\]"
    with pytest.raises(ValueError, match=rf"{re.escape(str(incomplete))}: .*{keys}"):
        tiny_model(weights=str(incomplete))

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a torch file")
    with pytest.raises(ValueError, match=f"{re.escape(str(garbage))}: not a loadable state_dict"):
        tiny_model(weights=str(garbage))
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match=f"{re.escape(str(listed))}: expected a state_dict"):
        tiny_model(weights=str(listed))


def test_bin_centres_and_model_out_must_agree():
    model = tiny_model()
    state = model.state_dict()
    state["bin_centres"] = state["bin_centres"] + 10
    with pytest.raises(RuntimeError, match="bin_centres and model_out.weight"):
        model.load_state_dict(state)


def test_bins_of_a_checkpoint_must_be_loaded_before_decoding():
    placeholder = tiny_model(num_bins=313)
    with pytest.raises(RuntimeError, match="never loaded"):
        placeholder.to_ab(torch.zeros(1, 313, 2, 2), (8, 8))
    with pytest.raises(ConfigError, match="num_bins=313 without weights"):
        bins_for_model_opts({"num_bins": 313})


# ------------------------------------------------------------------------------------------- converter, training


def test_converted_checkpoint_colorizes_without_the_weights_file(tmp_path):
    path, reference = released_layout_file(tmp_path / "release.pth", permute=True)
    run = tmp_path / "run"
    assert convert.main(["--weights", str(path), "--out", str(run)]) == 0
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["model_name"] == "eccv16" and ckpt["model_module"] == "baselines.eccv16"
    assert ckpt["model_kwargs"] == {"width": TINY_WIDTH, "temperature": 0.38, "num_bins": 309}
    assert ckpt["step"] == 0 and "release.pth" in ckpt["note"]
    config = ckpt["config"]
    assert config["image_size"] == 256 and config["loss"] == "rebalanced_ce" and config["batch_size"] == 40
    assert config["optimizer"] == "adam" and config["optimizer_options"]["weight_decay"] == 1e-3

    path.unlink()  # model_kwargs name no file: the weights are in model_state
    model, _ = load_model(run / "last.pt", "cpu")
    L = torch.rand(1, 1, 32, 40)
    assert torch.allclose(predict_ab(model, L), predict_ab(reference, L), atol=1e-6)
    images = write_color_images(tmp_path / "photos", 2, size=(45, 31))
    outputs = colorize_paths(run / "last.pt", images, tmp_path / "colorized", image_size=32, device="cpu",
                             progress=False)  # fmt: skip
    for image, output in zip(images, outputs):
        with Image.open(output) as colorized, Image.open(image) as original:
            assert colorized.size == original.size and colorized.mode == "RGB"

    assert convert.main(["--weights", str(tmp_path / "release.pth"), "--out", str(run)]) == 1  # refuses to overwrite


def test_a_run_started_from_released_weights_loads_without_them_and_says_where_it_started(tmp_path):
    from colorization.compare import recipe_table

    path, _ = released_layout_file(tmp_path / "release.pth")
    write_color_images(tmp_path / "images", 6)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    train(TrainConfig(model="eccv16", split=tmp_path / "split", out=tmp_path / "tuned", image_size=32, batch_size=4,
                      workers=0, model_opts={"weights": str(path), "width": TINY_WIDTH}, max_steps=1,
                      progress=False))  # fmt: skip
    assert convert.main(["--weights", str(path), "--out", str(tmp_path / "released")]) == 0
    path.unlink()  # gone, as on another machine: the checkpoints hold the weights

    model, ckpt = load_model(tmp_path / "tuned" / "last.pt", "cpu")
    assert "weights" not in ckpt["model_kwargs"] and model.num_bins == 309
    checkpoints = {name: tmp_path / name / "last.pt" for name in ("tuned", "released")}
    stored = {name: load_checkpoint(path) for name, path in checkpoints.items()}
    table = recipe_table(checkpoints, stored, {}).set_index("model")
    assert table.loc["tuned", "note"] == "trained from the weights release.pth"
    assert table.loc["released", "note"].startswith("released weights release.pth (sha256 ")
    assert table.loc["released", "note"].endswith("not trained here") and table.loc["released", "steps"] == 0


def test_converter_runs_as_a_module(tmp_path):
    path, _ = released_layout_file(tmp_path / "release.pth")
    done = subprocess.run([sys.executable, "-m", "baselines.eccv16.convert", "--weights", str(path), "--out",
                           str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model_module"] == "baselines.eccv16"


def test_converter_prints_a_user_error_and_keeps_a_bugs_traceback(tmp_path, monkeypatch, capsys):
    # In this process (a second `python -m` start costs ~8 CPU-s of imports): main's exit status and stderr.
    argv = ["--weights", str(tmp_path / "nope.pth"), "--out", str(tmp_path / "run")]
    assert convert.main(argv) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nope.pth: no such file" in error

    def bug(*args, **kwargs):
        raise ValueError("a bug, not the user's input")

    monkeypatch.setattr(convert, "convert_released", bug)
    with pytest.raises(ValueError, match="a bug, not the user's input"):
        convert.main(argv)


def test_two_training_steps_from_scratch(tmp_path):
    write_color_images(tmp_path / "images", 8)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    result = train(TrainConfig(model="eccv16", split=tmp_path / "split", out=tmp_path / "run", image_size=32,
                               batch_size=4, workers=0, model_opts={"width": TINY_WIDTH}, max_steps=2,
                               progress=False))  # fmt: skip
    assert result.step == 2 and all(math.isfinite(loss) for loss in result.losses)
    assert math.isfinite(result.best_loss)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["model_kwargs"] == {"width": TINY_WIDTH, "temperature": 0.38, "num_bins": 309}
    assert ckpt["config"]["loss"] == "rebalanced_ce" and ckpt["config"]["optimizer_options"]["betas"] == [0.9, 0.99]
    assert torch.equal(ckpt["model_state"]["bin_centres"], bins.ab_bins())
    model, _ = load_model(tmp_path / "run" / "last.pt", "cpu")
    assert predict_ab(model, torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)


@pytest.mark.django_db
def test_converted_checkpoint_builds_a_study(tmp_path):
    from django.core.management import call_command

    from turing.models import Study
    from turing.stimuli.audit import audit_study

    write_color_images(tmp_path / "photos", 6, size=(48, 40))
    make_split(tmp_path / "photos", tmp_path / "split", holdout=4, seed=0)
    path, _ = released_layout_file(tmp_path / "release.pth")
    assert convert.main(["--weights", str(path), "--out", str(tmp_path / "run"), "--image-size", "32"]) == 0
    call_command("build_study", "eccv16", split=str(tmp_path / "split"), run=[f"eccv16={tmp_path / 'run'}"],
                 title="Released weights", size=24, device="cpu", n_scenes=3, trials=2, practice=0,
                 catch_trials=0, stdout=io.StringIO())  # fmt: skip
    study = Study.objects.get(slug="eccv16")
    assert study.model_names == ["eccv16"] and audit_study(study) == []
    run = study.manifest["runs"]["eccv16"]
    assert run["step"] == 0 and run["model_kwargs"]["num_bins"] == bins.BIN_COUNT
    assert run["config"]["image_size"] == 32

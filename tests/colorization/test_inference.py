import copy
import json
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from colorization import inference
from colorization.checkpoint import LAST_NAME, load_checkpoint
from colorization.inference import (
    DEFAULT_BATCH_SIZE,
    colorize_paths,
    default_batch_size,
    fold_batch_norm,
    load_model,
    model_input,
    optimize_for_inference,
    predict_ab,
)
from colorization.models import create_model
from colorization.plots import plot_activations
from colorization.train import TrainConfig, train
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


# --- Inference optimizations: batch norm folded, channels_last, per-device batch size, a loaded model reused. ---


def realistic_batch_norm(model, seed=0):
    """Give every batch norm of model statistics and an affine of its own (fresh ones are the identity, which
    folding would leave unchanged): running statistics of random inputs, where train() reaches them, else
    random ones; weight and bias random. Returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    model.train()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative averages
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 1, 40, 40, generator=generator))
    with torch.no_grad():
        for norm in norms:
            if not norm.num_batches_tracked:  # stayed in eval mode (Koalarization's frozen backbone)
                norm.running_mean.normal_(0.0, 0.1, generator=generator)
                norm.running_var.uniform_(0.5, 2.0, generator=generator)
            norm.weight.uniform_(0.75, 1.25, generator=generator)
            norm.bias.normal_(0.0, 0.1, generator=generator)
    return model.eval()


def batch_norms(model):
    return [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize("name, options, folds_all", [
    ("perceptual", {}, True),  # the paper's network at full width
    ("perceptual", {"width": 0.25, "upsample": "transposed", "downsample": "maxpool", "output": "rgb"}, True),
    ("perceptual", {"width": 0.25, "activation": "tanh", "down_layers": [4, 6]}, True),
    ("perceptual", {"width": 0.25, "batch_norm": False}, True),
    # batch norm after a ReLU cannot be folded exactly: it must be left alone, not folded wrongly
    ("eccv16", {"width": 0.125}, False),
])  # fmt: skip
def test_optimized_model_predicts_what_the_plain_eval_model_does(name, options, folds_all):
    model = realistic_batch_norm(create_model(name, **options))
    norms_before = len(batch_norms(model))
    L = torch.rand(3, 1, 37, 45, generator=torch.Generator().manual_seed(1))
    plain = predict_ab(model, L)
    assert plain.std() > 0.01  # a prediction that tells models apart, not a constant

    optimized = optimize_for_inference(copy.deepcopy(model), "cpu")

    torch.testing.assert_close(predict_ab(optimized, L), plain, atol=1e-4, rtol=0)
    if folds_all:
        assert batch_norms(optimized) == []
        assert fold_batch_norm(model) == norms_before
    else:
        assert len(batch_norms(optimized)) == norms_before > 0
    assert all(
        parameter.is_contiguous(memory_format=torch.channels_last)
        for parameter in optimized.parameters() if parameter.dim() == 4
    )  # fmt: skip


def test_koalarization_backbone_is_folded_and_its_embedding_kept():
    # The real Inception-ResNet-v2 (random weights) at a small input; its cache stays usable after folding.
    model = create_model("koalarization", irv2_weights="none", width=0.125, backbone_size=75)
    model = realistic_batch_norm(model)
    assert len(batch_norms(model.embedder.backbone)) > 200
    L = torch.rand(2, 1, 40, 48, generator=torch.Generator().manual_seed(2))
    plain_ab, plain_logits = predict_ab(model, L), model.embedder(L)

    optimized = optimize_for_inference(copy.deepcopy(model), "cpu")

    assert batch_norms(optimized) == []
    torch.testing.assert_close(optimized.embedder(L), plain_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(predict_ab(optimized, L), plain_ab, atol=1e-4, rtol=0)
    optimized.cache_embeddings()
    torch.testing.assert_close(predict_ab(optimized, L), plain_ab, atol=1e-4, rtol=0)
    torch.testing.assert_close(predict_ab(optimized, L), plain_ab, atol=1e-4, rtol=0)  # from the cache
    assert len(optimized.embedder.cache) == 2


def test_optimized_load_folds_batch_norm_and_predicts_the_same(tiny_run):
    checkpoint = tiny_run["run"] / LAST_NAME
    plain, _ = load_model(checkpoint, "cpu")
    optimized, ckpt = load_model(checkpoint, "cpu", optimize=True)

    assert batch_norms(plain) and not batch_norms(optimized)
    assert ckpt["model_name"] == "perceptual" and not optimized.training
    L = model_input(Image.open(tiny_run["heldout"][0]).convert("RGB"), 32)
    torch.testing.assert_close(predict_ab(optimized, L), predict_ab(plain, L), atol=1e-4, rtol=0)


def test_folding_leaves_layouts_it_cannot_fold_exactly_alone():
    class Twice(torch.nn.Sequential):  # uses its convolution's output twice: folding would change it
        def forward(self, x):
            return self[1](self[0](x)) + self[0](x)

    def conv_bn():
        torch.manual_seed(0)
        norm = torch.nn.BatchNorm2d(4)
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        return torch.nn.Conv2d(1, 4, 3, padding=1), norm

    hooked = torch.nn.Sequential(*conv_bn())
    seen = []
    hooked[0].register_forward_hook(lambda module, inputs, output: seen.append(output))
    x = torch.rand(1, 1, 8, 8)
    for model in (Twice(*conv_bn()).eval(), hooked.eval()):
        before = model(x)
        assert fold_batch_norm(model) == 0
        torch.testing.assert_close(model(x), before, atol=0, rtol=0)
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # the hook still sees the convolution's own output
    assert fold_batch_norm(torch.nn.Sequential(*conv_bn()).eval()) == 1  # the plain pair is folded


def test_optimizing_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        optimize_for_inference(create_model("perceptual", width=0.125), "cpu")


def spy(monkeypatch, name):
    """Record the calls of colorization.inference.<name> (its positional arguments), still calling it."""
    calls = []
    original = getattr(inference, name)

    def recording(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(inference, name, recording)
    return calls


def test_colorize_takes_a_loaded_model_and_does_not_load_it_again(tiny_run, tmp_path, monkeypatch):
    checkpoint = tiny_run["run"] / LAST_NAME
    from_path = colorize_paths(checkpoint, tiny_run["heldout"], tmp_path / "from-path")
    loaded = load_model(checkpoint, "cpu", optimize=True)
    loads, builds = spy(monkeypatch, "load_model"), spy(monkeypatch, "create_model")

    from_model = colorize_paths(loaded, tiny_run["heldout"], tmp_path / "from-model")

    assert loads == [] and builds == []
    for first, second in zip(from_path, from_model):
        assert first.read_bytes() == second.read_bytes()


def test_batch_size_defaults_to_the_devices_own(tiny_run, tmp_path, monkeypatch):
    # Four held-out images of three sizes: 48x40 twice, 37x53 once, 61x33 once (see tiny_run).
    batches = spy(monkeypatch, "predict_ab")
    colorize_paths(tiny_run["run"] / LAST_NAME, tiny_run["heldout"], tmp_path / "default", device="cpu")
    assert default_batch_size("cpu") == DEFAULT_BATCH_SIZE["cpu"] and default_batch_size("cuda:0") == 8
    assert max(L.shape[0] for _, L in batches) == DEFAULT_BATCH_SIZE["cpu"]
    assert sum(L.shape[0] for _, L in batches) == len(tiny_run["heldout"])

    batches.clear()
    colorize_paths(tiny_run["run"] / LAST_NAME, tiny_run["heldout"], tmp_path / "three", batch_size=3)
    per_size = Counter(tuple(L.shape[-2:]) for _, L in batches for _ in range(L.shape[0]))
    expected = [3] * sum(count // 3 for count in per_size.values()) + [c % 3 for c in per_size.values() if c % 3]
    assert sorted(L.shape[0] for _, L in batches) == sorted(expected)


def test_inference_benchmark_writes_flat_figures_and_skips_unknown_models(tmp_path):
    from benchmarks.inference import main

    out = tmp_path / "inference.json"
    figures = main(
        [
            "--models",
            "perceptual",
            "no-such-model",
            "--image-size",
            "16",
            "--batch-sizes",
            "2",
            "--rounds",
            "1",
            "--min-time",
            "0",
            "--floor-time",
            "0",
            "--warmup",
            "0",
            "--json",
            str(out),
        ]
    )

    assert json.loads(out.read_text()) == figures
    assert figures["device"] == "cpu" and figures["threads"] == 1 and figures["colorize_batch_size"] == 1
    assert figures["perceptual_gflop_per_image"] == pytest.approx(35.18e9 / 256**2 * 16**2 / 1e9, rel=0.01)
    assert figures["matmul_gflops"] > 0
    for batch in (1, 2):
        rate = figures[f"perceptual_b{batch}_images_per_s"]
        assert figures[f"perceptual_b{batch}_efficiency"] == pytest.approx(
            rate * figures["perceptual_gflop_per_image"] / figures["matmul_gflops"]
        )
    assert figures["perceptual_images_per_s"] == figures["perceptual_b1_images_per_s"]
    assert figures["perceptual_efficiency"] == figures["perceptual_b1_efficiency"]
    assert "unknown model 'no-such-model'" in figures["no-such-model_error"]

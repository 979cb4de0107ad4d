"""The CUDA paths: bf16 autocast and channels_last training, resume, colorize, and DDP over nccl.

Marked `cuda` and run wherever torch sees a GPU; elsewhere pytest reports them as skipped, with the reason
(`pytest -m cuda` runs only these). The DDP test needs two GPUs (nccl gives each process its own).

Tolerances. On CUDA training runs under bf16 autocast: activations are rounded to 8 significant bits (a
relative 2^-9, about 0.2%) while weights, gradients and losses stay float32. The numbers below were measured
by emulating it on CPU (torch.autocast("cpu", dtype=torch.bfloat16), the models and data of these tests),
as no GPU was at hand when they were written; each bound leaves a wide margin over them for cuDNN's kernels,
which round differently from the CPU's, and for its nondeterministic ones (reflection padding's backward
adds with atomics), while staying below what a real fault moves:
- one forward and loss at the same weights and batch, bf16 against float32: 0.14% to 0.6% apart (two
  configurations); 5% allowed.
- training the same global batch split differently (DDP's 2 x 3 images against 6 on one GPU): emulated as
  bf16 gradient accumulation over chunks of 3 against whole batches of 6 (no batch norm), 6 steps: at most
  7e-6 relative in the step losses; the weights' drift, |w - w_reference| / |w_reference - w_initial| (how
  far apart the runs ended, over how far training moved the weights; norms over all of them), 1.4e-2
  (1e-6 in float32). Allowed: 2e-3 in the losses, 0.2 drift, under what a wrong global batch gives (0.7% in
  the held-out loss, a drift of 1.2: test_distributed.py's setup). No bound on single weights: RMSprop's
  first steps move a weight by about 3 x lr whatever its gradient's size, so one gradient whose sign
  rounding flips moves it 6e-3, which a whole-run norm absorbs. A resumed run, on the same GPU with the same
  kernels, differs less than that; it gets the same bounds.
- colorizing with the checkpoint of cuda_run (30 steps), bf16 against float32, per held-out image: ab_norm
  at most 6.3e-3 apart (1.1e-3 on average), output pixels at most 0.18 levels apart on average (of 255),
  99.9% of them within 1.24 levels. Allowed: 5e-2 at most and 5e-3 on average in ab_norm, 1 level on
  average and 3 levels for 99.9% of the pixels. A prediction mirrored left to right, as a layout mix-up
  would give, is 3e-2 to 4e-2 off on average in ab_norm and 5 to 6.5 levels in the pixels.
"""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from colorization.checkpoint import LAST_NAME, load_checkpoint
from colorization.config import TrainConfig
from colorization.data import ColorizationDataset, collate_skip_none
from colorization.images import load_image
from colorization.inference import colorize_paths, load_model, model_input, predict_ab
from colorization.models import create_model
from colorization.split import make_split, read_split
from colorization.train import build_training, config_for_resume, train, train_step
from tests.colorization.conftest import TINY_TRAINING, read_log, write_color_images
from tests.colorization.test_distributed import (
    one_process,
    subprocess_env,
    torchrun,
    train_arguments,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)"),
]

CUDA, CPU = torch.device("cuda"), torch.device("cpu")
FIRST_LOSS_RTOL = 5e-2
RTOL_LOSS, MAX_DRIFT = 2e-3, 0.2  # the same training split or resumed differently, in bf16


@pytest.fixture(scope="module")
def cuda_split(tmp_path_factory):
    """8 training and 4 held-out 48x40 colour images."""
    root = tmp_path_factory.mktemp("cuda")
    write_color_images(root / "images", 12, seed=3)
    make_split(root / "images", root / "split", holdout=4, seed=0)
    return root / "split"


@pytest.fixture(scope="module")
def cuda_run(cuda_split, tmp_path_factory):
    """30 steps of one 8-image batch on the GPU, as the CPU test in test_train.py: (TrainResult, run dir)."""
    run = tmp_path_factory.mktemp("cuda_run") / "run"
    options = dict(TINY_TRAINING, batch_size=8, vgg_layers=("relu1_2",), device="cuda")
    result = train(TrainConfig(model="perceptual", split=cuda_split, out=run, epochs=30, lr=1e-3, **options))
    return result, run


def drift(checkpoint: dict, reference: dict) -> float:
    """|w - w_reference| / |w_reference - w_initial| over all floating-point weights and buffers, w_initial
    being the weights build_training starts from (seeded by the run's seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(reference["config"]["seed"])
        initial = create_model(reference["model_name"], **reference["model_kwargs"]).state_dict()
    state, expected = checkpoint["model_state"], reference["model_state"]
    keys = [key for key, value in expected.items() if value.is_floating_point()]
    apart = torch.stack([(state[key].float() - expected[key].float()).norm() for key in keys]).norm()
    moved = torch.stack([(expected[key].float() - initial[key].float()).norm() for key in keys]).norm()
    assert moved > 0, "training did not move the weights"
    return (apart / moved).item()


def is_channels_last(tensor: torch.Tensor) -> bool:
    """True for a 4-d tensor laid out channels last, not also contiguous (both hold when C or H * W is 1)."""
    return tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()


def test_a_training_step_runs_in_bf16_autocast_on_channels_last_float32_weights(cuda_split, tmp_path):
    config = TrainConfig(
        model="perceptual", split=cuda_split, out=tmp_path / "run", lr=1e-3, device="cuda", **TINY_TRAINING
    ).resolve()
    dataset = ColorizationDataset(read_split(cuda_split).train[:4], config.image_size, train=False)
    batch = collate_skip_none([dataset[index] for index in range(len(dataset))])
    # The same initial weights (build_training seeds them) and batch on the CPU, in float32.
    cpu_model, cpu_loss_fn, cpu_optimizer = build_training(config, CPU)
    cpu_loss = train_step(cpu_model, cpu_loss_fn, cpu_optimizer, batch, CPU)

    model, loss_fn, optimizer = build_training(config, CUDA)
    convs = [module for module in [*model.modules(), *loss_fn.modules()] if isinstance(module, nn.Conv2d)]
    assert convs and all(conv.weight.is_cuda and conv.weight.dtype == torch.float32 for conv in convs)
    assert all(is_channels_last(conv.weight) for conv in convs if conv.weight.shape[1] > 1)
    seen = []
    # The second layer's conv: 8 input channels, so that its layout cannot be both (see is_channels_last).
    second_conv = [module for module in model.modules() if isinstance(module, nn.Conv2d)][1]
    assert second_conv.in_channels > 1
    second_conv.register_forward_hook(lambda module, inputs, output: seen.append(output))

    loss = train_step(model, loss_fn, optimizer, batch, CUDA)

    [output] = seen
    assert output.dtype == torch.bfloat16 and is_channels_last(output)
    assert loss == pytest.approx(cpu_loss, rel=FIRST_LOSS_RTOL)  # see the module docstring
    for parameter in model.parameters():
        assert parameter.dtype == parameter.grad.dtype == torch.float32
        assert torch.isfinite(parameter.grad).all() and torch.isfinite(parameter).all()


def test_training_on_cuda_cuts_the_loss_and_saves_cuda_random_state(cuda_run):
    result, run = cuda_run
    # In float32 on CPU the same run ends with a 2.6x lower loss in the last 3 steps than in the first 3.
    assert result.step == 30 and sum(result.losses[:3]) / sum(result.losses[-3:]) > 1.5
    assert len(read_log(run)) == 30
    last = load_checkpoint(run / LAST_NAME)
    assert len(last["rng"]["cuda"]) == torch.cuda.device_count()
    assert all(value.dtype != torch.bfloat16 for value in last["model_state"].values())  # autocast, not .bfloat16()


def test_resume_on_cuda_continues_like_the_uninterrupted_run(cuda_split, tmp_path):
    # As test_train.py's CPU test: 8 images in batches of 3, stopped mid-epoch 2; the uninterrupted run loads
    # its data in 2 workers (into pinned memory), the others in the main process.
    options = dict(TINY_TRAINING, batch_size=3, device="cuda", schedule="2:1e-3,1:3e-4")
    whole = train(TrainConfig(model="perceptual", split=cuda_split, out=tmp_path / "whole", **dict(options, workers=2)))
    assert whole.step == 9

    first = train(TrainConfig(model="perceptual", split=cuda_split, out=tmp_path / "cut", max_steps=4, **options))
    assert first.losses == pytest.approx(whole.losses[:4], rel=RTOL_LOSS)
    stopped = load_checkpoint(tmp_path / "cut" / LAST_NAME)
    assert (stopped["epoch"], stopped["batch_in_epoch"], stopped["step"]) == (1, 1, 4)

    resumed = train(config_for_resume(tmp_path / "cut", progress=False))
    assert resumed.step == 9
    assert resumed.losses == pytest.approx(whole.losses[4:], rel=RTOL_LOSS)
    final_whole, final_resumed = (load_checkpoint(tmp_path / name / LAST_NAME) for name in ("whole", "cut"))
    assert drift(final_resumed, final_whole) <= MAX_DRIFT


def test_colorize_on_cuda_matches_cpu_within_bf16_rounding(cuda_run, cuda_split, tmp_path):
    _, run = cuda_run
    checkpoint, heldout = run / LAST_NAME, read_split(cuda_split).heldout

    # The model's prediction, image by image (predict_ab runs bf16 autocast on CUDA only).
    cpu_model, ckpt = load_model(checkpoint, "cpu")
    cuda_model, _ = load_model(checkpoint, "cuda")
    for path in heldout:
        L_small = model_input(load_image(path), ckpt["config"]["image_size"])
        expected = predict_ab(cpu_model, L_small)
        difference = (predict_ab(cuda_model, L_small.to(CUDA)).cpu() - expected).abs()
        assert difference.max() <= 5e-2 and difference.mean() <= 5e-3, path.name

    # The written photos.
    cpu_paths = colorize_paths(checkpoint, heldout, tmp_path / "cpu", device="cpu", progress=False)
    cuda_paths = colorize_paths(checkpoint, heldout, tmp_path / "cuda", device="cuda", progress=False)
    for cpu_path, cuda_path in zip(cpu_paths, cuda_paths):
        cpu_pixels = np.asarray(Image.open(cpu_path), dtype=np.int16)
        cuda_pixels = np.asarray(Image.open(cuda_path), dtype=np.int16)
        assert cpu_pixels.shape == cuda_pixels.shape
        difference = np.abs(cuda_pixels - cpu_pixels)
        assert difference.mean() <= 1 and np.quantile(difference, 0.999) <= 3, cpu_path.name


@pytest.mark.skipif(
    torch.cuda.device_count() < 2,
    reason=f"DDP over nccl needs 2 GPUs, one per process; torch sees {torch.cuda.device_count()}",
)
def test_ddp_over_nccl_follows_one_gpu_with_the_same_global_batch(cuda_split, tmp_path):
    # test_distributed.py's comparison on GPUs: 2 processes x 3 images against 1 x 6, without batch norm.
    env = subprocess_env()  # the GPUs visible, unlike test_distributed.py's gloo runs
    one_process(train_arguments(cuda_split, tmp_path / "one", 6, device="cuda"), cwd=tmp_path, env=env)
    two = torchrun(2, train_arguments(cuda_split, tmp_path / "two", 3, device="cuda"), cwd=tmp_path, env=env)

    # 8 training images, 6 per step: one full step and one of 2 images (1 per process) per epoch.
    assert [(row["epoch"], row["step"]) for row in read_log(tmp_path / "two")] == [("1", "2"), ("2", "4"), ("3", "6")]
    assert {path.name for path in (tmp_path / "two").iterdir()} == {"last.pt", "best.pt", "log.csv"}
    assert two.stdout.count(f"{tmp_path / 'two'}: step 6") == 1
    log, reference_log = read_log(tmp_path / "two"), read_log(tmp_path / "one")
    assert [row["lr"] for row in log] == [row["lr"] for row in reference_log]
    for column in ("train_loss", "heldout_loss"):
        values, expected = [float(row[column]) for row in log], [float(row[column]) for row in reference_log]
        assert values == pytest.approx(expected, rel=RTOL_LOSS, abs=0), column
    two_last, one_last = (load_checkpoint(tmp_path / name / LAST_NAME) for name in ("two", "one"))
    assert two_last["step"] == one_last["step"] == 6
    assert drift(two_last, one_last) <= MAX_DRIFT

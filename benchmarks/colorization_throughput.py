"""Training and inference throughput (images/s) of a registered colorization model on synthetic batches.

    .venv/bin/python -m benchmarks.colorization_throughput --model perceptual --image-size 256 --batch-size 16
    .venv/bin/python -m benchmarks.colorization_throughput --model koalarization --model-opt irv2_weights=none

(run from the repository root).

Training: the training loop's own step (forward, loss, backward, optimizer; bf16 autocast and channels_last on
CUDA) with the model's default loss unless --loss says otherwise. Inference: the forward pass that `colorize`
runs, predicting ab for a batch of L. Neither includes image decoding, resizing or PNG writing. Pretrained
weights do not change the timing, so the loss network and backbones may be randomly initialized
(--vgg-weights none is the default here; pass irv2_weights=none for Koalarization offline). The first
--warmup steps (cuDNN autotuning, lazy initialization) are not timed.
"""

import argparse
import time

import torch

from colorization.cli import parse_key_value
from colorization.config import TrainConfig
from colorization.devices import resolve_device
from colorization.inference import predict_ab
from colorization.lab import rgb_to_lab_norm
from colorization.train import build_training, train_step


def synthetic_batch(batch_size: int, image_size: int) -> dict:
    rgb = torch.rand(batch_size, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    L_norm, ab_norm = rgb_to_lab_norm(rgb)
    return {"L": L_norm, "ab": ab_norm, "rgb": rgb}


def images_per_second(run_once, *, steps: int, warmup: int, batch_size: int, device) -> float:
    for _ in range(warmup):
        run_once()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        run_once()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch_size / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="perceptual")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20, help="timed steps for each measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    parser.add_argument("--loss", choices=("perceptual", "mse"), help="default: the model's registered loss")
    parser.add_argument("--vgg-weights", default="none")
    parser.add_argument(
        "--model-opt", type=parse_key_value, nargs="+", default=[], metavar="KEY=VALUE", help="as for `train`"
    )
    args = parser.parse_args()

    model_opts = dict(args.model_opt)
    device = resolve_device(args.device)
    config = TrainConfig(
        model=args.model, split=".", out=".", batch_size=args.batch_size, image_size=args.image_size,
        loss=args.loss, vgg_weights=args.vgg_weights, model_opts=model_opts, lr=1e-4,
    ).resolve()  # fmt: skip
    model, loss_fn, optimizer = build_training(config, device)
    batch = synthetic_batch(args.batch_size, args.image_size)
    timing = dict(steps=args.steps, warmup=args.warmup, batch_size=args.batch_size, device=device)

    train_rate = images_per_second(lambda: train_step(model, loss_fn, optimizer, batch, device), **timing)
    model.eval()
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    L_on_device = batch["L"].to(device, memory_format=memory_format)
    infer_rate = images_per_second(lambda: predict_ab(model, L_on_device), **timing)

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    print(
        f"model {args.model} {model_opts or ''} ({trainable / 1e6:.1f}M trainable parameters), "
        f"loss {config.loss}, {args.image_size}x{args.image_size}, "
        f"batch {args.batch_size}, {name}, torch {torch.__version__}"
    )
    print(f"training:  {train_rate:8.1f} images/s")
    print(f"inference: {infer_rate:8.1f} images/s")


if __name__ == "__main__":
    main()

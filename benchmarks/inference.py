"""Inference speed of the colorization models, beside a dense matmul floor measured in the same run.

    .venv/bin/python -m benchmarks.inference [--device cpu|cuda] [--threads 1] [--models perceptual koalarization
        eccv16] [--batch-sizes 1 8] [--image-size 256] [--plain] [--json PATH]

(run from the repository root). For each model: FLOPs per image (torch.utils.flop_counter: a multiply-add is 2
FLOPs; batch norm, activations and resizing are not counted), images/s at each batch size, and efficiency =
the FLOP rate achieved / the floor's. The floor is a large dense matmul (CPU: 2048 x 2048 float32, torch.mm;
CUDA: 8192 x 8192 bfloat16, the dtype predict_ab's autocast runs the convolutions in), measured after every
timed round, so that it samples the same stretch of the shared machine's load as the models: the figures are
the median of the rounds and the median of the floors (matmul_gflops). On CPU the efficiency can exceed 1:
oneDNN's convolution kernels get closer to the core's peak than MKL's sgemm does on an AMD core.

What is timed is what `colorize` runs per batch: colorization.inference.predict_ab on a model prepared by
prepare_model as load_model(..., optimize=True) prepares it (batch norm folded, channels_last; --plain: as it
was before that, the plain eval model), on a batch of random L already on the device. For a model whose output
is not ab (eccv16: class scores over ab bins), predict_ab's decoding (model.to_ab) is timed too. Image decoding,
resizing and PNG writing are not. Models are built with create_model and random weights (timing does not
depend on them): irv2_weights="none" for Koalarization, so nothing is downloaded. Any registered model name
works; one that cannot be built is reported and skipped.

Clocks: on CPU, the CPU time of this process (time.process_time, all threads together, so a busy neighbour on
the shared cores does not count) with --threads torch threads (default 1); on CUDA, wall time between
synchronizations. `colorize`'s own batch size on the device (colorization.inference.default_batch_size) is
always measured and gives the unqualified JSON keys: matmul_gflops, <model>_images_per_s, <model>_efficiency,
<model>_gflop_per_image; every batch size has <model>_b<N>_images_per_s and <model>_b<N>_efficiency.
"""

import argparse
import functools
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from colorization.devices import DeviceError, resolve_device
from colorization.inference import default_batch_size, predict_ab, prepare_model
from colorization.models import create_model

DEFAULT_MODELS = ("perceptual", "koalarization", "eccv16")
# Random weights, and nothing fetched: timing does not depend on the weights.
MODEL_OPTIONS = {"koalarization": {"irv2_weights": "none"}}
FLOOR = {"cpu": (2048, torch.float32), "cuda": (8192, torch.bfloat16)}


class Clock:
    """CPU time of this process on CPU; wall time between synchronizations on CUDA."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def now(self) -> float:
        if self.device.type == "cuda":
            self.sync()
            return time.perf_counter()
        return time.process_time()

    def seconds_per_call(self, run, min_seconds: float) -> float:
        """Mean seconds of one call of run(), repeated until min_seconds have passed (at least once)."""
        calls, start = 0, self.now()
        while True:
            run()
            calls += 1
            elapsed = self.now() - start
            if elapsed >= min_seconds:
                return elapsed / calls


class Floor:
    """The dense matmul floor: FLOP/s of an n x n by n x n product, every measurement kept."""

    def __init__(self, device: torch.device, clock: Clock, min_seconds: float):
        self.n, self.dtype = FLOOR[device.type]
        generator = torch.Generator().manual_seed(0)
        self.a, self.b = (torch.randn(self.n, self.n, generator=generator).to(device, self.dtype) for _ in range(2))
        self.out = torch.empty_like(self.a)
        self.clock, self.min_seconds = clock, min_seconds
        self.rates = []
        self.measure()  # untimed warm-up, then discarded
        self.rates.clear()

    def measure(self) -> float:
        seconds = self.clock.seconds_per_call(lambda: torch.mm(self.a, self.b, out=self.out), self.min_seconds)
        self.rates.append(2 * self.n**3 / seconds)
        return self.rates[-1]


def flops_per_image(model, image_size: int, device: torch.device) -> int:
    L = torch.rand(1, 1, image_size, image_size, device=device)
    with FlopCounterMode(display=False) as counter:
        predict_ab(model, L)
    return counter.get_total_flops()


def measure_model(model, args, device, clock, floor, batch_sizes) -> dict:
    model = prepare_model(model, device, optimize=not args.plain)
    flops = flops_per_image(model, args.image_size, device)
    result = {"gflop_per_image": flops / 1e9, "batches": {}}
    for batch_size in batch_sizes:
        L = torch.rand(batch_size, 1, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
        L = L.to(device)
        for _ in range(args.warmup):
            predict_ab(model, L)
        clock.sync()
        rates = []
        for _ in range(args.rounds):
            rates.append(batch_size / clock.seconds_per_call(functools.partial(predict_ab, model, L), args.min_time))
            floor.measure()
        result["batches"][batch_size] = {"images_per_s": statistics.median(rates), "range": (min(rates), max(rates))}
    return result


def device_description(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model_name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model_name}, {threads} torch thread{'s' if threads != 1 else ''}"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default 1)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        metavar="NAME",
        help=f"registered model names, spaces or commas between (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[1, 8],
        metavar="N",
        help="batch sizes to time (default 1 8; colorize's own on the device is always added)",
    )
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per model and batch size (median)")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per timed round (default 2)")
    parser.add_argument("--floor-time", type=float, default=1.0, help="seconds per floor measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before each batch size")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="time the plain eval model (no batch-norm folding, channels_last only on CUDA)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here, as flat keys")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.image_size < 1 or min(args.batch_sizes) < 1:
        parser.error("--threads, --rounds, --image-size and --batch-sizes must be at least 1")

    try:
        device = resolve_device(args.device)
    except DeviceError as error:
        parser.error(str(error))
    torch.set_num_threads(args.threads)
    colorize_batch = default_batch_size(device)
    batch_sizes = sorted(set(args.batch_sizes) | {colorize_batch})
    clock = Clock(device)
    floor = Floor(device, clock, args.floor_time)

    names = [name for argument in args.models for name in argument.split(",") if name]
    results, errors = {}, {}
    for name in names:
        try:
            model = create_model(name, **MODEL_OPTIONS.get(name, {}))
        except (ValueError, ImportError) as error:  # unknown name, or a model module that cannot be imported
            errors[name] = str(error)
            print(f"{name}: skipped ({error})", flush=True)
            continue
        results[name] = measure_model(model, args, device, clock, floor, batch_sizes)
        del model
        print(f"{name}: done", flush=True)

    matmul = statistics.median(floor.rates) / 1e9
    for result in results.values():
        for batch in result["batches"].values():
            batch["gflops"] = batch["images_per_s"] * result["gflop_per_image"]
            batch["efficiency"] = batch["gflops"] / matmul
    figures = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "device": device.type,
        "device_name": device_description(device, args.threads),
        "threads": args.threads if device.type == "cpu" else None,
        "torch": torch.__version__,
        "image_size": args.image_size,
        "plain": args.plain,
        "colorize_batch_size": colorize_batch,
        "clock": "cpu_time" if device.type == "cpu" else "wall",
        "matmul": f"{FLOOR[device.type][0]}^2 {str(FLOOR[device.type][1]).removeprefix('torch.')}",
        "matmul_gflops": matmul,
        "matmul_gflops_min": min(floor.rates) / 1e9,
        "matmul_gflops_max": max(floor.rates) / 1e9,
        "matmul_measurements": len(floor.rates),
    }
    for name, result in results.items():
        figures[f"{name}_gflop_per_image"] = result["gflop_per_image"]
        for batch_size, batch in result["batches"].items():
            figures[f"{name}_b{batch_size}_images_per_s"] = batch["images_per_s"]
            figures[f"{name}_b{batch_size}_efficiency"] = batch["efficiency"]
            figures[f"{name}_b{batch_size}_images_per_s_min"], figures[f"{name}_b{batch_size}_images_per_s_max"] = (
                batch["range"]
            )
        figures[f"{name}_images_per_s"] = result["batches"][colorize_batch]["images_per_s"]
        figures[f"{name}_efficiency"] = result["batches"][colorize_batch]["efficiency"]
    for name, error in errors.items():
        figures[f"{name}_error"] = error

    print_table(figures, results, errors)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return figures


def print_table(figures: dict, results: dict, errors: dict) -> None:
    print()
    print(
        f"inference at {figures['image_size']}x{figures['image_size']} on {figures['device_name']}, torch "
        f"{figures['torch']}, {'plain eval models' if figures['plain'] else 'as colorize runs them'}, "
        f"{'CPU' if figures['clock'] == 'cpu_time' else 'wall'} seconds"
    )
    print(
        f"floor: {figures['matmul']} matmul, {figures['matmul_gflops']:.1f} GFLOP/s (median of "
        f"{figures['matmul_measurements']}, {figures['matmul_gflops_min']:.1f}-{figures['matmul_gflops_max']:.1f})"
    )
    header = (
        f"{'model':<15} {'GFLOP/image':>11} {'batch':>6} {'images/s':>9} {'(min-max)':>13} {'GFLOP/s':>8} "
        f"{'efficiency':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        for batch_size, batch in result["batches"].items():
            mark = "*" if batch_size == figures["colorize_batch_size"] else " "
            print(
                f"{name:<15} {result['gflop_per_image']:>11.1f} {batch_size:>5}{mark} {batch['images_per_s']:>9.3f} "
                f"{'({:.3f}-{:.3f})'.format(*batch['range']):>13} {batch['gflops']:>8.1f} {batch['efficiency']:>10.2f}"
            )
    for name, error in errors.items():
        print(f"{name:<15} skipped: {error}")
    print(
        "* the batch size colorize uses on this device; images/s: median of the rounds; efficiency = GFLOP/s "
        "achieved / the floor's median"
    )


if __name__ == "__main__":
    main()

"""Training loop: `train(TrainConfig(...))` or `python -m colorization train ...`.

Run folder: last.pt and best.pt (colorization.checkpoint says what they hold), and log.csv, a row per epoch
(and one when --max-steps stops mid-epoch) with epoch, step, train_loss (mean over the steps since the
previous row), heldout_loss, lr, images_per_s, seconds, skipped_images. Several processes: colorization.distributed.

Exact resume: the shuffling of epoch e is drawn from seed + e, and the augmentation of an image from
(seed, epoch, its index), never from a running random state, so a resumed run sees the very batches the
uninterrupted run would have, whichever batch it starts from and however many loader workers there are.
On CPU the resumed losses equal the uninterrupted ones (tests/colorization/test_train.py); on CUDA they agree
up to the run-to-run nondeterminism of cuDNN's kernels.

Stopping: --max-steps stops after that many steps in all. Ctrl-C lets the step in progress finish (a step
cut in half would leave the weights half-updated), writes last.pt and a log row as --max-steps does, and
raises TrainingStopped, a KeyboardInterrupt; a second Ctrl-C stops at once, losing the steps since the last
checkpoint. The command line turns either into one line saying how to resume, and exit status 130.

Order of work: settings and paths are checked first (TrainConfig.check_paths and resolve, then the split's
contents and --out), and
only then are the networks built, which may download pretrained weights: a typo in a path is reported in a
second, not after a download.

Settings a run does not give come from its model's published recipe (colorization.models.Recipe; the
recipe table in docs/training.md). A batch is one optimizer step; --micro-batch-size splits it into chunks whose
gradients add up to the whole batch's (gradient accumulation), for recipes whose batch does not fit in memory.

Devices: CUDA with bf16 autocast and channels_last when available (--device auto), else CPU in float32.
Multi-GPU: `torchrun --nproc_per_node=N -m colorization train ...` starts one process per GPU; each trains on
its share of every epoch (DistributedSampler), gradients are averaged by DDP, and only rank 0 writes files.
--batch-size is per process, and so are batch-norm statistics (no SyncBatchNorm): N processes of B images match
one process of N x B images exactly only for models without batch norm (tests/colorization/test_distributed.py).
"""

import csv
import itertools
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from colorization import distributed
from colorization.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    checkpoint_state,
    load_checkpoint,
    restore_rng_states,
    save_atomically,
)
from colorization.config import TrainConfig
from colorization.data import ColorizationDataset, collate_skip_none, has_images
from colorization.errors import ConfigError
from colorization.losses import loss_from_config
from colorization.models import create_model
from colorization.split import read_split

LOG_NAME = "log.csv"
LOG_COLUMNS = ("epoch", "step", "train_loss", "heldout_loss", "lr", "images_per_s", "seconds", "skipped_images")
# RMSprop's moving-average decay: TensorFlow's default (the paper trained with TensorFlow); torch's is 0.99.
RMSPROP_ALPHA = 0.9


@dataclass
class TrainResult:
    step: int  # optimizer steps in all, including those before a resume
    next_epoch: int  # the epoch to run next (== total epochs once training is complete)
    losses: list[float]  # training loss of every step this call ran (under torchrun: this process's images)
    best_loss: float  # lowest held-out loss seen (inf without held-out images)


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C stopped training after a step; `checkpoint` (last.pt) holds that step, `step`."""

    def __init__(self, step: int, checkpoint: Path):
        super().__init__(f"stopped at step {step}, saved in {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


def train(config: TrainConfig) -> TrainResult:
    """Train config.model as config says (see the module docstring); the settings it leaves out come from the
    model's recipe (TrainConfig.resolve)."""
    config.check_paths()
    config = config.resolve()
    rank, world, device = distributed.setup(config.device)
    is_main = rank == 0
    last_path = config.out / LAST_NAME
    if not config.resume and last_path.exists():
        raise ConfigError(f"{last_path} exists: pass --resume to continue that run, or choose another --out")
    # The data before the model: a bad split is reported before any pretrained weights are downloaded.
    train_set, sampler, train_loader, heldout_loader = _data(config, rank, world, pin_memory=device.type == "cuda")
    model, loss_fn, optimizer = build_training(config, device)
    epoch, batch_in_epoch, step, best_loss = 0, 0, 0, math.inf
    if config.resume:
        ckpt = load_checkpoint(last_path)
        model.load_state_dict(ckpt["model_state"])
        optimizer.load_state_dict(ckpt["optimizer_state"])
        epoch, batch_in_epoch, step, best_loss = (ckpt[key] for key in ("epoch", "batch_in_epoch", "step", "best_loss"))
        restore_rng_states(ckpt["rng"])
    if config.cache_features:
        if not hasattr(model, "cache_embeddings"):
            raise ConfigError(f"--cache-features: the {config.model} model has no frozen features to cache")
        model.cache_embeddings()
    model_or_ddp = model  # what a step runs; the plain model is what checkpoints and evaluation use
    if world > 1:
        model_or_ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if is_main:
        config.out.mkdir(parents=True, exist_ok=True)

    lrs = config.lr_by_epoch()
    assert config.batch_size is not None  # resolve() fills it from the model's recipe
    batches_per_epoch = math.ceil(sampler.num_samples / config.batch_size)
    # One bar for the whole run, counting steps up to where it will stop: --max-steps or the schedule's end.
    run_steps = step + (len(lrs) - epoch) * batches_per_epoch - batch_in_epoch
    progress = tqdm(
        total=min(run_steps, config.max_steps or run_steps),
        initial=step,
        unit="step",
        disable=not (is_main and config.progress),
    )
    losses = []
    with progress, StopOnCtrlC(enabled=world == 1) as ctrl_c:
        while epoch < len(lrs) and not _done(step, config) and not ctrl_c.requested:
            for group in optimizer.param_groups:
                group["lr"] = lrs[epoch]
            train_set.epoch = epoch
            sampler.set_epoch(epoch)
            sampler.start = batch_in_epoch * config.batch_size
            progress.set_description(f"epoch {epoch + 1}/{len(lrs)}")
            started, loss_sum, images, skipped = time.perf_counter(), 0.0, 0, 0
            for batch in train_loader:
                batch_in_epoch += 1
                skipped += int(batch["skipped"])
                if not distributed.every_process_has_a_batch(batch, device, world):
                    continue
                loss = train_step(model_or_ddp, loss_fn, optimizer, batch, device, config.micro_batch_size)
                step += 1
                losses.append(loss)
                loss_sum += loss * len(batch["L"])
                images += len(batch["L"])
                images_per_s = images * world / (time.perf_counter() - started)
                progress.set_postfix(loss=f"{loss:.4g}", img_s=f"{images_per_s:.1f}", refresh=False)
                progress.update()
                if _done(step, config) or ctrl_c.requested:
                    break
            seconds = time.perf_counter() - started
            train_loss = distributed.global_mean(loss_sum, images, device, world)
            # Whoever pressed Ctrl-C is waiting: this row's held-out loss is left out (NaN).
            heldout_loss = math.nan
            if not ctrl_c.requested:
                heldout_loss = evaluate_loss(model, loss_fn, heldout_loader, device, world)
            (skipped,) = distributed.global_sums([skipped], device, world)
            if skipped and is_main:
                progress.write(
                    f"epoch {epoch + 1}: skipped {skipped} unreadable or grayscale training images (see warnings)"
                )
            row = (epoch + 1, step, train_loss, heldout_loss, lrs[epoch], images * world / seconds, seconds, skipped)
            if batch_in_epoch == batches_per_epoch:
                epoch, batch_in_epoch = epoch + 1, 0
            is_best = heldout_loss < best_loss  # never true for NaN: without held-out images there is no best.pt
            best_loss = heldout_loss if is_best else best_loss
            if is_main:
                state = checkpoint_state(config, model, optimizer, epoch, batch_in_epoch, step, best_loss)
                save_atomically(state, last_path)
                if is_best:
                    save_atomically(state, config.out / BEST_NAME)
                _append_log(config.out / LOG_NAME, row)
        finished = epoch == len(lrs) or _done(step, config)
        if finished:
            # A batch whose every image was unreadable gives no step; the finished run still shows 100%.
            progress.total = progress.n
    if world > 1:
        dist.destroy_process_group()
    if not finished:
        raise TrainingStopped(step, last_path)
    return TrainResult(step=step, next_epoch=epoch, losses=losses, best_loss=best_loss)


class StopOnCtrlC:
    """While active, the first Ctrl-C (SIGINT) only sets `requested`; the loop stops at the end of the step.

    A second Ctrl-C raises KeyboardInterrupt at once. Inactive (`enabled` False, or outside the main thread,
    where Python cannot install signal handlers) it changes nothing. Not used with several processes: they
    would have to agree on the step to stop after, and torchrun stops its workers itself.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested, self.pid = False, os.getpid()

    def __enter__(self):
        if self.enabled:
            self.previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, *exc_info):
        if self.enabled:
            signal.signal(signal.SIGINT, self.previous)

    def _request(self, signum, frame):
        if os.getpid() != self.pid:
            return  # a loader worker forked with this handler, before _ignore_ctrl_c ran in it
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # os.write, not print: a handler that prints while the main code is printing breaks Python's buffered IO.
        os.write(2, b"\nCtrl-C: stopping after this step and saving last.pt (press again to stop at once)\n")


def build_training(config: TrainConfig, device: torch.device):
    """(model, loss module, optimizer) for a resolved config (TrainConfig.resolve) on device; the model's initial
    weights come from config.seed."""
    torch.manual_seed(config.seed)
    model = create_model(config.model, **config.model_opts).to(device)
    loss_fn = loss_from_config(config).to(device)
    spaces = getattr(loss_fn, "output_spaces", ("ab", "rgb"))
    if model.output_space not in spaces:
        raise ConfigError(
            f"--loss {config.loss} takes {' or '.join(spaces)} outputs, and the {config.model} model's are "
            f"{model.output_space!r}: leave --loss out for its recipe's"
        )
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        loss_fn = loss_fn.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # every batch has the same size: tune the conv kernels once
    return model, loss_fn, build_optimizer(config, model)


def train_step(model, loss_fn, optimizer, batch, device, micro_batch_size=None) -> float:
    """One optimizer step on a collated batch; returns its loss. Shared with benchmarks/.

    With micro_batch_size, the batch goes through in chunks of that many images and their gradients are
    accumulated, each chunk's mean loss weighted by its share of the batch: the step equals the whole
    batch's (up to float rounding) for models without batch norm, whose statistics would be the chunk's.
    """
    batch = _to_device(batch, device)
    size = len(batch["L"])
    chunk_size = micro_batch_size or size
    starts = range(0, size, chunk_size)
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    for start in starts:
        chunk = {key: value[start : start + chunk_size] if value.dim() else value for key, value in batch.items()}
        # DDP averages gradients across processes at each backward; once per step is enough.
        with distributed.no_sync_unless(model, start == starts[-1]):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                output = model(chunk["L"])
                loss = loss_fn(output, chunk, distributed.unwrap(model).output_space) * (len(chunk["L"]) / size)
            loss.backward()
        total += loss.detach()
    optimizer.step()
    return total.item()  # once per step: each .item() waits for the GPU


@torch.no_grad()
def evaluate_loss(model, loss_fn, loader, device, world=1) -> float:
    """Mean loss per image over the loader (all processes together); NaN when there are no images."""
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        if not has_images(batch):
            continue
        batch = _to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            total += loss_fn(model(batch["L"]), batch, model.output_space).item() * len(batch["L"])
        count += len(batch["L"])
    model.train()
    return distributed.global_mean(total, count, device, world)


def config_for_resume(out, **overrides) -> TrainConfig:
    """The stored config of OUT/last.pt with `overrides` applied (its --max-steps is not carried over).

    Model options are merged key by key: `--resume --irv2-weights PATH` must not drop the stored width.
    """
    checkpoint = load_checkpoint(Path(out) / LAST_NAME, missing="no checkpoint to resume from")
    if "optimizer_state" not in checkpoint:
        raise ConfigError(
            f"{Path(out) / LAST_NAME} holds weights but no training state (converted from released weights?), so "
            "it cannot be resumed; train a new run instead (eccv16: --model-opt weights=PATH starts from them)"
        )
    stored = checkpoint["config"]
    if overrides.get("model") not in (None, stored["model"]):
        raise ConfigError(f"--resume continues the run's {stored['model']} model; a new --out trains another")
    for name in ("optimizer", "optimizer_options"):
        # The optimizer state restored from the checkpoint carries its own settings (betas, weight decay, ...).
        if overrides.get(name) is not None and overrides[name] != stored.get(name):
            raise ConfigError(
                f"--resume keeps the run's optimizer and its options ({stored.get('optimizer')} "
                f"{stored.get('optimizer_options') or ''}); start a new run to change them"
            )
    stored.pop("max_steps")
    model_opts = {**stored["model_opts"], **overrides.get("model_opts", {})}
    return TrainConfig(**{**stored, **overrides, "model_opts": model_opts, "out": out, "resume": True})


class EpochSeededDataset(Dataset):
    """Seeds torch's random state from (seed, epoch, index) around each item, so augmentation is a function
    of those three alone (see the module docstring). Set `epoch` before iterating."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]))
            return self.dataset[index]


class ResumableSampler(DistributedSampler):
    """DistributedSampler (order drawn from seed + epoch, this process's share) that can skip the first
    `start` indices of an epoch, for resuming mid-epoch without loading the skipped images."""

    start = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self):
        return super().__len__() - self.start


def _data(config: TrainConfig, rank: int, world: int, pin_memory: bool):
    """(train set, its sampler, train loader, held-out loader) for this process."""
    split = read_split(config.split)
    assert config.image_size is not None  # resolve() fills it from the model's recipe
    train_set = EpochSeededDataset(
        ColorizationDataset(split.train[: config.limit_images], config.image_size, train=True), config.seed
    )
    if len(train_set) == 0:
        raise ConfigError(f"{config.split}: the split has no training images")
    heldout_set = ColorizationDataset(split.heldout[: config.limit_images], config.image_size, train=False)
    sampler = ResumableSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    options: dict[str, Any] = dict(
        batch_size=config.batch_size,
        num_workers=config.workers,
        collate_fn=collate_skip_none,
        pin_memory=pin_memory,
        worker_init_fn=_ignore_ctrl_c,
    )
    # Every process scores its own slice of the held-out images; evaluate_loss adds the sums up.
    heldout_loader = DataLoader(Subset(heldout_set, range(rank, len(heldout_set), world)), **options)
    return train_set, sampler, DataLoader(train_set, sampler=sampler, **options), heldout_loader


def _ignore_ctrl_c(worker_id: int) -> None:
    # The terminal sends Ctrl-C to loader workers too; they keep loading while the main process finishes
    # its step (StopOnCtrlC) and are shut down with the loader.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def build_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    # Frozen parts (Koalarization's Inception-ResNet-v2) are left out.
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    lr = config.lr_by_epoch()[0]
    optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam
    options = config.optimizer_options or {}
    if config.optimizer == "rmsprop":
        optimizer, options = torch.optim.RMSprop, {"alpha": RMSPROP_ALPHA, **options}
    try:
        return optimizer(parameters, lr=lr, **options)
    except (TypeError, ValueError) as error:  # an option the optimizer does not take, or a bad value
        raise ConfigError(f"--optimizer-opt {config.optimizer_options} for {optimizer.__name__}: {error}") from None


def _append_log(path: Path, row) -> None:
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.writer(file)
        if new:
            writer.writerow(LOG_COLUMNS)
        writer.writerow(row)


def _done(step: int, config: TrainConfig) -> bool:
    return config.max_steps is not None and step >= config.max_steps


def _to_device(batch: dict, device) -> dict:
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return {
        key: value.to(device, non_blocking=True, memory_format=memory_format) if value.dim() == 4 else value
        for key, value in batch.items()
        if isinstance(value, torch.Tensor)
    }

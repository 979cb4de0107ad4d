"""Run folders and checkpoints: what a checkpoint holds, writing it safely, reading it back, random states.

RUN_DIR/last.pt is written after every epoch and when a run stops; RUN_DIR/best.pt is the checkpoint with the
lowest held-out loss so far. Both hold model_name, model_module (the module that registered the model,
imported again when the checkpoint is loaded), model_kwargs, model_state, optimizer_state, epoch (the epoch in
progress, 0-based), batch_in_epoch (its batches already done), step (optimizer steps in all), best_loss, rng
(torch, cuda, numpy and python states) and config (TrainConfig.to_dict()).
"""

import os
import random
from pathlib import Path

import numpy as np
import torch

from colorization.errors import ConfigError
from colorization.models import import_model_module, model_module

LAST_NAME, BEST_NAME = "last.pt", "best.pt"


def load_checkpoint(path, missing: str = "no such checkpoint") -> dict:
    """A checkpoint's dict, on the CPU, loaded with weights_only=True (no code runs), with the module that
    registered its model imported so that the model can be built. FileNotFoundError "PATH: `missing`" when
    there is no file, ConfigError when it is not a readable checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {missing}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch reports damaged or foreign files with many exception types
        raise ConfigError(f"{path}: not a readable checkpoint ({error})") from None
    if "model_module" in checkpoint:
        import_model_module(checkpoint["model_module"])
    return checkpoint


def without_weights(checkpoint: dict) -> dict:
    """A checkpoint's dict less its model and optimizer state: what it says about the run, small to keep."""
    return {key: value for key, value in checkpoint.items() if key not in ("model_state", "optimizer_state")}


def checkpoint_state(config, model, optimizer, epoch, batch_in_epoch, step, best_loss) -> dict:
    """What last.pt and best.pt hold (the keys are listed in the module docstring)."""
    return {
        "model_name": config.model,
        "model_module": model_module(config.model),
        # A model whose options name a file it started from (eccv16's weights) says how to rebuild it without.
        "model_kwargs": model.checkpoint_kwargs() if hasattr(model, "checkpoint_kwargs") else config.model_opts,
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "step": step,
        "best_loss": best_loss,
        "rng": rng_states(),
        "config": config.to_dict(),
    }


def save_atomically(state: dict, path: Path) -> None:
    """Write to a temporary file and rename it: a crash never leaves a half-written checkpoint."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def rng_states() -> dict:
    # numpy's key array is stored as a list so that the checkpoint loads with weights_only=True.
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": numpy_state,
        "python": random.getstate(),
    }


def restore_rng_states(states: dict) -> None:
    """Put back what rng_states() saved. Per-GPU CUDA states only when this machine has as many GPUs as the
    one that saved them (resuming on another device count is still exact: shuffling and augmentation are
    seeded from (seed, epoch, index), never from these states; see colorization.train)."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy_state = dict(states["numpy"], state=dict(states["numpy"]["state"]))
    numpy_state["state"]["key"] = np.array(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)
    random.setstate(states["python"])


def run_checkpoint(run, name: str = LAST_NAME) -> Path:
    """The checkpoint of a run: RUN_DIR/<name> for a run folder, or the file itself; FileNotFoundError naming
    what is missing."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"{run}: no such run folder or checkpoint file")
    path = run / name if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (run folder or .pt file expected)")
    return path.resolve()

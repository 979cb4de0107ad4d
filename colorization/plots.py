"""Figures: training curves from a run's log.csv (the paper's figures 4-11) and a layer's activation maps for
one image (figures 24-27).

Figures are built with matplotlib's Figure class rather than pyplot, so no GUI backend or global figure state
is involved; savefig renders PNG through Agg.
"""

import math
from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure

from colorization.devices import resolve_device
from colorization.errors import ConfigError
from colorization.images import load_image
from colorization.inference import load_model, model_input
from colorization.train import LOG_NAME


def plot_curves(run_dir, out=None) -> Path:
    """Train and held-out loss (left) and learning rate (right, log scale) against the training step.

    Reads RUN_DIR/log.csv; writes `out` (default RUN_DIR/curves.png) and returns its path.
    """
    run_dir = Path(run_dir)
    log_path = run_dir / LOG_NAME
    if not log_path.is_file():
        raise FileNotFoundError(f"{log_path}: no training log (is {run_dir} a run folder?)")
    log = pd.read_csv(log_path)
    if log.empty:
        raise ConfigError(f"{log_path}: the log has no rows yet")
    out = Path(out) if out else run_dir / "curves.png"

    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, lr_ax = figure.subplots(1, 2)
    loss_ax.plot(log["step"], log["train_loss"], marker="o", label="train")
    if log["heldout_loss"].notna().any():
        loss_ax.plot(log["step"], log["heldout_loss"], marker="o", label="held-out")
    loss_ax.set(xlabel="training step (batches)", ylabel="loss", title=f"Loss ({run_dir.name})")
    loss_ax.legend()
    lr_ax.step(log["step"], log["lr"], where="post")
    lr_ax.set(xlabel="training step (batches)", ylabel="learning rate", yscale="log", title="Learning rate")
    figure.savefig(out, dpi=120)
    return out


def plot_activations(
    checkpoint, image, layer: int, out=None, *, device="auto", image_size=None, max_channels=64
) -> Path:
    """Grid of the channel activations of encoder layer `layer` (1-based) for one image.

    The image's L channel is fed at the training size (shorter side = image_size), as in `colorize`. Each
    channel is shown with its own colour scale; at most `max_channels` channels (the first ones) are drawn.
    Writes `out` (default <image stem>_layer<N>.png next to the checkpoint) and returns its path.
    """
    device = resolve_device(device)
    model, ckpt = load_model(checkpoint, device)
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, torch.nn.Sequential):
        raise ConfigError(f"model {ckpt['model_name']!r} has no `encoder` layer sequence to show activations of")
    if not 1 <= layer <= len(encoder):
        raise ConfigError(f"--layer must be between 1 and {len(encoder)} for model {ckpt['model_name']!r}")
    size = image_size or ckpt["config"]["image_size"]
    L_norm = model_input(load_image(image), size).to(device)

    captured = []
    hook = encoder[layer - 1].register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.inference_mode():
            model(L_norm)
    finally:
        hook.remove()
    activations = captured[0][0, :max_channels].float().cpu()

    columns = math.ceil(math.sqrt(len(activations)))
    rows = math.ceil(len(activations) / columns)
    figure = Figure(figsize=(1.3 * columns, 1.3 * rows + 0.5), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, channel in zip(axes.flat, activations):
        ax.imshow(channel.numpy(), cmap="viridis")
    total = captured[0].shape[1]
    figure.suptitle(f"{Path(image).name}: layer {layer} activations ({len(activations)} of {total} channels)")
    out = Path(out) if out else Path(checkpoint).parent / f"{Path(image).stem}_layer{layer}.png"
    figure.savefig(out, dpi=100)
    return out

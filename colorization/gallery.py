"""Comparison galleries as matplotlib figures: rows of grayscale | each model | ground truth.

Shared by the `compare` command and the web gallery download, so it must stay free of torch (the Django side
imports it): images come in as PIL images or numpy arrays. Figures are built without pyplot, so no GUI backend
or global figure state is involved and the caller saves them with figure.savefig.
"""

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

CELL_INCHES = 2.2
CAPTION_INCHES = 0.7


def as_array(image):
    """PIL image or array -> array for imshow; 2-D arrays are grayscale."""
    if isinstance(image, Image.Image) and image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"gallery images must be HxW or HxWx3/4 arrays, got shape {array.shape}")
    return array


def aspect(image):
    height, width = as_array(image).shape[:2]
    return height / width


def show(ax, image):
    array = as_array(image)
    value_max = 255 if np.issubdtype(array.dtype, np.integer) else 1.0
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=value_max)
    # Ticks and frame off, but not ax.axis("off"), which would also hide the row title drawn as a ylabel.
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# Titles, scene names and captions are free text: "$x^$" is a name, not mathtext (which raises on it).
# Figures with such text are built inside matplotlib.rc_context(LITERAL_TEXT).
LITERAL_TEXT = {"text.parse_math": False}


def gallery_figure(rows, caption):
    """A figure with one row per dict(title=str, images=[PIL.Image | array], labels=[str]) and a caption below.

    Column labels are written above a row's images only where they differ from the row above, so a
    regular grid reads as one header line. Returns the Figure (axes in row-major order, fig.axes); the
    caller saves it (fig.savefig) in whatever formats it needs.
    """
    if not rows:
        raise ValueError("a gallery needs at least one row")
    for row in rows:
        if len(row["images"]) != len(row["labels"]):
            raise ValueError(f"row {row['title']!r}: {len(row['images'])} images but {len(row['labels'])} labels")
    with matplotlib.rc_context(LITERAL_TEXT):
        return _gallery_figure(rows, caption)


def _gallery_figure(rows, caption):
    n_cols = max(len(row["images"]) for row in rows)
    # Each row as tall as its first image's aspect ratio asks for, so landscape photos leave no blank bands.
    heights = [CELL_INCHES * (aspect(row["images"][0]) if row["images"] else 1.0) for row in rows]
    figure = Figure(figsize=(CELL_INCHES * n_cols, sum(heights) + CAPTION_INCHES), layout="constrained")
    grid = figure.add_gridspec(len(rows), n_cols, height_ratios=heights)
    previous_labels = None
    for r, row in enumerate(rows):
        for c, (image, label) in enumerate(zip(row["images"], row["labels"])):
            ax = figure.add_subplot(grid[r, c])
            show(ax, image)
            if row["labels"] != previous_labels:
                ax.set_title(label, fontsize=10)
            if c == 0:
                ax.set_ylabel(row["title"], fontsize=9)
        previous_labels = row["labels"]
    # Wrapped text ignores text.parse_math (matplotlib 3.11), so the caption's dollar signs are escaped instead.
    figure.supxlabel(caption.replace("$", r"\$"), fontsize=9, wrap=True)
    return figure

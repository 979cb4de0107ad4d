"""Per-image colorization metrics, and `evaluate`, which scores a folder of predictions against a split.

All metrics take 8-bit RGB arrays (H, W, 3) of the same size: the prediction at the input's full resolution
against the ground-truth photo loaded at full resolution.

- psnr: peak signal-to-noise ratio on RGB, data range 255 (skimage). Identical images give +inf; the mean
  (`summarize`) leaves those out, and the table `evaluate` prints (`format_table`) says how many.
- ssim: structural similarity on RGB, channels averaged, 7x7 window (skimage defaults).
- ab_error: Euclidean distance between predicted and true (a, b) per pixel, in CIE Lab units, averaged.
- auc: area under the cumulative curve "fraction of pixels whose ab error <= t" for t = 0..150, divided by
  150 so it lies in [0, 1] (Zhang, Isola and Efros 2016); 1.0 means every pixel is exact.
- colourfulness: Hasler and Suesstrunk (2003) on 0-255 RGB of the prediction,
  sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) with rg = R - G, yb = (R + G) / 2 - B,
  WITHOUT the absolute values that DDColor and many blog versions take of rg and yb (those change the mean
  term). A gray image scores 0.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.color import rgb2lab
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from colorization.errors import ConfigError, ImageError
from colorization.images import first_few, load_image, prediction_of
from colorization.split import read_split

METRIC_COLUMNS = ("psnr", "ssim", "ab_error", "auc", "colourfulness")
AUC_MAX_THRESHOLD = 150
SSIM_WINDOW = 7


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB on 8-bit RGB; +inf for identical images (skimage would divide by zero)."""
    if mean_squared_error(target, pred) == 0:
        return math.inf
    return float(peak_signal_noise_ratio(target, pred, data_range=255))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM on 8-bit RGB; images smaller than the 7x7 window use the largest odd window that fits."""
    window = min(SSIM_WINDOW, _largest_odd_at_most(min(target.shape[:2])))
    if window < 3:
        raise ImageError(f"SSIM needs images of at least 3x3 pixels, got {target.shape[1]}x{target.shape[0]}")
    return float(structural_similarity(target, pred, win_size=window, channel_axis=2, data_range=255))


def ab_distances(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean distance in the (a, b) plane of CIE Lab (D65), flattened."""
    pred_ab = rgb2lab(pred)[..., 1:]
    target_ab = rgb2lab(target)[..., 1:]
    return np.linalg.norm(pred_ab - target_ab, axis=-1).ravel()


def ab_error(distances: np.ndarray) -> float:
    return float(distances.mean())


def ab_auc(distances: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD) -> float:
    """Normalized area under the cumulative ab-error curve over integer thresholds 0..max_threshold."""
    thresholds = np.arange(max_threshold + 1)
    within = np.searchsorted(np.sort(distances), thresholds, side="right") / distances.size
    return float(np.trapezoid(within, thresholds) / max_threshold)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness of an 8-bit RGB image, without absolute values (see above)."""
    red, green, blue = (rgb[..., channel].astype(np.float64) for channel in range(3))
    rg = red - green
    yb = 0.5 * (red + green) - blue
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def image_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All metrics for one prediction against its ground truth (both (H, W, 3) uint8, same size)."""
    if pred.shape != target.shape:
        raise ImageError(f"prediction is {_size(pred)} but the ground truth is {_size(target)}")
    distances = ab_distances(pred, target)
    return {
        "psnr": psnr(pred, target),
        "ssim": ssim(pred, target),
        "ab_error": ab_error(distances),
        "auc": ab_auc(distances),
        "colourfulness": colourfulness(pred),
    }


def default_metrics_path(pred_dir) -> Path:
    """Where `evaluate` writes its per-image CSV by default: PRED_DIR.metrics.csv, beside the folder.

    Not inside it: the predictions folder is what create_study imports as a model's outputs, and a CSV in
    it would be one more file there.
    """
    pred_dir = Path(pred_dir)
    if pred_dir.name in ("", ".."):  # ".", "..": no name of their own to add the suffix to
        pred_dir = pred_dir.resolve()
    return pred_dir.with_name(f"{pred_dir.name}.metrics.csv")


def evaluate(pred_dir, split_dir, subset: str = "heldout") -> pd.DataFrame:
    """Score PRED_DIR/<stem>.png (or <stem> with another image extension, see images.prediction_of) against
    every ground-truth image of the split's subset ("heldout"/"train").

    Returns one row per image (columns image, psnr, ssim, ab_error, auc, colourfulness), in split order.
    Checked before any image is scored: a missing PRED_DIR raises NotADirectoryError, missing predictions a
    FileNotFoundError naming the first few and how many; a prediction whose size differs from its ground
    truth raises ImageError naming both files.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise NotADirectoryError(f"{pred_dir}: no such folder of predictions (run colorize first)")
    split = read_split(split_dir)
    if subset not in ("heldout", "train"):
        raise ConfigError(f"subset must be 'heldout' or 'train', got {subset!r}")
    truths = getattr(split, subset)
    # All at once and before the slow scoring, so a half-finished colorize is reported in full, not one file
    # per attempt.
    predictions = {truth: prediction_of(pred_dir, truth.stem) for truth in truths}
    missing = [truth for truth, prediction in predictions.items() if prediction is None]
    if missing:
        raise FileNotFoundError(
            f"{pred_dir}: {len(missing)} of {len(truths)} predictions missing for the split's {subset} images: "
            f"{first_few([truth.stem for truth in missing])} (run colorize first; another tool's outputs need one "
            "image per held-out photo, named after it: <stem>.png, .jpg, ...)"
        )
    rows = []
    for truth_path, pred_path in predictions.items():
        pred = np.asarray(load_image(pred_path))
        target = np.asarray(load_image(truth_path))
        try:
            scores = image_metrics(pred, target)
        except ImageError as error:
            raise ImageError(f"{pred_path} vs {truth_path}: {error}") from None
        rows.append({"image": truth_path.stem, **scores})
    return pd.DataFrame(rows, columns=["image", *METRIC_COLUMNS])


def summarize(per_image: pd.DataFrame) -> pd.Series:
    """Mean of every metric; PSNR averages only the finite values (identical images have PSNR = inf)."""
    return per_image[list(METRIC_COLUMNS)].replace(math.inf, np.nan).mean()


def format_table(per_image: pd.DataFrame) -> str:
    """Per-image rows followed by a mean row, as printed by `python -m colorization evaluate`."""
    mean_row = pd.DataFrame([{"image": "mean", **summarize(per_image)}])
    table = pd.concat([per_image, mean_row], ignore_index=True)
    text = table.to_string(index=False, float_format=lambda value: f"{value:.4f}")
    identical = int(np.isinf(per_image["psnr"]).sum())
    if identical:
        text += f"\n({identical} image(s) identical to the ground truth: PSNR = inf, left out of the mean)"
    return text


def _largest_odd_at_most(n: int) -> int:
    return n if n % 2 else n - 1


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"

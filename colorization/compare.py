"""`compare`: several trained runs on one held-out set -> metrics table with intervals, per-image scores, gallery.

OUT/<name>/<stem>.png    colorizations by each run (existing files are kept, so a rerun only scores and plots)
OUT/per_image.csv        model, image, psnr, ssim, ab_error, auc, colourfulness
OUT/metrics.csv          one row per model: n_images, and for each metric its mean with a 95% bootstrap
                         interval (percentile method, 9999 resamples, seeded): psnr, psnr_ci_low, psnr_ci_high, ...
OUT/recipes.csv          how each run was trained (steps, epochs, loss, optimizer, learning rates, batch, image
                         size), which of those settings differ from its model's published recipe, and a note
                         where the weights came from elsewhere (released weights, a start from a file)
OUT/gallery.png, .pdf    rows of grayscale input | each model | ground truth
OUT/runs.json            which checkpoint and saturation produced each OUT/<name>/

Besides runs, `outputs` brings in models this package cannot run: a folder of another tool's colorizations of
the held-out images (DDColor's, say), one file per image named after it (<stem>.png, or the tool's own
extension). They are scored and shown as they are: no saturation is applied to them.

A run is a run folder, scored with its last.pt, or a checkpoint file. Not best.pt by default: train() picks
best.pt by its loss on the held-out images, and choosing a checkpoint on the images being scored would flatter
every model by an unknown amount.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image
from scipy.stats import bootstrap

from colorization.checkpoint import load_checkpoint, run_checkpoint, without_weights
from colorization.config import rates_by_epoch, recipe_changes
from colorization.errors import ConfigError
from colorization.gallery import gallery_figure
from colorization.images import grayscale_view, load_image, prediction_of
from colorization.inference import colorize_paths
from colorization.metrics import METRIC_COLUMNS, evaluate
from colorization.models import model_defaults, recipe
from colorization.split import check_trained_apart, read_split

PICKS = ("random", "worst", "best")
CONFIDENCE = 0.95
RESAMPLES = 9999
GALLERY_MAX_SIDE = 384
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
OUTPUT_FILES = ("metrics.csv", "per_image.csv", "recipes.csv", "gallery.png", "gallery.pdf", "runs.json")
# What recipes.csv shows of each run's stored config (colorization.config.TrainConfig).
RECIPE_COLUMNS = (
    "loss",
    "optimizer",
    "optimizer_options",
    "schedule",
    "lr",
    "batch_size",
    "micro_batch_size",
    "image_size",
)


@dataclass
class Comparison:
    metrics: pd.DataFrame
    per_image: pd.DataFrame
    recipes: pd.DataFrame
    gallery_images: list[str]
    caption: str
    figure: Figure
    files: list[Path]


def compare(split_dir, runs, out_dir, *, outputs=None, pick="random", n_rows=6, seed=0, device="auto", saturation=None):
    """Colorize SPLIT's held-out images with every run in `runs` ({name: run dir or checkpoint}), score, plot.

    outputs: {name: folder} of colorizations made elsewhere, scored and shown beside the runs (see above).

    The gallery shows n_rows held-out images (all of them if there are fewer), chosen by `pick`: "random"
    (seeded), or "worst"/"best" by PSNR averaged over the models. Returns a Comparison; files as listed above.
    """
    if pick not in PICKS:
        raise ConfigError(f"pick must be one of {', '.join(PICKS)}, got {pick!r}")
    outputs = {name: Path(folder) for name, folder in (outputs or {}).items()}
    if not runs and not outputs:
        raise ConfigError("compare needs at least one run or folder of outputs")
    if n_rows < 1:
        raise ConfigError(f"n_rows must be at least 1, got {n_rows}")
    both = sorted(set(runs) & set(outputs))
    if both:
        raise ConfigError(f"{', '.join(both)}: each name is either a run or a folder of outputs, not both")
    for name in [*runs, *outputs]:
        if not RUN_NAME.fullmatch(name) or name in OUTPUT_FILES:
            raise ConfigError(
                f"run name {name!r} must be letters, digits, '_', '.' or '-' and none of {', '.join(OUTPUT_FILES)} "
                "(it names a folder beside those files)"
            )
    split = read_split(split_dir)
    if not split.heldout:
        raise ConfigError(f"{split_dir}: the split has no held-out images to compare on")
    checkpoints = {name: run_checkpoint(run) for name, run in runs.items()}
    stored = {name: without_weights(load_checkpoint(path)) for name, path in checkpoints.items()}
    # Scores on images a run trained on would flatter it.
    check_trained_apart(split_dir, {name: record.get("config", {}) for name, record in stored.items()})
    for name, folder in outputs.items():
        if not folder.is_dir():
            raise NotADirectoryError(f"--outputs {name}={folder}: no such folder of colorized images")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record_runs(out_dir, checkpoints, saturation)

    folders = {name: out_dir / name for name in checkpoints} | outputs
    for name, checkpoint in checkpoints.items():
        colorize_paths(
            checkpoint, split.heldout, folders[name], saturation=saturation, device=device, skip_existing=True
        )
    scores = [evaluate(folder, split_dir).assign(model=name) for name, folder in folders.items()]
    per_image = pd.concat(scores, ignore_index=True)[["model", "image", *METRIC_COLUMNS]]
    metrics = summary_table(per_image, seed)
    recipes = recipe_table(checkpoints, stored, outputs)

    chosen = pick_images(per_image, [path.stem for path in split.heldout], pick, n_rows, seed)
    caption = gallery_caption(pick, len(chosen), len(split.heldout), seed, saturation)
    truths = {path.stem: path for path in split.heldout}
    rows = [gallery_row(stem, truths[stem], folders) for stem in chosen]
    figure = gallery_figure(rows, caption)

    files = [out_dir / name for name in OUTPUT_FILES[:5]]
    metrics_csv, per_image_csv, recipes_csv, gallery_png, gallery_pdf = files
    metrics.to_csv(metrics_csv, index=False)
    per_image.to_csv(per_image_csv, index=False)
    recipes.to_csv(recipes_csv, index=False)
    figure.savefig(gallery_png, dpi=150)
    figure.savefig(gallery_pdf)
    return Comparison(metrics, per_image, recipes, chosen, caption, figure, files)


def recipe_table(checkpoints, stored, outputs) -> pd.DataFrame:
    """One row per model: how it was trained, from its checkpoint's stored config (stored: {name: checkpoint
    dict}, checkpoints: {name: its file}), what differs from its model's
    published recipe ("changed_from_recipe", colorization.config.recipe_changes; "-" when nothing does), and
    where its weights came from when not from training here alone ("note"). Outputs rows say only where they
    came from: how another tool's model was trained is not known here."""
    rows = []
    for name, checkpoint in checkpoints.items():
        record = stored[name]  # load_checkpoint imported its model's module
        config = record.get("config", {})
        published = recipe(record["model_name"])
        rates = rates_by_epoch(config.get("schedule") or published.schedule, lr=config.get("lr"),
                               epochs=config.get("epochs"))  # fmt: skip
        row = {"model": name, "source": str(checkpoint), "model_name": record["model_name"]}
        row |= {"steps": record.get("step"), "epochs": len(rates)} | {key: config.get(key) for key in RECIPE_COLUMNS}
        changed = recipe_changes(config, published, model_defaults(record["model_name"]))
        row["changed_from_recipe"] = ", ".join(changed) or "-"
        rows.append(row | {"note": weights_note(record)})
    for name, folder in outputs.items():
        rows.append({"model": name, "source": f"outputs {folder}", "changed_from_recipe": "unknown",
                     "note": "another tool's outputs"})  # fmt: skip
    columns = ["model", "source", "model_name", "steps", "epochs", *RECIPE_COLUMNS, "changed_from_recipe", "note"]
    counts = ("steps", "epochs", "batch_size", "micro_batch_size", "image_size")
    # Whole numbers stay whole beside an outputs row, which has none of them.
    return pd.DataFrame(rows, columns=columns).astype({column: "Int64" for column in counts})


def weights_note(stored: dict) -> str:
    """Where a checkpoint's weights came from, when not from training here from scratch."""
    source = stored.get("source_weights")
    if source:
        return f"released weights {source.get('file')} (sha256 {str(source.get('sha256'))[:12]}...), not trained here"
    started_from = stored.get("config", {}).get("model_opts", {}).get("weights")
    if started_from not in (None, "none"):
        return f"trained from the weights {Path(started_from).name}"
    return ""


def record_runs(out_dir, checkpoints, saturation):
    """Refuse to mix: an OUT/<name>/ colorized by another checkpoint or saturation would be scored as this one."""
    record_path = out_dir / "runs.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for name, checkpoint in checkpoints.items():
        entry = {"checkpoint": str(checkpoint), "mtime": checkpoint.stat().st_mtime, "saturation": saturation}
        if name in record and record[name] != entry:
            raise ConfigError(
                f"{out_dir / name}: holds colorizations from {record[name]}, not {entry}; "
                f"delete that folder or choose another --out"
            )
        record[name] = entry
    record_path.write_text(json.dumps(record, indent=2))


def summary_table(per_image, seed):
    """One row per model: mean and percentile-bootstrap 95% interval of every metric.

    Percentile rather than BCa: BCa's jackknife costs O(n^2) on a 5,000-image set, and with thousands of
    images the two agree closely. PSNR is infinite for an image identical to its ground truth: those are left
    out of the PSNR mean and interval and counted in psnr_inf_count. An interval needs at least two images.
    """
    rows = []
    for model, group in per_image.groupby("model", sort=False):
        row = {"model": model, "n_images": len(group)}
        for metric in METRIC_COLUMNS:
            values = group[metric].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            row[metric] = values.mean() if values.size else math.nan
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = mean_interval(values, seed)
        row["psnr_inf_count"] = int(np.isinf(group["psnr"]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def mean_interval(values, seed):
    if values.size < 2:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return values[0], values[0]
    result = bootstrap(
        (values,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES, method="percentile", rng=seed
    )
    return result.confidence_interval.low, result.confidence_interval.high


def pick_images(per_image, stems, pick, n_rows, seed):
    """Stems of the gallery's images: seeded random sample in split order, or lowest/highest mean PSNR first."""
    count = min(n_rows, len(stems))
    if pick == "random":
        chosen = np.random.default_rng(seed).choice(len(stems), size=count, replace=False)
        return [stems[index] for index in sorted(chosen)]
    # An infinite PSNR (exact colours) ranks as the best; the stable sort breaks ties in split order.
    mean_psnr = per_image.groupby("image", sort=False)["psnr"].mean().reindex(stems)
    ranked = mean_psnr.sort_values(ascending=pick == "worst", kind="stable")
    return list(ranked.index[:count])


def gallery_caption(pick, count, total, seed, saturation):
    how = {
        "random": f"{count} of {total} held-out images drawn at random (seed {seed}), in split order",
        "worst": f"the {count} of {total} held-out images with the lowest PSNR averaged over the models, worst first",
        "best": f"the {count} of {total} held-out images with the highest PSNR averaged over the models, best first",
    }[pick]
    chroma = "" if saturation is None else f"; predicted chroma scaled by {saturation:g}"
    return f"Rows: {how}{chroma}. Columns: grayscale input (L of the ground truth), each model, ground truth."


def gallery_row(stem, truth_path, folders):
    """{name: folder of that model's colorizations}: one row of the gallery."""
    truth = load_image(truth_path)
    images = [grayscale_view(truth), *(load_image(prediction_of(folder, stem)) for folder in folders.values()), truth]
    return {
        "title": stem,
        "images": [thumbnail(image) for image in images],
        "labels": ["grayscale", *folders, "ground truth"],
    }


def thumbnail(image):
    # Full-resolution photos would make gallery.pdf tens of megabytes for no visible gain.
    small = image.copy()
    small.thumbnail((GALLERY_MAX_SIDE, GALLERY_MAX_SIDE), Image.Resampling.LANCZOS)
    return small

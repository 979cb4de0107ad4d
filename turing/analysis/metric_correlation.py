"""Do the colorization metrics predict which images fool people? Per model, each image's fooling rate next to
its metrics (turing.stimuli.metrics), and Spearman's rank correlation of the two with a bootstrap interval.

Why Spearman: the question is whether images with a better score are judged real more often, not whether the
relation is a straight line, and PSNR (dB) or colourfulness have no common scale with a share of votes. Why
per model: pooling models would mostly measure that one model is better on both counts (a correlation between
models, Simpson's paradox), not whether the metric orders one model's images as people do.

Why the interval resamples images: ρ describes how a model's images are spread, one point per image, and
what a study samples of them is its images (scenes drawn from the held-out set); other images made the same
way would give another ρ, which is what the bootstrap over images mimics. Each image keeps its observed rate,
so the noise of its votes travels with it. What the interval ignores is the participants: another sample
of people would give every image another rate, and the people one image had are not independent of the
people another image had (a lenient participant raises the rate of every image they judged), so the images
are not quite independent draws and the interval may be too narrow, most of all when few people judged
each image. Few votes per image also make each rate noisy, which pulls ρ towards 0 (attenuation): a ρ near 0
from a handful of votes per image says little. The report's intervals for rates (turing.analysis.crossed) count both
samples; this one counts images only.

Honest reporting: ρ is given with the number of images n beside it, never for fewer than MIN_IMAGES images,
and the interval is wide when n is small. In 200 simulated samples per size, images drawn independently from a
bivariate normal whose Spearman ρ is 0.5 (no vote noise), the median interval ran from -0.33 to 0.92 with 10
images and from 0.11 to 0.73 with 30, and 97.5% of the intervals held 0.5 at both sizes. Several metrics and
models make several intervals, of which about one in twenty misses its true ρ by chance.

The interval is scipy.stats.bootstrap's BCa interval, seeded, so the same votes give the same interval, from
N_RESAMPLES = 1999 resamples: on 30 images its ends moved by 0.003-0.008 (standard deviation over 20 seeds)
against a width of about 0.35, where 9999 resamples took 8 times as long, paid after every vote.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from turing.analysis.metric_values import METRICS
from turing.analysis.statistics import CONFIDENCE

# Below this many images no rank correlation is reported: 4 images without ties allow 11 values of rho, and
# chance alone puts them in perfect order (rho = +-1) one time in 12 (with 5 images, one time in 60).
MIN_IMAGES = 5
N_RESAMPLES = 1999
IMAGE_COLUMNS = ["stimulus", "scene", "model", "votes", "judged_real", "rate", *METRICS]
CORRELATION_COLUMNS = ["model", "metric", "images", "votes", "rho", "ci_low", "ci_high", "note"]


def image_table(per_image: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """IMAGE_COLUMNS for every generated image of ``stored`` (turing.stimuli.metrics.stored_metrics_frame), with
    its votes, judged_real and rate from ``per_image`` (statistics.per_image_table); 0 votes and no rate for images
    nobody judged yet. Sorted by model, then rate (highest first)."""
    counts = per_image[["stimulus", "votes", "judged_real", "rate"]]
    table = stored.merge(counts, on="stimulus", how="left")
    table = table.fillna({"votes": 0, "judged_real": 0}).astype({"votes": int, "judged_real": int, "rate": float})
    table = table.sort_values(["model", "rate", "scene"], ascending=[True, False, True], na_position="last")
    return table[IMAGE_COLUMNS].reset_index(drop=True)


def metric_correlations(images: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """CORRELATION_COLUMNS, one row per model and metric: Spearman's ρ between the fooling rate and the
    metric over the model's images that have votes and metrics (``images`` as image_table gives it), their
    number ``images`` and votes, and the BCa bootstrap interval over images (N_RESAMPLES resamples, seeded
    per model with ``seed``). Where there is no ρ or no interval, rho or ci_low/ci_high are NaN and ``note``
    says why; otherwise ``note`` is empty."""
    rows = []
    usable = images[(images["votes"] > 0) & images[list(METRICS)].notna().all(axis=1)]
    for model, group in usable.groupby("model", sort=True):
        rate = group["rate"].to_numpy(dtype=float)
        values = [group[metric].to_numpy(dtype=float) for metric in METRICS]
        base = {"model": model, "images": len(group), "votes": int(group["votes"].sum())}
        if len(group) < MIN_IMAGES:
            note = (
                f"only {len(group)} image{'s' if len(group) != 1 else ''} with votes: a rank correlation "
                f"needs at least {MIN_IMAGES}"
            )
            rows += [_row(base, metric, note=note) for metric in METRICS]
            continue
        if np.ptp(rate) == 0:
            note = f"every image was judged real equally often ({rate[0]:.0%}): nothing to rank"
            rows += [_row(base, metric, note=note) for metric in METRICS]
            continue
        low, high = _bootstrap(rate, values, seed)
        for metric, metric_values, ci_low, ci_high in zip(METRICS, values, low, high):
            if np.ptp(metric_values) == 0:
                rows.append(_row(base, metric, note="every image has the same value: nothing to rank"))
                continue
            rho = stats.spearmanr(rate, metric_values).statistic
            if np.isnan(ci_low):
                note = (
                    "no interval: the images are in perfect rank order, so nearly every resample gives the same ρ"
                    if np.isclose(abs(rho), 1)
                    else "no interval: too few distinct values for the bootstrap"
                )
                rows.append(_row(base, metric, rho=rho, note=note))
            else:
                rows.append(_row(base, metric, rho=rho, ci_low=ci_low, ci_high=ci_high))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def _row(base, metric, *, rho=np.nan, ci_low=np.nan, ci_high=np.nan, note=""):
    return {
        **base,
        "metric": metric,
        "rho": float(rho),
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "note": note,
    }


def _spearman(rate, *metrics, axis=-1):
    """Spearman's ρ of rate with each metric along ``axis``, for the bootstrap's batches of resamples, which
    scipy.stats.spearmanr cannot take: Pearson's r of the ranks, ties averaged, as spearmanr computes it. A
    resample in which the rates or a metric are all equal shows no rank association: 0 there, where r is
    undefined."""
    rate_ranks = stats.rankdata(rate, axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rhos = [
            stats.pearsonr(rate_ranks, stats.rankdata(metric, axis=axis), axis=axis).statistic for metric in metrics
        ]
    return np.nan_to_num(np.stack(rhos), nan=0.0)


def _bootstrap(rate, values, seed):
    """(lows, highs) of the BCa intervals of every metric's ρ, from one set of resampled images, so that
    the metrics of a model are compared on the same resamples. NaN where BCa is undefined (a degenerate
    bootstrap distribution, as when every resample gives ρ = 1)."""
    with warnings.catch_warnings():
        # BCa's acceleration divides 0 by 0 on a degenerate distribution; scipy then returns NaN and says so.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.bootstrap(
            (rate, *values),
            _spearman,
            paired=True,
            vectorized=True,
            n_resamples=N_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    return result.confidence_interval.low, result.confidence_interval.high

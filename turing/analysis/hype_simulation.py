"""Simulated HYPE-time studies: evaluators whose accuracy grows with the exposure, judging images that differ,
through the protocol's own staircase (turing.analysis.staircase), for the calibration benchmark. Plain numpy
and pandas, no Django.

The model. Evaluator i answers an image j shown for t ms correctly with probability

    psi(t) = 1/2 + (1/2 - lapse) * (1 - exp(-(t / (a_i * exp(b_j))) ** slope))

a Weibull psychometric function with guess rate 1/2 (real or generated), a lapse rate (a slip even when the
image is clear) and the same slope for everyone; b_j ~ N(0, image_sd) is how much longer (on the log scale)
image j needs than the typical image, each stimulus (a scene's real photo, or its generated image) its own.

What is estimated, the truth: evaluator i's threshold T_i is the exposure at which they answer
TARGET_ACCURACY (0.794, where the 3-down-1-up staircase converges) of the images correctly, their accuracy
averaged over the population of images (not over the images a study happens to draw, nor at the typical image:
b_j shifts a steep function and the average is a shallower one). Thresholds differ between evaluators:
log T_i ~ N(log(threshold_ms) - person_sd**2 / 2, person_sd), so that the mean of T_i is threshold_ms. A
threshold outside the exposures the staircase can show cannot be measured there, and counts as the nearest
end of that range (MIN_MS..MAX_MS): the truth is the mean over the population of evaluators of
clip(T_i, MIN_MS, MAX_MS) (true_score; with the designs of benchmarks/calibration_hype_time.py it is within
2 ms of threshold_ms).

Each study has ``scenes`` scenes, each with a real photo and one model's image; every evaluator judges
``trials`` distinct scenes in a random order, round(trials * real_fraction) of them as the real photo, the
rest as the generated image (as turing.participant.enrollment assigns a hype-time participant one model).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from turing.analysis import staircase
from turing.analysis.psychometric import weibull_correct
from turing.vocabulary import GENERATED, REAL, SCORED

MODEL = "model"
# Gauss-Hermite nodes for averages over a standard normal.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class HypeDesign:
    threshold_ms: float
    slope: float
    trials: int
    lapse: float = 0.02
    image_sd: float = 0.0
    person_sd: float = 0.2
    evaluators: int = 30
    scenes: int = 200
    real_fraction: float = 0.5

    def __post_init__(self):
        if self.trials > self.scenes:
            raise ValueError(f"each evaluator needs {self.trials} distinct scenes and the design has {self.scenes}")
        if not 0 <= self.lapse < 1 - staircase.TARGET_ACCURACY:
            raise ValueError(f"a lapse rate of {self.lapse} leaves no exposure at the staircase's target accuracy")


def threshold_offset(design):
    """log T_i - log a_i: how far above an evaluator's Weibull scale their threshold lies, the same for everyone
    (their accuracy averaged over images reaches TARGET_ACCURACY there)."""

    def excess(offset):
        accuracy = weibull_correct(offset, design.image_sd * _NODES, design.slope, design.lapse) @ _WEIGHTS
        return accuracy - staircase.TARGET_ACCURACY

    return optimize.brentq(excess, -20, 20, xtol=1e-12)


def _log_threshold_mean(design):
    return np.log(design.threshold_ms) - design.person_sd**2 / 2


def true_score(design):
    """The mean over the population of evaluators of clip(T_i, MIN_MS, MAX_MS), in ms."""
    thresholds = np.exp(_log_threshold_mean(design) + design.person_sd * _NODES)
    return float(np.clip(thresholds, staircase.MIN_MS, staircase.MAX_MS) @ _WEIGHTS)


def simulate_hype_votes(design, rng):
    """One simulated study's scored votes (participant, kind, position, source, scene, stimulus, exposure_ms,
    answer, correct), in the long format that turing.analysis.exposure_thresholds takes."""
    n, trials = design.evaluators, design.trials
    log_scale = (
        _log_threshold_mean(design) + design.person_sd * rng.standard_normal(n) - threshold_offset(design)
    )  # log a_i
    image_offset = rng.normal(0, design.image_sd, size=(2, design.scenes))  # [real, generated] x scene
    scenes = np.argsort(rng.random((n, design.scenes)), axis=1)[:, :trials]
    reals = round(trials * design.real_fraction)
    generated = np.argsort(rng.random((n, trials)), axis=1) >= reals  # reals at random positions
    offsets = image_offset[generated.astype(int), scenes]
    exposures = np.empty((n, trials), dtype=np.int64)
    correct = np.empty((n, trials), dtype=bool)
    exposure, streak = np.full(n, staircase.START_MS), np.zeros(n, dtype=np.int64)
    for position in range(trials):
        exposures[:, position] = exposure
        accuracy = weibull_correct(np.log(exposure), log_scale + offsets[:, position], design.slope, design.lapse)
        correct[:, position] = rng.random(n) < accuracy
        exposure, streak = staircase.step(exposure, streak, correct[:, position])
    source = np.where(generated, MODEL, REAL).ravel()
    judged_real = correct.ravel() == (source == REAL)
    return pd.DataFrame(
        {
            "participant": np.repeat(np.arange(n), trials),
            "kind": SCORED,
            "position": np.tile(np.arange(1, trials + 1), n),
            "source": source,
            "scene": scenes.ravel(),
            "stimulus": (generated.astype(int) * design.scenes + scenes).ravel(),
            "exposure_ms": exposures.ravel(),
            "answer": np.where(judged_real, REAL, GENERATED),
            "correct": correct.ravel(),
        }
    )

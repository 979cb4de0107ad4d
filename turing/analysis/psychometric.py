"""Exposure thresholds from a staircase's answers: a Weibull psychometric function per evaluator, fitted to all
their scored trials with the other evaluators' help (empirical Bayes), and the linearization that the
crossed interval of their mean needs. Plain numpy and scipy, no Django.

The model. Evaluator i answers correctly at exposure t (ms) with probability

    P(t) = GUESS + (1 - GUESS - LAPSE) * (1 - exp(-exp(slope * (log t - theta_i) + c)))

a Weibull function of log exposure with guess rate 1/2 (real or generated) and lapse rate LAPSE, written so that
P(exp(theta_i)) is the staircase's TARGET_ACCURACY (c fixes that): exp(theta_i) is evaluator i's threshold,
the exposure at which they answer 79.4% of the images correctly, the point the 3-down-1-up staircase converges
to. The images an evaluator meets are a random draw, so P is their accuracy averaged over images, and the
threshold is that of the average.

Why a hierarchical fit and not one fit per evaluator. A staircase of 48-150 trials pins a threshold only
roughly (with a shallow function, to +-30% on the log scale), and an evaluator's slope far worse. Fitted one
evaluator at a time, by maximum likelihood, the slopes come out too steep when they share one (each threshold
fitted to its own trials makes every evaluator look sharper: the incidental-parameter problem) and wild when
free, and the mean of exp(theta_hat) lies above the mean threshold by about half the estimate's variance. So
thresholds are modelled as drawn from a population: theta_i ~ N(log_mean, spread), every evaluator with one
slope. log_mean, spread and slope maximise the likelihood with each theta_i integrated out (on a grid of
GRID_STEP over LOG_GRID), which has no incidental parameters; each evaluator's threshold is then the mean of
their posterior, and the score, the mean of those, is the mean threshold of the population. Measured with
benchmarks/calibration_hype_time.py (the figures are in benchmarks/README.md).

A threshold outside the exposures shown (low..high, the staircase's range) cannot be measured: the score
averages thresholds clipped to that range (an evaluator whom a model fools at every exposure counts as high).

The lapse rate is fixed, not fitted: a 3-down-1-up staircase rarely shows exposures long enough to see lapses,
and fitted it trades off against the slope. LAPSE = 0.02 (an assumption, within the 0-0.06 of Wichmann and Hill
2001, "The psychometric function: I. Fitting, sampling, and goodness of fit", Perception & Psychophysics 63(8)).

The linearization (for turing.analysis.crossed). The score g = (1/n) sum_i h_i(eta) with h_i the posterior mean
of evaluator i and eta = (log_mean, log spread, log slope) fitted by the marginal likelihood, so (two-step
M-estimation) g moves with evaluator i by (h_i - g) / n + a' s_i, where s_i is their score for eta and
a = H^-1 dg/deta (H the Hessian of the marginal log-likelihood). Each trial's part is the infinitesimal
jackknife, the derivative with respect to a weight on its likelihood term: (1/n) Cov_i(clipped threshold,
log P(its answer)) + a' d/deta E_i[log P(its answer)], with Cov_i and E_i over evaluator i's posterior. A
parameter at its bound is held where it is.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from turing.analysis.staircase import MAX_MS, MIN_MS, TARGET_ACCURACY

GUESS = 0.5
LAPSE = 0.02
GRID_STEP = 0.01
# log ms: wide enough that the population of thresholds (log_mean +- 4 spreads) stays inside for any threshold
# the staircase can measure.
LOG_GRID = np.arange(np.log(25), np.log(4000), GRID_STEP)
# Bounds of the spread (sd of log thresholds) and of the slope. A spread under 0.05 (thresholds within 5% of
# each other) is as good as none at this grid.
SPREAD_BOUNDS = (0.05, 2.0)
SLOPE_BOUNDS = (0.3, 20.0)
# Relative step of the finite differences in eta.
_DELTA = 1e-4


def weibull_correct(log_ms, log_scale, slope, lapse=LAPSE):
    """P(correct) at exposure exp(log_ms) ms for a Weibull function of scale exp(log_scale) ms."""
    return GUESS + (1 - GUESS - lapse) * -np.expm1(-np.exp(slope * (log_ms - log_scale)))


def scale_offset(lapse=LAPSE, target=TARGET_ACCURACY):
    """log(threshold) - log(Weibull scale) for slope 1: the exposure at which weibull_correct reaches ``target``
    lies exp(scale_offset / slope) above the scale."""
    return float(np.log(-np.log1p(-(target - GUESS) / (1 - GUESS - lapse))))


@dataclass(frozen=True)
class Staircases:
    """One model's scored trials, counted per evaluator and exposure: ``trials[i, l]`` answers of evaluator i at
    exposure ``exposure_ms[l]``, ``correct[i, l]`` of them correct."""

    exposure_ms: np.ndarray
    trials: np.ndarray
    correct: np.ndarray

    @classmethod
    def from_trials(cls, person, exposure_ms, correct, people):
        """From one row per trial: ``person`` codes 0..people-1, the exposure asked, whether it was answered
        correctly. Returns the Staircases and each trial's exposure code."""
        levels, level = np.unique(np.asarray(exposure_ms, dtype=float), return_inverse=True)
        if len(levels) and levels[0] <= 0:
            raise ValueError(f"an exposure must be positive, got {levels[0]} ms")
        shape = (people, len(levels))
        trials = np.zeros(shape)
        right = np.zeros(shape)
        np.add.at(trials, (person, level), 1)
        np.add.at(right, (person, level), np.asarray(correct, dtype=float))
        return cls(levels, trials, right), level


@dataclass(frozen=True)
class ThresholdFit:
    """A fitted population of evaluators. ``thresholds_ms``: each evaluator's posterior mean threshold, clipped to
    the range shown; ``score_ms``: their mean. ``person_influence[i]``: how the score moves with evaluator i (sums
    to 0); ``trial_influence[y][i, l]``: the infinitesimal-jackknife part of one trial of evaluator i at exposure
    l answered correctly (y = 1) or not (y = 0)."""

    thresholds_ms: np.ndarray
    score_ms: float
    log_mean: float
    spread: float
    slope: float
    person_influence: np.ndarray
    trial_influence: tuple[np.ndarray, np.ndarray]


class _Model:
    """The marginal likelihood of one model's staircases as a function of eta = (log_mean, log spread, log slope),
    on the grid of log thresholds."""

    def __init__(self, staircases, low, high):
        self.x = np.log(staircases.exposure_ms)
        self.right = staircases.correct
        self.wrong = staircases.trials - staircases.correct
        self.clipped = np.clip(np.exp(LOG_GRID), low, high)
        self.offset = scale_offset()

    def log_answers(self, log_slope):
        """log P(correct), log P(wrong) and their derivatives in log slope, exposures x grid."""
        slope = np.exp(log_slope)
        distance = self.x[:, None] - LOG_GRID[None, :]
        u = np.exp(np.minimum(slope * distance + self.offset, 50.0))
        correct = GUESS + (1 - GUESS - LAPSE) * -np.expm1(-u)
        change = (1 - GUESS - LAPSE) * u * np.exp(-u) * distance * slope
        return np.log(correct), np.log1p(-correct), change / correct, -change / (1 - correct)

    def posterior(self, eta):
        """Each evaluator's posterior weights on the grid, their marginal log-likelihoods and their scores for
        eta (evaluators x 3)."""
        log_mean, log_spread, log_slope = eta
        spread = np.exp(log_spread)
        log_right, log_wrong, slope_right, slope_wrong = self.log_answers(log_slope)
        z = (LOG_GRID - log_mean) / spread
        log_prior = -0.5 * z * z
        prior = np.exp(log_prior - log_prior.max())
        prior /= prior.sum()
        joint = self.right @ log_right + self.wrong @ log_wrong + np.log(np.maximum(prior, 1e-300))
        top = joint.max(axis=1, keepdims=True)
        weights = np.exp(joint - top)
        total = weights.sum(axis=1)
        weights /= total[:, None]
        score = np.column_stack(
            [
                (weights @ z - prior @ z) / spread,
                weights @ (z * z) - prior @ (z * z),
                (weights * (self.right @ slope_right + self.wrong @ slope_wrong)).sum(axis=1),
            ]
        )
        return weights, np.log(total) + top[:, 0], score

    def objective(self, eta):
        _, marginal, score = self.posterior(eta)
        return -marginal.sum(), -score.sum(axis=0)

    def score(self, eta):
        """The mean of the evaluators' posterior mean clipped thresholds."""
        return float((self.posterior(eta)[0] @ self.clipped).mean())

    def expected_log_answers(self, eta):
        """E_i[log P(correct)] and E_i[log P(wrong)] at each exposure, evaluators x exposures."""
        weights = self.posterior(eta)[0]
        log_right, log_wrong, _, _ = self.log_answers(eta[2])
        return weights @ log_right.T, weights @ log_wrong.T


def _start(model):
    log_right, log_wrong, _, _ = model.log_answers(np.log(2.0))
    own = LOG_GRID[(model.right @ log_right + model.wrong @ log_wrong).argmax(axis=1)]
    return np.array([np.median(own), np.log(0.3), np.log(2.0)])


def fit_thresholds(staircases, low=MIN_MS, high=MAX_MS):
    """The ThresholdFit of one model's staircases (at least one evaluator)."""
    model = _Model(staircases, low, high)
    bounds = [
        (LOG_GRID[0] + 1, LOG_GRID[-1] - 1),
        tuple(np.log(SPREAD_BOUNDS)),
        tuple(np.log(SLOPE_BOUNDS)),
    ]
    eta = optimize.minimize(model.objective, _start(model), jac=True, method="L-BFGS-B", bounds=bounds).x
    weights, _, scores = model.posterior(eta)
    thresholds = weights @ model.clipped
    n = len(thresholds)
    score = float(thresholds.mean())
    free = [p for p, (lower, upper) in enumerate(bounds) if lower + _DELTA < eta[p] < upper - _DELTA]
    steps = [np.eye(3)[p] * _DELTA for p in free]
    gradient = [model.objective(eta + d)[1] - model.objective(eta - d)[1] for d in steps]
    hessian = np.array([g[free] / (2 * _DELTA) for g in gradient])
    slopes = np.array([(model.score(eta + d) - model.score(eta - d)) / (2 * _DELTA) for d in steps])
    # A flat direction (one evaluator, or answers that do not depend on the exposure) moves nothing estimable.
    a = np.linalg.lstsq((hessian + hessian.T) / 2, slopes, rcond=None)[0] if free else np.zeros(0)
    person = (thresholds - score) / n + scores[:, free] @ a
    log_right, log_wrong, _, _ = model.log_answers(eta[2])
    centred = weights * (model.clipped[None, :] - thresholds[:, None]) / n
    influence = [centred @ log_wrong.T, centred @ log_right.T]
    for coefficient, d in zip(a, steps):
        plus, minus = model.expected_log_answers(eta + d), model.expected_log_answers(eta - d)
        for y in (0, 1):
            influence[y] += coefficient * (plus[1 - y] - minus[1 - y]) / (2 * _DELTA)
    return ThresholdFit(
        thresholds_ms=thresholds,
        score_ms=score,
        log_mean=float(eta[0]),
        spread=float(np.exp(eta[1])),
        slope=float(np.exp(eta[2])),
        person_influence=person,
        trial_influence=(influence[0], influence[1]),
    )

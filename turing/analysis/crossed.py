"""Uncertainty when both the people and the images were sampled: the variance of a statistic under two-way
(participant x scene) clustering, and the intervals and tests built on it.

Votes are correlated twice over: one person's votes share their skill and bias, and one scene's votes share
how convincing its images are. An interval that treats votes as independent (Wilson), or resamples only
participants, ignores one or both sources and gets narrower, not more accurate, as a study grows.

The method, and why this one:
- Owen's pigeonhole bootstrap (Owen 2007, "The pigeonhole bootstrap", Annals of Applied Statistics 1(2))
  resamples participants and scenes independently. Its variance is V_P + V_S + V_C: the spread of the
  participants' sums, of the scenes' sums and of the cells' sums of the statistic's influence values,
  where V_C, the spread of the (participant, scene) cells' sums, is already inside V_P and V_S (with one
  vote per participant and scene, as turing.participant.enrollment arranges, V_C is the vote-level variance). With
  binary votes V_C is the largest part, so the bootstrap roughly triples
  the variance of a study whose people and images are alike and over-covers badly (Owen discusses the
  bias). Subtracting the double-counted term gives the two-way cluster-robust variance of Cameron,
  Gelbach and Miller (2011, "Robust inference with multiway clustering", J. Business & Economic
  Statistics 29(2)): V = V_P + V_S - V_C, each term with its small-sample factor G / (G - 1), and
  t quantiles with min(G_P, G_S) - 1 degrees of freedom, as they recommend. Participants of different
  groups are different people, sampled apart: V_P is summed per group, each with its own factor, and the
  degrees of freedom are the Satterthwaite (1946) approximation of the whole V_P + V_S - V_C from each
  term's G - 1, so that treatment against a small control group is judged by how little the control group
  can tell. (With a single group this is not used: measured, it over-covers a small poster session, 0.974,
  where min(G_P, G_S) - 1 gives 0.947.) It is computed in closed form
  from sums per participant and per scene (turing.analysis.tally): no resampling, no seed, the same answer on every
  page load, and as cheap for 10^6 votes as for 10^3.
- V_P + V_S - V_C is a difference and can come out at or below 0 by chance (or a rounding error above 0);
  the votes-independent variance (the sum of squared influences) is used then. V is not floored at that
  variance otherwise: a floor
  over-covers when people and images are alike (measured: 0.97-0.99 where the target is 0.95).
- Rates get a Wilson interval at the effective sample size n / design effect, with the t quantile in place
  of z (Korn and Graubard 1998, "Confidence intervals for proportions with small expected number of
  positive counts estimated from survey data", Survey Methodology 24(2)): it stays inside [0, 1] and
  reduces to Wilson when the votes are independent. Other statistics (differences, HYPE-infinity, d') get
  estimate +- t * sqrt(V), from their linearization (delta method).
- A factor with one level (one participant, or a per-image rate's one scene) was not sampled: its term and
  the cell term are left out, and the degrees of freedom come from the other factor.

Calibration measured by simulation: benchmarks/calibration.py, figures in benchmarks/README.md.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

CONFIDENCE = 0.95
# V_P + V_S - V_C below this share of the votes-independent variance counts as 0.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Sums:
    """A statistic's influence summed per sampling unit: row i says that unit ``unit[i]`` (a participant or
    a scene code) contributes ``value[i]`` to statistic ``group[i]``. A unit may have several rows in one
    statistic (a participant's votes on two models); they are added before squaring. ``stratum`` (optional)
    says which independently sampled stratum a unit belongs to (a participant's group: treatment and
    control are different people)."""

    group: np.ndarray
    unit: np.ndarray
    value: np.ndarray
    stratum: np.ndarray | None = None


def _square_sums(sums, n_groups):
    """Per statistic: the sum over its units of (the unit's total influence) squared, and how many units."""
    if not len(sums.group):
        return np.zeros(n_groups), np.zeros(n_groups, dtype=np.int64)
    width = int(sums.unit.max()) + 1
    codes, keys = pd.factorize(sums.group.astype(np.int64) * width + sums.unit)
    totals = np.bincount(codes, weights=sums.value)
    owner = keys // width
    return (np.bincount(owner, weights=totals * totals, minlength=n_groups), np.bincount(owner, minlength=n_groups))


def _factor_term(square_sums, levels):
    """A factor's variance term with its small-sample factor G / (G - 1); 0 where it has a single level."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(levels > 1, square_sums * levels / (levels - 1), 0.0)


def _stratified_term(sums, n_groups):
    """Per statistic: the factor's variance term summed over strata, each stratum with its own G_h / (G_h - 1);
    the number of units; the term's degrees of freedom: G - 1 with one stratum, the Welch-Satterthwaite
    combination of the strata's G_h - 1 with several, NaN if some stratum has a single unit (its variance
    cannot be estimated: one control participant says nothing about how control participants differ); the
    sum over strata of term_h^2 / (G_h - 1), for a Satterthwaite combination with other terms; and the
    number of strata."""
    stratum = np.zeros(len(sums.group), dtype=np.int64) if sums.stratum is None else sums.stratum.astype(np.int64)
    n_strata = int(stratum.max(initial=0)) + 1
    squares, levels = _square_sums(Sums(sums.group * n_strata + stratum, sums.unit, sums.value), n_groups * n_strata)
    squares, levels = squares.reshape(n_groups, n_strata), levels.reshape(n_groups, n_strata)
    terms = _factor_term(squares, levels)
    total = terms.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(levels > 1, terms * terms / (levels - 1), 0.0).sum(axis=1)
        welch = total * total / spread
    strata = (levels > 0).sum(axis=1)
    df = np.where(strata <= 1, levels.sum(axis=1) - 1.0, np.where(total > 0, welch, (levels - 1).clip(0).sum(axis=1)))
    df = np.where((strata > 1) & ((levels == 1).any(axis=1)), np.nan, df)
    return total, levels.sum(axis=1), df, spread, strata


def crossed_variance(participants, scenes, vote_squares, votes, n_groups, cells=None):
    """Two-way cluster-robust variance of each statistic, with its degrees of freedom and participant count.

    ``participants`` and ``scenes`` are Sums of the statistics' influence values (for a rate k / n, each
    vote adds (judged_real - rate) / n); ``vote_squares[g]`` is the sum over statistic g's votes of their
    squared influence and ``votes[g]`` their number. ``cells`` are the Sums per (participant, scene) when
    some participant judged a scene more than once; by default every vote is its own cell. Returns
    (variance, df, participants) arrays, one entry per statistic; df is inf where neither factor has two
    levels (the votes-independent interval), NaN where a participant stratum has a single participant.
    """
    vote_squares = np.asarray(vote_squares, dtype=float)
    participant_term, people, participant_df, participant_spread, strata = _stratified_term(participants, n_groups)
    by_scene, scene_count = _square_sums(scenes, n_groups)
    by_cell, cell_count = (vote_squares, np.asarray(votes)) if cells is None else _square_sums(cells, n_groups)
    scene_term, cell_term = _factor_term(by_scene, scene_count), _factor_term(by_cell, cell_count)
    both = (people > 1) & (scene_count > 1)
    variance = np.where(
        both,
        participant_term + scene_term - cell_term,
        np.where(people > 1, participant_term, np.where(scene_count > 1, scene_term, vote_squares)),
    )
    df = np.fmin(np.where(people > 1, participant_df, np.inf), np.where(scene_count > 1, scene_count - 1.0, np.inf))
    # Participants in independent groups: the Satterthwaite degrees of freedom of the whole V_P + V_S - V_C.
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = participant_spread + scene_term**2 / (scene_count - 1) + cell_term**2 / (cell_count - 1)
        whole = np.where(both & (strata > 1) & (variance > 0), variance * variance / spread, np.inf)
    df = np.fmin(df, whole)
    df = np.where(np.isnan(participant_df) & (people > 1), np.nan, df)
    # A difference of sums: at or near 0 (rounding leaves 1e-18 where the terms cancel exactly, as they do when
    # a few participants give identical counts) it says nothing, and would shrink an interval to a point.
    return np.where(variance > TOLERANCE * vote_squares, variance, vote_squares), df, people


def one_factor_variance(vote_squares, units):
    """The variance when one factor alone was sampled and each of its ``units`` gave one vote (an image's
    rate over the participants who judged it): the vote-level variance times G / (G - 1), df G - 1."""
    units = np.asarray(units)
    return _factor_term(np.asarray(vote_squares, dtype=float), units), np.where(units > 1, units - 1.0, np.inf)


def t_quantile(df, confidence=CONFIDENCE):
    """Two-sided t quantile; the normal one where df is inf."""
    return student_t.ppf(1 - (1 - confidence) / 2, df)


def rate_interval(judged_real, votes, variance, df, confidence=CONFIDENCE):
    """Wilson interval at the effective sample size votes / design effect, t quantile in place of z.

    Arrays in, (low, high) arrays out; NaN where there are no votes. A rate of 0 or 1 has no estimated
    design effect and gets the plain Wilson interval with the t quantile. The design effect may come out
    below 1 (fewer disagreements within people than chance would give); it is used as estimated.
    """
    k, n = np.asarray(judged_real, dtype=float), np.asarray(votes, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        binomial = p * (1 - p) / n
        effective = np.where(binomial > 0, n * binomial / variance, n)
    return wilson(p, effective, t_quantile(df, confidence))


def wilson(p, n, z):
    """Wilson score interval for a share p of n trials at quantile z (arrays); NaN where n is 0."""
    p, n, z = np.asarray(p, dtype=float), np.asarray(n, dtype=float), np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def wald_interval(estimate, variance, df, confidence=CONFIDENCE):
    """estimate +- t * sqrt(variance)."""
    half = t_quantile(df, confidence) * np.sqrt(variance)
    return estimate - half, estimate + half


def t_test(estimate, variance, df):
    """Two-sided p-value of estimate / sqrt(variance) against t with df degrees of freedom."""
    return float(2 * student_t.sf(abs(estimate) / np.sqrt(variance), df))


def minimum_detectable_difference(se, df, *, alpha=0.05, power=0.8):
    """The smallest true difference a two-sided test at level ``alpha`` with this standard error detects with
    probability ``power``: (t_{1 - alpha/2} + t_{power}) * se, with the test's degrees of freedom."""
    return (student_t.ppf(1 - alpha / 2, df) + student_t.ppf(power, df)) * se

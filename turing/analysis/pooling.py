"""Pooling one model's fooling rate over studies, and ranking the pooled rates (turing.report.leaderboard reads
the studies from the database and calls these).

The method, and why this one:
- A random-effects meta-analysis of the per-study rates (statsmodels.stats.meta_analysis.combine_effects),
  rather than a logistic mixed model with crossed participant, image and study effects, which statsmodels
  fits only by variational Bayes (BinomialBayesMixedGLM), without the calibrated frequentist intervals the
  report stands on. The per-study variances are those the report's intervals use, so a study's row on the
  leaderboard and its report agree.
- The between-study variance tau^2 by Paule and Mandel's estimator (method_re="iterated"), which Veroniki et
  al. (2016, "Methods to estimate the between-study variance and its uncertainty in meta-analysis", Research
  Synthesis Methods 7(1)) recommend over DerSimonian and Laird's; combine_effects offers no REML. With two
  studies the two coincide: tau^2 = ((y1 - y2)^2 - v1 - v2) / 2, floored at 0.
- The interval is Hartung and Knapp's (Sidik and Jonkman's) with t on k - 1 degrees of freedom, its variance
  floored at the plain random-effects one (the modification of Röver et al. 2015, BMC Medical Research
  Methodology 15:99, so that a small Q never narrows it). The plain z interval undercovers when studies are
  few, which is every leaderboard. Measured on 400 simulated leaderboards per row (each study 30 people, 40
  scenes, 10 images of the model per person, participant and image logit sds 0.7 and 0.8, the model's rate 0.3
  on the logit scale shifted per study by a normal with the study sd; tests/turing/report/test_leaderboard.py runs the
  4-study, sd 0.5 case), coverage of the mean rate over studies, this method against DerSimonian-Laird with z:
  2 studies, study sd 0.5: 1.00 against 0.74; 4 studies, sd 0: 0.995 against 0.97; 4 studies, sd 0.5: 0.94
  against 0.83; 4 studies, sd 1.0: 0.94 against 0.83; 8 studies, sd 0.5: 0.93 against 0.89.
  With two studies t has one degree of freedom and the interval is wide (0.85 wide on average in that
  simulation): two studies say little about how much studies differ, and the interval says so.
- A model judged in one study only gets that study's own crossed interval (as its report shows it): the
  spread between studies is not estimated, and the row says so (studies = 1, tau empty).
- A study in which every vote on a model gave the same answer has a crossed variance of 0, which would give
  it all the weight; its variance is taken as the votes-independent one of the log-linear rate
  (k + 0.5) / (n + 1) instead.
- Within-study variances are taken as known, as every meta-analysis does; they rest on the study's own
  participants and scenes (the report warns when those are few).

Ranks, as Chatbot Arena shows them: higher fooling rate ranks first. A model's best rank is 1 + the number of
models whose interval lies wholly above its own (their lower bound above its upper bound); its worst rank is
the number of ranked models minus those whose interval lies wholly below its own. "rank 1–2" says that only
one other model could be ahead of it; equal bounds show as one number. Non-overlap of two 95% intervals is a
stricter test than a test of the difference, so the ranges err on the wide side, and there is no correction for
the number of models. Models are ranked within a protocol: a 2AFC fooling rate (50% is indistinguishable) and
a single-image one measure different things.

"""

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.meta_analysis import combine_effects

from turing.analysis import crossed
from turing.analysis import statistics as st

# One study's estimate per model: its votes, how many of them said real, the rate, the rate's crossed variance
# and degrees of freedom, and the number of participants who judged the model.
ESTIMATE_COLUMNS = ["model", "votes", "judged_real", "rate", "variance", "df", "participants"]


def model_estimates(votes, models: Iterable[str] = ()) -> pd.DataFrame:
    """ESTIMATE_COLUMNS per model judged in the treatment group of ``votes`` (a Tally or a votes table), and a
    zero-vote row for each of ``models`` nobody judged."""
    tally = st.as_tally(votes)
    rows = []
    judged = st.models(tally)
    for model in judged:
        side = st.Side(model)
        masks = side.masks(tally)
        k, n = st.side_counts(tally, side, masks)
        variance, df = st.sides_variance(tally, [st.Side(model, coefficient=1 / n)])
        if variance <= 0:
            # Every vote the same answer: a weight of 1 / 0 would let this study decide alone (module docstring).
            smoothed = (k + 0.5) / (n + 1)
            variance = smoothed * (1 - smoothed) / n
        participants = tally.by_participant.loc[masks[0], "participant"].nunique()
        rows.append((model, n, k, k / n, variance, df, participants))
    rows += [(model, 0, 0, math.nan, math.nan, math.nan, 0) for model in sorted(set(models) - set(judged))]
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def study_interval(estimates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's own crossed interval, as the study's report computes it."""
    return crossed.rate_interval(estimates["judged_real"], estimates["votes"], estimates["variance"], estimates["df"])


def pool(estimates: pd.DataFrame) -> dict:
    """One model's rate pooled over studies (rows of ESTIMATE_COLUMNS with votes, one per study): rate, ci_low,
    ci_high, se, tau (the between-study standard deviation; NaN with one study), studies, votes, participants."""
    estimates = estimates[estimates["votes"] > 0]
    counts = {
        "studies": len(estimates),
        "votes": int(estimates["votes"].sum()),
        "participants": int(estimates["participants"].sum()),
    }
    if len(estimates) == 0:
        return {**dict.fromkeys(["rate", "ci_low", "ci_high", "se", "tau"], math.nan), **counts}
    if len(estimates) == 1:
        low, high = study_interval(estimates)
        row = estimates.iloc[0]
        return {
            "rate": float(row["rate"]),
            "ci_low": float(low[0]),
            "ci_high": float(high[0]),
            "se": math.sqrt(row["variance"]),
            "tau": math.nan,
            **counts,
        }
    # statsmodels divides by zero for I^2 (unused here) when the studies agree exactly.
    with np.errstate(divide="ignore"):
        result = combine_effects(estimates["rate"].to_numpy(), estimates["variance"].to_numpy(), method_re="iterated")
    variance = max(result.var_hksj_re, result.sd_eff_w_re**2)
    low, high = crossed.wald_interval(result.mean_effect_re, variance, len(estimates) - 1)
    return {
        "rate": float(result.mean_effect_re),
        "ci_low": float(np.clip(low, 0, 1)),
        "ci_high": float(np.clip(high, 0, 1)),
        "se": math.sqrt(variance),
        "tau": math.sqrt(result.tau2),
        **counts,
    }


def rank_bounds(lows: Sequence[float], highs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst rank of each interval, highest first (see the module's docstring); NaN intervals are not
    ranked (NaN bounds) and do not count."""
    low, high = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    ranked = ~(np.isnan(low) | np.isnan(high))
    above = (low[None, ranked] > high[:, None]).sum(axis=1)
    below = (high[None, ranked] < low[:, None]).sum(axis=1)
    best = np.where(ranked, 1 + above, np.nan)
    worst = np.where(ranked, ranked.sum() - below, np.nan)
    return best, worst


def rank_label(best: float, worst: float) -> str:
    """ "1–2", or "1" when both bounds agree; "" for an unranked model."""
    if math.isnan(best):
        return ""
    return f"{best:.0f}" if best == worst else f"{best:.0f}–{worst:.0f}"

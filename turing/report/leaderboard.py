"""A leaderboard across studies: every model's fooling rate per protocol, pooled over the studies that judged
it, with study as a random effect, and its rank range as Chatbot Arena shows it ("rank 1–2").

Per study, each model's fooling rate and its variance come from the report's own statistics: the share of the
treatment group's votes on the model's images judged real, and the two-way cluster-robust variance over
participants and images (turing.analysis.crossed, the pigeonhole bootstrap's variance without its double count), of
the votes the report counts by default (people only, scored trials: reporting.Selection()). Studies differ
(other people, other scenes, other instructions, a poster hall or a crowd platform), so a model's rates in two
studies are not two samples of one number: the pooled rate is the mean over a population of studies, and the
spread between studies counts in its interval.

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

A study's protocol says whether it scores models by a rate (turing.protocols, Protocol.scores_by_rate); a study
whose protocol does not (HYPE-time's exposure thresholds) is listed as left out, with the reason, rather than
pooled as if it were another protocol.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.meta_analysis import combine_effects

from turing.analysis import crossed
from turing.analysis import statistics as st
from turing.models import Study
from turing.protocols import protocol_of
from turing.report.reporting import Selection, study_tally

# One study's estimate per model: its votes, how many of them said real, the rate, the rate's crossed variance
# and degrees of freedom, and the number of participants who judged the model.
ESTIMATE_COLUMNS = ["model", "votes", "judged_real", "rate", "variance", "df", "participants"]
PER_STUDY_COLUMNS = ["protocol", "model", "study", "votes", "rate", "ci_low", "ci_high"]
LEADERBOARD_COLUMNS = [
    "protocol",
    "model",
    "rank",
    "rank_best",
    "rank_worst",
    "rate",
    "ci_low",
    "ci_high",
    "se",
    "tau",
    "studies",
    "votes",
    "participants",
]


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


@dataclass(frozen=True)
class StudyEntry:
    """An included study: its protocol, its per-model estimates (None if it was left out), and why it was left
    out ("" if it was not)."""

    study: Study
    estimates: pd.DataFrame | None
    left_out: str = ""

    @property
    def votes(self) -> int:
        return 0 if self.estimates is None else int(self.estimates["votes"].sum())


@dataclass(frozen=True)
class Leaderboard:
    """studies: every study asked for, in order; per_study: PER_STUDY_COLUMNS; table: LEADERBOARD_COLUMNS, per
    protocol by best rank, then rate."""

    studies: list[StudyEntry]
    per_study: pd.DataFrame
    table: pd.DataFrame

    @property
    def protocols(self) -> list[str]:
        return list(dict.fromkeys(self.table["protocol"]))


def _entry(study: Study, selection: Selection) -> StudyEntry:
    if not protocol_of(study).scores_by_rate:
        return StudyEntry(study, None, f"protocol {study.protocol!r} scores models by another measure than a rate")
    # The share of a model's images judged real; a 2afc pair stores what its colorization was judged (real:
    # picked as the photograph), so the same share is its fooling rate, ranked apart from single-image rates.
    return StudyEntry(study, model_estimates(study_tally(study, selection), study.model_names))


def leaderboard(studies: Iterable[Study], selection: Selection = Selection()) -> Leaderboard:
    """The leaderboard of ``studies``: each model's rate per protocol pooled over the studies that judged it."""
    entries = [_entry(study, selection) for study in studies]
    per_study = pd.DataFrame(
        [
            (entry.study.protocol, row.model, entry.study.slug, row.votes, row.rate, low, high)
            for entry in entries
            if entry.estimates is not None
            for row, low, high in zip(entry.estimates.itertuples(), *study_interval(entry.estimates))
        ],
        columns=PER_STUDY_COLUMNS,
    )
    estimates = pd.concat(
        [entry.estimates.assign(protocol=entry.study.protocol) for entry in entries if entry.estimates is not None]
        or [pd.DataFrame(columns=[*ESTIMATE_COLUMNS, "protocol"])],
        ignore_index=True,
    )
    rows = [
        {"protocol": protocol, "model": model, **pool(group)}
        for (protocol, model), group in estimates.groupby(["protocol", "model"], sort=True)
    ]
    table = pd.DataFrame(rows, columns=[column for column in LEADERBOARD_COLUMNS if not column.startswith("rank")])
    ranked = []
    for _, group in table.groupby("protocol", sort=True):
        best, worst = rank_bounds(group["ci_low"], group["ci_high"])
        group = group.assign(rank_best=best, rank_worst=worst, rank=list(map(rank_label, best, worst)))
        ranked.append(group.sort_values(["rank_best", "rate", "model"], ascending=[True, False, True]))
    table = pd.concat(ranked, ignore_index=True) if ranked else table.assign(rank="", rank_best=[], rank_worst=[])
    return Leaderboard(entries, per_study, table[LEADERBOARD_COLUMNS])

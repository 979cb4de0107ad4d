"""A leaderboard across studies: every model's fooling rate per protocol, pooled over the studies that judged
it, with study as a random effect, and its rank range as Chatbot Arena shows it ("rank 1–2").

Per study, each model's fooling rate and its variance come from the report's own statistics: the share of the
treatment group's votes on the model's images judged real, and the two-way cluster-robust variance over
participants and images (turing.analysis.crossed, the pigeonhole bootstrap's variance without its double count), of
the votes the report counts by default (people only, scored trials: turing.report.data.Selection()). Studies differ
(other people, other scenes, other instructions, a poster hall or a crowd platform), so a model's rates in two
studies are not two samples of one number: the pooled rate is the mean over a population of studies, and the
spread between studies counts in its interval.

The method (a random-effects meta-analysis with Hartung and Knapp's interval) and the ranks are
turing.analysis.pooling's; this module reads each study's votes and assembles the table.

A study's protocol says whether it scores models by a rate (turing.protocols, Protocol.scores_by_rate); a study
whose protocol does not (HYPE-time's exposure thresholds) is listed as left out, with the reason, rather than
pooled as if it were another protocol.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from turing.analysis.pooling import ESTIMATE_COLUMNS, model_estimates, pool, rank_bounds, rank_label, study_interval
from turing.models import Study
from turing.protocols import protocol_of
from turing.report.data import Selection, study_tally

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

"""A study's scored votes summed twice, per participant and per image: everything the report's statistics need.

Every statistic the report prints (rates, their crossed intervals, model differences, HYPE-infinity, d') is a
function of sums of votes per (participant, source) and per (stimulus, group, expertise) when a participant
judges each scene at most once, as turing.participant.enrollment arranges. Summing once, in numpy, makes the
statistics cost as much for 10^6 votes as for 10^3; only building the tally touches every vote. Votes from
another design, where a participant judges several versions of a scene, also need sums per (participant,
stimulus): the tally keeps those too, then (``by_cell``). Plain numpy and pandas, no Django: a tally comes
from a votes table (an export, a simulation)
or from the database (turing.report.data.study_tally), through the same ``from_codes``.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from turing.vocabulary import EXPERTISE, EXPERTISE_WORD, GROUPS, NO, NOT_ANSWERED, REAL, YES

# Stored answers (the database's) and their words (an exported CSV's).
_EXPERTISE_OF: dict[bool | str, str] = {answer: word for answer, word in EXPERTISE_WORD.items()} | {YES: YES, NO: NO}


@dataclass(frozen=True)
class Tally:
    """Scored votes summed per (participant, source) and per (stimulus, group, expertise).

    participants: one row per participant code 0..P-1: participant (the id as given), label, group, expertise.
    stimuli: one row per stimulus code 0..S-1: stimulus (token), scene, source, scene_code.
    by_participant: participant (code), source, group, expertise, votes, judged_real; one row per participant
        and source they judged.
    by_stimulus: stimulus (code), scene_code, scene, source, group, expertise, votes, judged_real; one row per
        stimulus and group and expertise that judged it.
    by_cell: None when no participant judged a scene twice; else participant, scene_code, source, group,
        expertise, votes, judged_real per participant and stimulus.
    Every row table also has person_votes and person_real: its votes each weighted by 1 / (the votes its
    participant gave on that source), summed, and the weights of the votes judged real summed. A participant's
    by_participant row then holds 1 and their own rate; the per-person rate (the mean of the participants' own
    rates) is these columns' person_real / person_votes, as the per-vote rate is judged_real / votes, and its
    variance needs them per image (turing.analysis.statistics.rate_table).
    Text columns are categoricals; ``votes`` is the number of votes in all.
    """

    participants: pd.DataFrame
    stimuli: pd.DataFrame
    by_participant: pd.DataFrame
    by_stimulus: pd.DataFrame
    by_cell: pd.DataFrame | None
    votes: int

    @property
    def row_tables(self):
        """The tables a statistic's votes are read from: by_participant, by_stimulus, and by_cell if any."""
        return [self.by_participant, self.by_stimulus] + ([] if self.by_cell is None else [self.by_cell])

    @cached_property
    def row_arrays(self):
        """row_tables with each column as its array: numpy, or a pandas Categorical for a text column. The
        statistics read these columns dozens of times per report, and a pandas column access costs more than
        the arithmetic on a table this size."""
        return [
            {
                name: column.array if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()
                for name, column in table.items()
            }
            for table in self.row_tables
        ]

    @cached_property
    def sampling_units(self):
        """Per row table, each row's sampled unit: its participant, its scene, its (participant, scene) cell."""
        by_participant, by_stimulus, *by_cell = self.row_arrays
        units = [by_participant["participant"], by_stimulus["scene_code"]]
        for cells in by_cell:
            units.append(cells["participant"] * len(self.stimuli) + cells["scene_code"])
        return units

    @classmethod
    def from_codes(cls, participant, stimulus, judged_real, participants, stimuli):
        """Tally of votes given as codes: ``participant[i]`` and ``stimulus[i]`` index rows of the ``participants``
        (participant, label, group, expertise) and ``stimuli`` (stimulus, scene, source) tables, and
        ``judged_real[i]`` is 1 where vote i said "real"."""
        participant = np.asarray(participant, dtype=np.int64)
        stimulus = np.asarray(stimulus, dtype=np.int64)
        judged_real = np.asarray(judged_real, dtype=np.int64)
        participants = participants.reset_index(drop=True).assign(
            group=pd.Categorical(participants["group"], categories=GROUPS),
            expertise=pd.Categorical(
                [_EXPERTISE_OF.get(value, NOT_ANSWERED) for value in participants["expertise"]], categories=EXPERTISE
            ),
        )
        scene_code, scenes = pd.factorize(stimuli["scene"])
        source_code, sources = pd.factorize(stimuli["source"], sort=True)
        stimuli = stimuli.reset_index(drop=True).assign(
            scene=pd.Categorical.from_codes(scene_code, scenes),
            source=pd.Categorical.from_codes(source_code, sources),
            scene_code=scene_code,
        )

        n_sources = len(sources)
        counts = _sum_by(participant * n_sources + source_code[stimulus], judged_real, len(participants) * n_sources)
        by_participant = pd.DataFrame(
            {
                "participant": counts["key"] // n_sources,
                "source": pd.Categorical.from_codes(counts["key"] % n_sources, sources),
            }
        )
        by_participant["group"] = _attribute(participants["group"], by_participant["participant"].to_numpy())
        by_participant["expertise"] = _attribute(participants["expertise"], by_participant["participant"].to_numpy())
        by_participant["votes"], by_participant["judged_real"] = counts["votes"], counts["judged_real"]
        by_participant["person_votes"] = 1.0
        by_participant["person_real"] = counts["judged_real"] / counts["votes"]
        # Each vote's weight in its participant's own rate on its source.
        weight = 1.0 / counts["votes"][counts["row"]]

        cohorts = len(GROUPS) * len(EXPERTISE)
        cohort = (
            participants["group"].cat.codes.to_numpy() * len(EXPERTISE) + participants["expertise"].cat.codes.to_numpy()
        )[participant]
        counts = _sum_by(stimulus * cohorts + cohort, judged_real, len(stimuli) * cohorts, weight)
        code = counts["key"] // cohorts
        by_stimulus = pd.DataFrame(
            {
                "stimulus": code,
                "scene_code": scene_code[code],
                "scene": pd.Categorical.from_codes(scene_code[code], scenes),
                "source": pd.Categorical.from_codes(source_code[code], sources),
                "group": pd.Categorical.from_codes(counts["key"] % cohorts // len(EXPERTISE), GROUPS),
                "expertise": pd.Categorical.from_codes(counts["key"] % len(EXPERTISE), EXPERTISE),
                **_count_columns(counts),
            }
        )
        by_cell = None
        n_scenes = len(scenes)
        if _repeats(participant * n_scenes + scene_code[stimulus], len(participants) * n_scenes):
            n_stimuli = len(stimuli)
            counts = _sum_by(participant * n_stimuli + stimulus, judged_real, len(participants) * n_stimuli, weight)
            person, code = counts["key"] // n_stimuli, counts["key"] % n_stimuli
            by_cell = pd.DataFrame(
                {
                    "participant": person,
                    "scene_code": scene_code[code],
                    "source": pd.Categorical.from_codes(source_code[code], sources),
                    "group": _attribute(participants["group"], person),
                    "expertise": _attribute(participants["expertise"], person),
                    **_count_columns(counts),
                }
            )
        return cls(participants, stimuli, by_participant, by_stimulus, by_cell, len(participant))

    @classmethod
    def from_votes(cls, votes):
        """Tally of a long votes table (columns participant, group, source, scene, stimulus, answer; expertise
        and label optional), such as export_votes writes."""
        participant, people = pd.factorize(votes["participant"])
        stimulus, tokens = pd.factorize(votes["stimulus"])
        first_of_person = pd.Series(range(len(votes))).groupby(participant).first().to_numpy() if len(votes) else []
        first_of_image = pd.Series(range(len(votes))).groupby(stimulus).first().to_numpy() if len(votes) else []
        participants = pd.DataFrame(
            {
                "participant": people,
                "label": votes["label"].to_numpy()[first_of_person] if "label" in votes else "",
                "group": votes["group"].to_numpy()[first_of_person],
                "expertise": votes["expertise"].to_numpy()[first_of_person] if "expertise" in votes else None,
            }
        )
        stimuli = pd.DataFrame(
            {
                "stimulus": tokens,
                "scene": votes["scene"].to_numpy()[first_of_image],
                "source": votes["source"].to_numpy()[first_of_image],
            }
        )
        return cls.from_codes(participant, stimulus, (votes["answer"] == REAL).to_numpy(), participants, stimuli)


def as_tally(votes):
    """A Tally as it is; a long votes table tallied."""
    return votes if isinstance(votes, Tally) else Tally.from_votes(votes)


def _attribute(column, rows):
    """A categorical column's values at ``rows``, still categorical."""
    return pd.Categorical.from_codes(column.cat.codes.to_numpy()[rows], column.cat.categories)


def _repeats(key, size):
    """Whether some key in 0..size-1 occurs twice. While the range is small, a flag per possible key (one byte
    each, where _sum_by's counts take eight): 0.01 s per 10^6 votes, where hashing them took 0.09 s."""
    if size <= 32 * len(key) + 8_000_000:
        seen = np.zeros(size, dtype=bool)
        seen[key] = True
        return np.count_nonzero(seen) < len(key)
    return pd.Series(key).duplicated().any()


def _count_columns(counts):
    return {name: counts[name] for name in ("votes", "judged_real", "person_votes", "person_real")}


def _sum_by(key, judged_real, size, weight=None):
    """Votes and judged-real sums per distinct key, keys ascending, and each vote's row among them ("row");
    with a weight per vote, the weights' sums too (person_votes, and person_real over the votes judged real).
    bincount while the key range is small."""
    if size <= 4 * len(key) + 1_000_000:
        votes = np.bincount(key, minlength=size)
        present = np.flatnonzero(votes)
        row = (np.cumsum(votes > 0) - 1)[key]
        judged = np.bincount(key, weights=judged_real, minlength=size)[present]
        votes = votes[present]
    else:
        present, row = np.unique(key, return_inverse=True)
        votes, judged = np.bincount(row), np.bincount(row, weights=judged_real)
    sums = {"key": present, "row": row, "votes": votes, "judged_real": judged.astype(np.int64)}
    if weight is not None:
        sums["person_votes"] = np.bincount(row, weights=weight, minlength=len(present))
        sums["person_real"] = np.bincount(row, weights=weight * judged_real, minlength=len(present))
    return sums

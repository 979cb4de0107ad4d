"""HYPE-time scores from a study's votes: each evaluator's exposure threshold, each model's mean threshold with
its crossed interval, and the paper's modal exposure beside it. Plain numpy and pandas, no Django
(turing.protocols.hype_time reports them; benchmarks/calibration_hype_time.py measures them).

- An evaluator's threshold is their exposure at the staircase's target accuracy (79.4% correct for 3-down-1-up),
  fitted to all their scored trials: turing.analysis.psychometric says how (a Weibull function with a fixed
  lapse rate, the evaluators of one model fitted together, empirical Bayes) and why.
- A model's HYPE-time is the mean threshold of its evaluators, in ms. Its 95% interval counts both samples a
  study draws, the evaluators and the images: the two-way cluster-robust variance of turing.analysis.crossed
  (evaluators x scenes) of the score's linearization (psychometric.ThresholdFit), t quantiles.
- modal_ms is Zhou et al.'s statistic, for comparison with published numbers: the mean over evaluators of the
  exposure each was shown most often (their Figure 3: "The modal exposure measures their perceptual
  threshold"; on a tie, the mean of the tied exposures, our choice). It is not the 79.4% point: it sits where
  the staircase dwells, which depends on the start, the step and the range as much as on the evaluator.
"""

import numpy as np
import pandas as pd

from turing.analysis import crossed
from turing.analysis.psychometric import Staircases, fit_thresholds
from turing.analysis.staircase import CORRECT_IN_A_ROW, MIN_MS, START_MS, STEP_MS
from turing.vocabulary import REAL, SCORED

# Fewest scored trials per evaluator for the interval (hype_time_table withholds it below). The staircase must
# be able to travel from the start to the floor within the first half (CORRECT_IN_A_ROW correct answers per
# step, 8 steps: 48 trials), and the fit needs enough trials around the threshold; what the calibration
# measured at 48, 100 and 150 trials is in benchmarks/README.md (HYPE-time).
MIN_TRIALS = 2 * CORRECT_IN_A_ROW * (START_MS - MIN_MS) // STEP_MS
NEEDED_COLUMNS = ("participant", "kind", "position", "source", "scene", "exposure_ms", "correct")
PERSON_COLUMNS = ["participant", "model", "trials", "threshold_ms", "modal_ms", "one_answer"]
TABLE_COLUMNS = [
    "model",
    "participants",
    "trials",
    "hype_time_ms",
    "ci_low",
    "ci_high",
    "modal_ms",
    "short",
    "one_answer",
]


def _modal(exposures):
    values, counts = np.unique(exposures, return_counts=True)
    return float(values[counts == counts.max()].mean())


def _staircase_trials(votes):
    """The scored trials with an exposure of every evaluator who judged exactly one model, in order, with the
    model each judged."""
    missing = [column for column in NEEDED_COLUMNS if column not in votes]
    if missing:
        raise ValueError(f"the votes table has no column {', '.join(missing)}: HYPE-time needs {NEEDED_COLUMNS}")
    scored = votes[(votes["kind"] == SCORED) & votes["exposure_ms"].notna()].sort_values(["participant", "position"])
    models = scored[scored["source"] != REAL].groupby("participant")["source"].agg(["nunique", "first"])
    one_model = models.index[models["nunique"] == 1]
    scored = scored[scored["participant"].isin(one_model)]
    return scored.assign(model=scored["participant"].map(models["first"]).to_numpy())


def _fits(votes):
    """Per model: its trials (with person codes), the evaluators' ids and the ThresholdFit."""
    trials = _staircase_trials(votes)
    for model, own in trials.groupby("model", sort=True):
        person, people = pd.factorize(own["participant"], sort=True)
        staircases, level = Staircases.from_trials(
            person, own["exposure_ms"].to_numpy(dtype=float), own["correct"].to_numpy(dtype=bool), len(people)
        )
        yield model, own.assign(person=person, level=level), people, fit_thresholds(staircases)


def participant_thresholds(votes: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluator who judged one model with an exposure on record: participant, model, trials (scored),
    threshold_ms (their posterior mean exposure at 79.4% correct, within the staircase's range), modal_ms (the
    exposure they were shown most often), one_answer (the same answer to every scored image)."""
    return _person_table(list(_fits(votes)))


def _person_table(fits):
    rows = []
    for model, own, people, fit in fits:
        grouped = own.groupby("person", sort=True)
        answers = grouped["answer"].nunique() if "answer" in own else None
        rows.append(
            pd.DataFrame(
                {
                    "participant": people,
                    "model": model,
                    "trials": grouped.size().to_numpy(),
                    "threshold_ms": fit.thresholds_ms,
                    "modal_ms": grouped["exposure_ms"].agg(_modal).to_numpy(dtype=float),
                    # Frames of exposures alone (no answers) have no such participant.
                    "one_answer": answers.to_numpy() == 1 if answers is not None else False,
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PERSON_COLUMNS)


def _variance(fits):
    """crossed.crossed_variance of the models' scores, from each fit's linearization: an evaluator's part spread
    evenly over their trials plus each trial's own part, centred within the evaluator so that the evaluators'
    sums stay their parts."""
    participants, scenes, votes = [], [], []
    for code, (_, own, _, fit) in enumerate(fits):
        person = own["person"].to_numpy()
        level = own["level"].to_numpy()
        wrong, right = (influence[person, level] for influence in fit.trial_influence)
        trial = np.where(own["correct"].to_numpy(dtype=bool), right, wrong)
        counts = np.bincount(person)
        mean_trial = np.bincount(person, weights=trial) / counts
        value = fit.person_influence[person] / counts[person] + trial - mean_trial[person]
        participants.append((np.full(len(counts), code), np.arange(len(counts)), fit.person_influence))
        scenes.append((np.full(len(own), code), pd.factorize(own["scene"])[0], value))
        votes.append((code, value))
    groups = len(fits)
    vote_squares = np.bincount([c for c, _ in votes], weights=[float(v @ v) for _, v in votes], minlength=groups)
    vote_counts = np.bincount([c for c, _ in votes], weights=[len(v) for _, v in votes], minlength=groups)
    join = [np.concatenate(parts) for parts in zip(*participants)]
    person_sums = crossed.Sums(join[0], join[1], join[2])
    join = [np.concatenate(parts) for parts in zip(*scenes)]
    scene_sums = crossed.Sums(join[0], join[1], join[2])
    return crossed.crossed_variance(person_sums, scene_sums, vote_squares, vote_counts, groups)


def score_table(votes: pd.DataFrame) -> pd.DataFrame:
    """hype_time_table's columns with every interval there is (NaN only with fewer than two evaluators), whether or
    not the evaluators had MIN_TRIALS: for the calibration, which measures the interval at any length."""
    fits = list(_fits(votes))
    if not fits:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    variance, df, _ = _variance(fits)
    scores = np.array([fit.score_ms for *_, fit in fits])
    low, high = crossed.wald_interval(scores, variance, df)
    people = _person_table(fits)
    by_model = people.groupby("model", sort=True)
    counts = by_model.size().to_numpy()
    return pd.DataFrame(
        {
            "model": [model for model, *_ in fits],
            "participants": counts,
            "trials": by_model["trials"].sum().to_numpy(),
            "hype_time_ms": scores,
            "ci_low": np.where(counts < 2, np.nan, low),
            "ci_high": np.where(counts < 2, np.nan, high),
            "modal_ms": by_model["modal_ms"].mean().to_numpy(),
            "short": by_model["trials"].agg(lambda trials: int((trials < MIN_TRIALS).sum())).to_numpy(),
            "one_answer": by_model["one_answer"].sum().to_numpy().astype(int),
        }
    )[TABLE_COLUMNS]


def hype_time_table(votes: pd.DataFrame) -> pd.DataFrame:
    """Per model: participants (evaluators), trials (their scored trials), HYPE-time (hype_time_ms: their mean
    threshold), its 95% interval (ci_low, ci_high; NaN with fewer than two evaluators, or when any had fewer than
    MIN_TRIALS scored trials), modal_ms (the paper's statistic), short (how many evaluators had fewer than
    MIN_TRIALS) and one_answer: how many gave the same answer to every image. Such an evaluator is wrong on every
    real photo (or every generated image), so their staircase climbs to the longest exposure whatever they saw,
    like someone the model fools completely, and one who always answers "generated" passes every attention
    check; the report names their count beside the score."""
    table = score_table(votes)
    withheld = table["short"] > 0
    table.loc[withheld, ["ci_low", "ci_high"]] = np.nan
    return table

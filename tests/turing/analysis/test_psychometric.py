"""The exposure-threshold fit (turing.analysis.psychometric), its linearization, and the HYPE-time table built on
it (turing.analysis.exposure_thresholds), on answers drawn from known psychometric functions."""

import numpy as np
import pandas as pd
import pytest

from turing.analysis import exposure_thresholds, psychometric
from turing.analysis.hype_simulation import HypeDesign, simulate_hype_votes
from turing.analysis.staircase import MAX_MS, TARGET_ACCURACY
from turing.vocabulary import GENERATED, REAL, SCORED


def constant_stimuli(thresholds_ms, slope, rng, per_level=60, levels=(150, 250, 400, 600, 900)):
    """Answers at fixed exposures (the method of constant stimuli) of evaluators with these thresholds."""
    person, exposure, correct = [], [], []
    offset = psychometric.scale_offset() / slope
    for i, threshold in enumerate(thresholds_ms):
        for level in levels:
            p = psychometric.weibull_correct(np.log(level), np.log(threshold) - offset, slope)
            person += [i] * per_level
            exposure += [level] * per_level
            correct += list(rng.random(per_level) < p)
    return np.array(person), np.array(exposure, dtype=float), np.array(correct)


def fit(person, exposure, correct):
    staircases, _ = psychometric.Staircases.from_trials(person, exposure, correct, person.max() + 1)
    return psychometric.fit_thresholds(staircases)


def test_the_threshold_is_where_the_weibull_function_reaches_the_staircase_target():
    for slope in (1.5, 3.0):
        scale = np.log(400) - psychometric.scale_offset() / slope
        assert psychometric.weibull_correct(np.log(400), scale, slope) == pytest.approx(TARGET_ACCURACY)


def test_the_fit_recovers_known_thresholds_and_slope():
    rng = np.random.default_rng(1)
    truth = np.exp(rng.normal(np.log(350), 0.25, size=40))
    result = fit(*constant_stimuli(truth, 2.5, rng))
    assert result.score_ms == pytest.approx(truth.mean(), rel=0.03)
    assert result.slope == pytest.approx(2.5, rel=0.2)
    assert result.spread == pytest.approx(0.25, abs=0.08)
    assert np.corrcoef(np.log(truth), np.log(result.thresholds_ms))[0, 1] > 0.9


def test_a_threshold_beyond_the_longest_exposure_counts_as_the_longest():
    """An evaluator at chance everywhere (one answer to every image, or a model that fools them at any exposure)
    has no threshold within reach: the fit must neither run off to its grid's end nor fail."""
    rng = np.random.default_rng(2)
    person, exposure, correct = constant_stimuli([300, 320, 280, 310], 3.0, rng)
    chance = rng.random(300) < 0.5
    result = fit(
        np.concatenate([person, np.full(300, 4)]),
        np.concatenate([exposure, np.full(300, 1000.0)]),
        np.concatenate([correct, chance]),
    )
    assert result.thresholds_ms[4] == pytest.approx(MAX_MS, rel=0.02)
    # The others' thresholds stay near what they are without that evaluator; less pulled towards each other, as
    # the evaluators now look more different.
    alone = fit(person, exposure, correct)
    assert result.thresholds_ms[:4] == pytest.approx(alone.thresholds_ms, rel=0.15)


@pytest.fixture(scope="module")
def staircase_fit():
    votes = simulate_hype_votes(HypeDesign(300, 2.0, 60, image_sd=0.3, evaluators=12), np.random.default_rng(3))
    person = votes["participant"].to_numpy()
    return person, votes["exposure_ms"].to_numpy(dtype=float), votes["correct"].to_numpy()


def test_an_evaluators_influence_is_what_leaving_them_out_changes(staircase_fit):
    """The linearization, hyper-parameters included, against refitting without evaluator i: a mean of n moves by
    n / (n - 1) times the influence when one is left out."""
    person, exposure, correct = staircase_fit
    full = fit(person, exposure, correct)
    n = len(full.thresholds_ms)
    assert full.person_influence.sum() == pytest.approx(0, abs=1e-6 * full.score_ms)
    for left_out in (0, 5, 11):
        keep = person != left_out
        codes = np.unique(person[keep], return_inverse=True)[1]
        without = fit(codes, exposure[keep], correct[keep])
        change = full.score_ms - without.score_ms
        assert change == pytest.approx(full.person_influence[left_out] * n / (n - 1), rel=0.25, abs=0.5)


def test_a_trials_influence_is_what_one_more_such_trial_changes(staircase_fit):
    person, exposure, correct = staircase_fit
    full = fit(person, exposure, correct)
    levels = np.unique(exposure)
    for i, at, right in ((2, 400.0, False), (7, 250.0, True)):
        again = fit(np.append(person, i), np.append(exposure, at), np.append(correct, right))
        level = int(np.searchsorted(levels, at))
        expected = full.trial_influence[int(right)][i, level]
        assert again.score_ms - full.score_ms == pytest.approx(expected, rel=0.3, abs=0.3)


def votes_rows(exposures_by_participant, answers=None):
    rows = []
    for participant, exposures in exposures_by_participant.items():
        for position, exposure in enumerate(exposures, start=1):
            source = "m" if position % 2 else REAL
            answer = answers[participant] if answers else (REAL if source == REAL else GENERATED)
            rows.append(
                {
                    "participant": participant,
                    "kind": SCORED,
                    "position": position,
                    "source": source,
                    "scene": position,
                    "exposure_ms": exposure,
                    "answer": answer,
                    "correct": (answer == REAL) == (source == REAL),
                }
            )
    return pd.DataFrame(rows)


def test_the_table_gives_the_mean_threshold_with_its_interval_and_the_papers_modal_exposure():
    votes = simulate_hype_votes(HypeDesign(300, 3.0, 100, image_sd=0.3), np.random.default_rng(4))
    (row,) = exposure_thresholds.hype_time_table(votes).to_dict("records")
    people = exposure_thresholds.participant_thresholds(votes)
    assert list(exposure_thresholds.hype_time_table(votes).columns) == exposure_thresholds.TABLE_COLUMNS
    assert row["participants"] == 30 and row["trials"] == 3000 and row["short"] == 0
    assert row["hype_time_ms"] == pytest.approx(people["threshold_ms"].mean())
    assert row["ci_low"] < row["hype_time_ms"] < row["ci_high"]
    modes = votes.groupby("participant")["exposure_ms"].agg(lambda e: e.value_counts().index[0])
    ties = votes.groupby("participant")["exposure_ms"].agg(lambda e: (e.value_counts() == e.value_counts().max()).sum())
    assert row["modal_ms"] == pytest.approx(people["modal_ms"].mean())
    assert people.loc[(ties == 1).to_numpy(), "modal_ms"].tolist() == modes[ties == 1].astype(float).tolist()


def test_a_tied_mode_is_the_mean_of_the_tied_exposures():
    votes = votes_rows({1: [500, 500, 450, 450, 400], 2: [500, 450, 450]})
    people = exposure_thresholds.participant_thresholds(votes).set_index("participant")
    assert people.loc[1, "modal_ms"] == 475 and people.loc[2, "modal_ms"] == 450


def test_the_interval_is_withheld_while_an_evaluator_has_too_few_trials_and_needs_two_evaluators():
    design = HypeDesign(300, 3.0, exposure_thresholds.MIN_TRIALS, evaluators=3)
    votes = simulate_hype_votes(design, np.random.default_rng(5))
    short = votes[(votes["participant"] != 0) | (votes["position"] < exposure_thresholds.MIN_TRIALS)]
    (row,) = exposure_thresholds.hype_time_table(short).to_dict("records")
    assert row["short"] == 1 and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    (measured,) = exposure_thresholds.score_table(short).to_dict("records")
    assert measured["ci_low"] < measured["hype_time_ms"] < measured["ci_high"], "the calibration still sees it"
    (alone,) = exposure_thresholds.hype_time_table(votes[votes["participant"] == 0]).to_dict("records")
    assert alone["participants"] == 1 and np.isnan(alone["ci_low"])
    (full,) = exposure_thresholds.hype_time_table(votes).to_dict("records")
    assert full["short"] == 0 and full["ci_low"] < full["ci_high"]


def test_a_votes_table_without_what_the_fit_needs_is_refused_by_name():
    votes = votes_rows({1: [500, 450]}).drop(columns=["scene", "correct"])
    with pytest.raises(ValueError, match="no column scene, correct"):
        exposure_thresholds.hype_time_table(votes)

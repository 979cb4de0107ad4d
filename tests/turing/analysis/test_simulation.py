import numpy as np
import pytest

from turing.analysis.simulation import Design, logit_mean, population_rate, simulate_votes
from turing.vocabulary import CONTROL, REAL, TREATMENT

RATES = {REAL: 0.7, "alpha": 0.3, "beta": 0.45}


@pytest.mark.parametrize("rate", [0.02, 0.3, 0.5, 0.7, 0.97])
@pytest.mark.parametrize("sd", [0.0, 0.5, 1.35])
def test_logit_mean_inverts_population_rate(rate, sd):
    assert population_rate(logit_mean(rate, sd), sd) == pytest.approx(rate, abs=1e-9)


def test_population_rate_without_spread_is_the_logistic():
    assert population_rate(np.log(0.3 / 0.7), 0.0) == pytest.approx(0.3, abs=1e-12)


def test_spread_pulls_the_population_rate_towards_one_half():
    # E[expit(mu + sd Z)] lies between expit(mu) and 1/2: a rate of 0.3 needs a lower mu the more people differ.
    assert logit_mean(0.3, 1.0) < logit_mean(0.3, 0.0) < 0


@pytest.mark.parametrize("rate", [0.0, 1.0, 1.2])
def test_logit_mean_rejects_rates_outside_the_open_interval(rate):
    with pytest.raises(ValueError):
        logit_mean(rate, 0.5)


def test_a_design_needing_more_scenes_than_exist_is_refused():
    # 4 reals and 2 x 3 model trials need 10 distinct scenes per participant.
    Design(participants=2, scenes=10, rates=RATES, trials_per_model=3, real_trials=4)
    with pytest.raises(ValueError, match="10 distinct scenes"):
        Design(participants=2, scenes=9, rates=RATES, trials_per_model=3, real_trials=4)


def test_real_trials_need_a_real_rate():
    with pytest.raises(ValueError):
        Design(participants=2, scenes=10, rates={"alpha": 0.3}, trials_per_model=3, real_trials=2)


@pytest.fixture
def design():
    return Design(
        participants=12,
        scenes=20,
        rates=RATES,
        trials_per_model=4,
        real_trials=5,
        control_participants=3,
        participant_sd=0.9,
        image_sd=1.0,
    )


@pytest.fixture
def votes(design):
    return simulate_votes(design, np.random.default_rng(3))


def test_a_participant_never_sees_a_scene_twice(votes):
    assert not votes.duplicated(["participant", "scene"]).any()
    # The scenes in use are the design's, and every participant sees a different selection of them.
    assert votes["scene"].between(0, 19).all()
    assert votes.groupby("participant")["scene"].apply(frozenset).nunique() > 1


def test_source_counts_per_participant_follow_the_design(design, votes):
    counts = votes.groupby(["participant", "group", "source"]).size().unstack("source", fill_value=0)
    treated = counts.xs(TREATMENT, level="group")
    control = counts.xs(CONTROL, level="group")
    assert len(treated) == design.participants and len(control) == design.control_participants
    assert (treated[REAL] == 5).all() and (treated["alpha"] == 4).all() and (treated["beta"] == 4).all()
    # Control participants see as many trials, all of them real.
    assert (control[REAL] == 13).all() and (control[["alpha", "beta"]] == 0).all().all()


def test_votes_are_scored(votes):
    said_real = votes["answer"] == REAL
    assert set(votes["answer"]) <= {REAL, "generated"}
    assert (votes["correct"] == (said_real == (votes["source"] == REAL))).all()
    # Each (source, scene) is its own stimulus: the same scene's real photo and model images differ.
    assert (votes.groupby("stimulus")[["source", "scene"]].nunique() == 1).all().all()


def test_same_seed_same_votes(design):
    first = simulate_votes(design, np.random.default_rng(5))
    second = simulate_votes(design, np.random.default_rng(5))
    assert first.equals(second)


def test_a_large_study_recovers_the_designs_rates():
    # 2,000 scenes and 2,000 people keep each rate's standard error near 0.006 with both spreads (measured over
    # seeds); 0.02 is more than 3 of them.
    design = Design(
        participants=2000,
        scenes=2000,
        rates=RATES,
        trials_per_model=10,
        real_trials=10,
        control_participants=1000,
        participant_sd=0.9,
        image_sd=1.0,
    )
    votes = simulate_votes(design, np.random.default_rng(11))
    said_real = votes.assign(real=votes["answer"] == REAL)
    rates = said_real.groupby(["group", "source"])["real"].mean()
    assert rates[(TREATMENT, REAL)] == pytest.approx(0.7, abs=0.02)
    assert rates[(CONTROL, REAL)] == pytest.approx(0.7, abs=0.02)
    assert rates[(TREATMENT, "alpha")] == pytest.approx(0.3, abs=0.02)
    assert rates[(TREATMENT, "beta")] == pytest.approx(0.45, abs=0.02)


def shares_judged_real(votes, by):
    return (votes["answer"] == REAL).groupby(votes[by]).mean()


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_people_and_images_differ_as_much_as_asked(seed):
    # The rehearsal's figures (12 votes each from 30 people, 12 scenes): the binomial spread of a 12-vote share at
    # p = 0.5 is 0.14; a logit sd of 3 spreads people's own rates to about 0.35. Alike people show intervals far
    # narrower than a real study would have.
    def votes(**spreads):
        design = Design(participants=30, scenes=12, rates=dict.fromkeys([REAL, "alpha", "beta"], 0.5),
                        trials_per_model=4, real_trials=4, **spreads)  # fmt: skip
        return simulate_votes(design, np.random.default_rng(seed))

    alike, spread = votes(), votes(participant_sd=3.0)
    assert np.std(shares_judged_real(alike, "participant")) < 0.2 < np.std(shares_judged_real(spread, "participant"))

    images = votes(image_sd=3.0)
    seen_enough = images.groupby("stimulus").size() >= 8
    assert np.std(shares_judged_real(images, "stimulus")[seen_enough]) > 0.25


def test_people_who_lean_to_real_leave_early():
    # 4,000 people: with dropout 0.03 per trial at no lean, under half answer all 30 trials, those who leave early
    # lean to "real" (their own rates are higher), and each person's own rate still averages to the design's.
    design = Design(participants=4000, scenes=40, rates={REAL: 0.7, "alpha": 0.3}, trials_per_model=20,
                    real_trials=10, participant_sd=0.9, dropout=0.03)  # fmt: skip
    votes = simulate_votes(design, np.random.default_rng(7))
    answered = votes.groupby("participant").size()
    assert answered.min() >= 1 and answered.max() == 30 and 0.3 < (answered == 30).mean() < 0.6
    assert not votes.duplicated(["participant", "scene"]).any()
    fakes = votes[votes["source"] == "alpha"].assign(real=lambda frame: frame["answer"] == REAL)
    own = fakes.groupby("participant")["real"].mean()
    finished = answered[own.index] == 30
    assert own[~finished].mean() > own[finished].mean() + 0.05
    assert own.mean() == pytest.approx(0.3, abs=0.015)
    assert fakes["real"].mean() < 0.29


def test_dropout_is_a_probability_of_at_most_one_half():
    with pytest.raises(ValueError, match="dropout"):
        Design(participants=2, scenes=10, rates=RATES, trials_per_model=3, real_trials=4, dropout=0.6)

import numpy as np
import pytest

from turing.analysis.simulation import Design, logit_mean, population_rate, simulate_votes
from turing.vocabulary import CONTROL, LEFT, REAL, RIGHT, TREATMENT

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


def test_population_rate_averages_over_the_shifts():
    both = population_rate(-0.5, 0.7, shifts=(0.4, -0.4))
    assert both == pytest.approx((population_rate(-0.1, 0.7) + population_rate(-0.9, 0.7)) / 2, abs=1e-12)
    assert population_rate(logit_mean(0.3, 0.7, shifts=(0.4, -0.4)), 0.7, shifts=(0.4, -0.4)) == pytest.approx(0.3)


def own_rates(votes):
    """Each participant's share judged real, per source (a column per source)."""
    return votes.assign(real=votes["answer"] == REAL).groupby(["participant", "source"])["real"].mean().unstack()


@pytest.mark.parametrize(("spread", "sign"), [("participant_sd", 1), ("skill_sd", -1)])
def test_a_bias_moves_reals_and_fakes_together_and_a_skill_apart(spread, sign):
    # 600 people, 20 reals and 20 fakes each: a logit sd of 1.5 correlates a person's two rates by about +-0.5
    # (the binomial noise of 20 votes keeps it from +-1); without it they are independent, within about 0.04.
    design = Design(participants=600, scenes=40, rates={REAL: 0.6, "alpha": 0.4}, trials_per_model=20,
                    real_trials=20, **{spread: 1.5})  # fmt: skip
    rates = own_rates(simulate_votes(design, np.random.default_rng(8)))
    assert sign * np.corrcoef(rates[REAL], rates["alpha"])[0, 1] > 0.3


def scene_correlation(scene_sd):
    # Each scene's real photo and colorization, each judged by about 300 of 600 people: their rates across the
    # 60 scenes.
    design = Design(participants=600, scenes=60, rates={REAL: 0.5, "alpha": 0.5}, trials_per_model=30,
                    real_trials=30, image_sd=0.5, scene_sd=scene_sd)  # fmt: skip
    votes = simulate_votes(design, np.random.default_rng(9))
    rates = votes.assign(real=votes["answer"] == REAL).groupby(["scene", "source"])["real"].mean().unstack()
    return np.corrcoef(rates[REAL], rates["alpha"])[0, 1]


def test_a_scene_effect_is_shared_by_its_photo_and_its_colorizations():
    # A scene sd of 1 against an image sd of 0.5: a correlation near 0.8 across scenes; without it near 0 (60
    # scenes: a standard error near 0.13).
    assert scene_correlation(0.0) < 0.4 < 0.6 < scene_correlation(1.0)


@pytest.fixture
def pairs():
    design = Design(participants=400, scenes=30, rates={"alpha": 0.3, "beta": 0.3}, trials_per_model=7,
                    pairs=True, participant_sd=0.5, side_bias=1.0, side_sd=0.5)  # fmt: skip
    return design, simulate_votes(design, np.random.default_rng(10))


def test_pairs_balance_the_generated_images_sides_per_participant_and_model(pairs):
    design, votes = pairs
    assert set(votes["source"]) == {"alpha", "beta"} and set(votes["group"]) == {TREATMENT}
    left = (votes["generated_side"] == LEFT).groupby([votes["participant"], votes["source"]]).sum()
    # 7 trials per model: 3 on each side and the odd one on either.
    assert left.between(3, 4).all() and 0.4 < (left == 4).mean() < 0.6
    assert set(votes["generated_side"]) == {LEFT, RIGHT}


def test_a_side_bias_moves_the_sides_apart_and_not_the_rates(pairs):
    # 5,600 votes: the rates' standard errors are near 0.01; a logit side bias of 1 puts the left and right rates
    # about 0.2 apart.
    design, votes = pairs
    said_real = votes["answer"] == REAL
    by_side = said_real.groupby(votes["generated_side"]).mean()
    assert by_side[LEFT] - by_side[RIGHT] > 0.12
    by_model = said_real.groupby(votes["source"]).mean()
    assert by_model["alpha"] == pytest.approx(0.3, abs=0.03) and by_model["beta"] == pytest.approx(0.3, abs=0.03)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pairs": True, "rates": RATES, "real_trials": 0}, "pairs"),
        ({"pairs": True, "rates": {"alpha": 0.3}, "control_participants": 2, "real_trials": 0}, "pairs"),
        ({"side_bias": 0.5}, "side bias needs pairs"),
    ],
)
def test_pairs_judge_models_only_and_only_pairs_have_sides(changes, message):
    with pytest.raises(ValueError, match=message):
        Design(**{"participants": 2, "scenes": 10, "rates": RATES, "trials_per_model": 3, "real_trials": 4, **changes})

"""The crossed (participant x scene) intervals and tests, checked against a hand computation from the votes,
against Owen's pigeonhole bootstrap by brute force, and on data whose clustering is known."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, norm
from scipy.stats import t as student_t

from tests.turing.report_data import wilson_by_formula
from turing.analysis import crossed
from turing.analysis import statistics as st
from turing.analysis.tally import Tally


def votes_of(participant, scene, judged_real, source="m", group="treatment"):
    """A long votes table; each (source, scene) is one stimulus."""
    frame = pd.DataFrame({"participant": participant, "scene": scene, "source": source, "group": group})
    frame["answer"] = np.where(np.asarray(judged_real, dtype=bool), "real", "generated")
    frame["stimulus"] = frame["source"].astype(str) + "/" + frame["scene"].astype(str)
    return frame


def random_votes(rng, participants=12, scenes=15, votes_each=6, p=0.4):
    """Each participant judges `votes_each` distinct scenes, answering "real" with probability p."""
    rows = [(i, s) for i in range(participants) for s in rng.choice(scenes, votes_each, replace=False)]
    people, seen = zip(*rows)
    return votes_of(people, seen, rng.random(len(rows)) < p)


def hand_variance(frame):
    """V_P + V_S - V_C of a rate, each term with G / (G - 1), from pandas group sums of per-vote influences."""
    y = (frame["answer"] == "real").astype(float)
    return hand_variance_of(frame.assign(influence=(y - y.mean()) / len(frame)))


def hand_variance_of(frame):
    def term(by):
        sums = frame.groupby(by)["influence"].sum()
        return len(sums) / (len(sums) - 1) * (sums**2).sum()

    return term("participant") + term("scene") - term(["participant", "scene"])


def one_rate(frame):
    return st.rate_table(frame, ["source"]).iloc[0]


def test_the_interval_comes_from_the_hand_computed_variance():
    frame = random_votes(np.random.default_rng(3))
    row = one_rate(frame)
    df = min(frame["participant"].nunique(), frame["scene"].nunique()) - 1
    k, n = row["judged_real"], row["votes"]
    effective = n * (k / n) * (1 - k / n) / n / hand_variance(frame)
    expected = crossed.wilson(k / n, effective, student_t.ppf(0.975, df))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected, rel=1e-12)
    assert (row["wilson_low"], row["wilson_high"]) == pytest.approx(wilson_by_formula(k, n), abs=1e-12)
    assert row["participants"] == 12


def test_rows_of_a_table_are_computed_as_if_alone():
    rng = np.random.default_rng(4)
    first, second = random_votes(rng), random_votes(rng, participants=9, p=0.7)
    second["participant"] += 100
    second["source"], second["stimulus"] = "other", "other/" + second["scene"].astype(str)
    table = st.rate_table(pd.concat([first, second], ignore_index=True), ["source"]).set_index("source")
    for name, alone in (("m", first), ("other", second)):
        assert table.loc[name, ["ci_low", "ci_high"]].tolist() == pytest.approx(
            one_rate(alone)[["ci_low", "ci_high"]].tolist(), rel=1e-12
        )


def test_pigeonhole_bootstrap_variance_is_ours_plus_the_double_counted_votes():
    # Owen (2007): resampling participants and scenes independently gives V_P + V_S + V_C, where V_C (one vote
    # per participant and scene: the votes' own variance) is already inside V_P and V_S. Brute force.
    rng = np.random.default_rng(5)
    frame = random_votes(rng, participants=40, scenes=50, votes_each=10)
    people, scenes = frame["participant"].to_numpy(), frame["scene"].to_numpy()
    y = (frame["answer"] == "real").to_numpy(float)
    rates = []
    for _ in range(4000):
        weight = (
            np.bincount(rng.integers(0, 40, 40), minlength=40)[people]
            * np.bincount(rng.integers(0, 50, 50), minlength=50)[scenes]
        )
        rates.append((weight * y).sum() / weight.sum())
    double_count = 2 * ((y - y.mean()) ** 2).sum() / len(y) ** 2
    assert np.var(rates) == pytest.approx(hand_variance(frame) + double_count, rel=0.1)


def test_unclustered_votes_give_about_the_wilson_interval():
    # Every vote its own participant and scene: nothing to cluster, so the design effect is about 1.
    row = one_rate(votes_of(range(100), range(100), [1] * 30 + [0] * 70))
    assert row["rate"] == 0.3
    assert row["ci_low"] == pytest.approx(row["wilson_low"], abs=0.01)
    assert row["ci_high"] == pytest.approx(row["wilson_high"], abs=0.01)


@pytest.mark.parametrize("clustered_by", ["participant", "scene"])
def test_votes_that_agree_within_a_participant_or_scene_widen_the_interval(clustered_by):
    # 10 participants x 20 scenes, everyone judges everything; half of the participants (or of the scenes)
    # are always judged real, the other half never: the rate is 0.5 either way.
    people, scenes = np.repeat(np.arange(10), 20), np.tile(np.arange(20), 10)
    row = one_rate(votes_of(people, scenes, (people if clustered_by == "participant" else scenes) % 2))
    assert row["ci_low"] < row["wilson_low"] < 0.5 < row["wilson_high"] < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] > 3 * (row["wilson_high"] - row["wilson_low"])


def test_a_single_participant_is_not_sampled():
    # One person, 10 scenes: the interval is over that person's scenes, with 9 degrees of freedom.
    row = one_rate(votes_of([0] * 10, range(10), [1] * 4 + [0] * 6))
    variance = 10 / 9 * 0.4 * 0.6 / 10
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        crossed.wilson(0.4, 0.4 * 0.6 / variance, student_t.ppf(0.975, 9)), rel=1e-12
    )
    # One person, one scene: nothing sampled beyond the votes, so Wilson with z.
    row = one_rate(votes_of([0], [0], [1]))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_by_formula(1, 1))


def test_a_rate_of_zero_or_one_gets_wilson_with_the_t_quantile():
    row = one_rate(votes_of(np.repeat(np.arange(5), 4), np.tile(np.arange(4), 5), np.ones(20)))
    z = student_t.ppf(0.975, 3)
    assert row["ci_high"] == pytest.approx(1.0)
    assert row["ci_low"] == pytest.approx(20 / (20 + z * z))


def test_an_image_is_fixed_and_its_judges_are_sampled():
    frame = votes_of(range(8), [0] * 8, [1, 1, 1, 0, 0, 0, 0, 0])
    row = st.per_image_table(frame).iloc[0]
    variance = 8 / 7 * (3 / 8) * (5 / 8) / 8
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        crossed.wilson(3 / 8, (3 / 8) * (5 / 8) / 8 / variance * 8, student_t.ppf(0.975, 7)), rel=1e-12
    )


def pair(people, scenes, judged_real, side):
    return votes_of(people, scenes, judged_real, source=np.where(side, "a", "b"))


def test_compare_identical_sides_and_opposite_ones():
    people, scenes = np.repeat(np.arange(6), 4), np.tile(np.arange(4), 6)
    side = np.tile([True, False], 12)
    same = st.compare_sides(
        Tally.from_votes(pair(people, scenes, np.tile([1, 1, 0, 0], 6), side)), st.Side("a"), st.Side("b")
    )
    assert same["difference"] == 0 and same["p_value"] == pytest.approx(1.0)
    # Every A vote real, every B vote generated: no variance left, Fisher's exact test decides.
    opposite = st.compare_sides(Tally.from_votes(pair(people, scenes, side, side)), st.Side("a"), st.Side("b"))
    assert opposite["difference"] == 1.0
    assert opposite["p_value"] == pytest.approx(fisher_exact([[12, 0], [0, 12]]).pvalue)
    one_sided = st.compare_sides(
        Tally.from_votes(votes_of([0, 1], [0, 1], [1, 1], source="a")), st.Side("a"), st.Side("b")
    )
    assert math.isnan(one_sided["p_value"]) and one_sided["rate_a"] == 1.0 and math.isnan(one_sided["rate_b"])


def test_a_shared_participant_effect_cancels_in_a_model_difference():
    # Participants differ a lot in how often they say "real", the same way for both models: the difference
    # is far more certain than two independent samples of people would make it.
    rng = np.random.default_rng(8)
    people = np.repeat(np.arange(30), 20)
    scenes = np.concatenate([rng.choice(200, 20, replace=False) for _ in range(30)])
    side = np.tile(np.repeat([True, False], 10), 30)
    judged_real = rng.random(600) < rng.uniform(0.05, 0.95, 30)[people]
    frame = pair(people, scenes, judged_real, side)
    difference = st.compare_sides(Tally.from_votes(frame), st.Side("a"), st.Side("b"))
    table = st.rate_table(frame, ["source"]).set_index("source")
    # Each rate's variance, back from its interval's effective sample size, is what independent samples would add.
    alone = sum(hand_variance(frame[frame["source"] == name]) for name in ("a", "b"))
    assert difference["se"] < 0.7 * math.sqrt(alone)
    assert table.loc["a", "votes"] == table.loc["b", "votes"] == 300
    assert difference["p_value"] == pytest.approx(
        2 * student_t.sf(abs(difference["difference"]) / difference["se"], difference["df"])
    )


def test_a_participant_who_judged_several_versions_of_a_scene():
    # Another design: everyone judges both models' version of every scene. The cell term is then the spread of
    # the (participant, scene) sums, not of the votes.
    rng = np.random.default_rng(9)
    people, scenes = np.repeat(np.arange(12), 16), np.tile(np.repeat(np.arange(8), 2), 12)
    source = np.tile(["a", "b"], 96)
    frame = votes_of(people, scenes, rng.random(192) < 0.4, source=source)
    tally = Tally.from_votes(frame)
    assert tally.by_cell is not None and len(tally.by_cell) == 192
    y = (frame["answer"] == "real").to_numpy(float)
    rate_a, rate_b = y[source == "a"].mean(), y[source == "b"].mean()
    influence = np.where(source == "a", (y - rate_a) / 96, -(y - rate_b) / 96)
    expected = hand_variance_of(frame.assign(influence=influence))
    test = st.compare_sides(tally, st.Side("a"), st.Side("b"))
    assert test["se"] ** 2 == pytest.approx(expected, rel=1e-12)
    assert Tally.from_votes(random_votes(rng)).by_cell is None


def test_minimum_detectable_difference():
    assert crossed.minimum_detectable_difference(0.05, np.inf) == pytest.approx(
        (norm.ppf(0.975) + norm.ppf(0.8)) * 0.05
    )
    assert crossed.minimum_detectable_difference(0.05, 10) > crossed.minimum_detectable_difference(0.05, 100)


def groups_judging_reals(controls, rng):
    """20 treatment participants and `controls` control participants judging 10 of 30 real photos each."""
    rows = [
        (person, scene, group)
        for person, group in enumerate(["treatment"] * 20 + ["control"] * controls)
        for scene in rng.choice(30, 10, replace=False)
    ]
    people, scenes, groups = zip(*rows)
    return votes_of(people, scenes, rng.random(len(rows)) < 0.7, source="real", group=np.array(groups))


def test_one_control_participant_cannot_say_how_control_participants_differ():
    rng = np.random.default_rng(10)
    lonely = st.treatment_vs_control(groups_judging_reals(1, rng))
    assert lonely["votes_control"] == 10
    assert math.isnan(lonely["p_value"]) and math.isnan(lonely["ci_low"])
    few = st.compare_sides(
        Tally.from_votes(groups_judging_reals(3, rng)), st.Side("real", "treatment"), st.Side("real", "control")
    )
    # Three control participants: fewer degrees of freedom than the treatment group's 19 alone would give.
    assert 1 < few["df"] < 19 and 0 < few["p_value"] <= 1


@pytest.mark.parametrize("controls, shown", [(4, False), (5, True)])
def test_treatment_against_control_withholds_its_p_value_below_five_control_participants(controls, shown):
    versus = st.treatment_vs_control(groups_judging_reals(controls, np.random.default_rng(11)))
    assert versus["control_participants"] == controls
    # The interval is given either way; the p-value only from MIN_CONTROLS_FOR_P control participants on.
    assert versus["ci_low"] < versus["difference"] < versus["ci_high"]
    assert (0 < versus["p_value"] <= 1) if shown else math.isnan(versus["p_value"])


def test_terms_that_cancel_exactly_do_not_shrink_an_interval_to_a_point():
    # Two people with the same count on distinct scenes: V_P is 0 and V_S equals V_C, so V_P + V_S - V_C is 0
    # up to rounding; the votes-independent variance stands in for it.
    row = one_rate(votes_of([0] * 6 + [1] * 6, range(12), [1, 1, 1, 0, 0, 0] * 2))
    assert row["ci_high"] - row["ci_low"] > 0.3
    # Two people, 5 images of each model, 0 of 5 against 1 of 5 judged real: far from significant.
    judged_real = [0] * 5 + [1, 0, 0, 0, 0] + [0] * 10
    frame = pair([0] * 10 + [1] * 10, range(20), judged_real, np.tile(np.repeat([True, False], 5), 2))
    test = st.compare_sides(Tally.from_votes(frame), st.Side("a"), st.Side("b"))
    assert test["p_value"] > 0.05 and -1 <= test["ci_low"] < test["difference"] < test["ci_high"] <= 1


def person_rate(frame):
    return st.rate_table(frame, ["source"], per_person=True).iloc[0]


def test_the_per_person_rate_and_its_interval_by_hand():
    # A judges s1 s2 (real, generated), B s1 s2 s3 (all real), C s3 (generated): own rates 1/2, 1, 0.
    frame = votes_of(list("AABBBC"), [1, 2, 1, 2, 3, 3], [1, 0, 1, 1, 1, 0])
    row = person_rate(frame)
    assert (row["rate"], row["person_rate"]) == pytest.approx((4 / 6, 1 / 2))
    # Influence (judged_real - 1/2) / (3 n_p): A +-1/12, B 1/18 each, C -1/6. Participant sums 0, 1/6, -1/6:
    # V_P = 3/2 * 2/36; scene sums 5/36, -1/36, -4/36: V_S = 3/2 * 42/1296; V_C = 6/5 * 11/216.
    variance = 3 / 2 * 2 / 36 + 3 / 2 * 42 / 1296 - 6 / 5 * 11 / 216
    assert variance == pytest.approx(17 / 240)
    expected = crossed.wilson(1 / 2, (1 / 2) * (1 / 2) / variance, student_t.ppf(0.975, 2))
    assert (row["person_ci_low"], row["person_ci_high"]) == pytest.approx(expected, rel=1e-12)


def per_person_influence(frame):
    """Each vote's (judged_real - R) / (P n_p), R the mean of the participants' own rates."""
    y = (frame["answer"] == "real").astype(float)
    votes = frame.groupby("participant")["answer"].transform("size")
    own = y.groupby(frame["participant"]).transform("mean")
    people = frame["participant"].nunique()
    return (y - own.groupby(frame["participant"]).first().mean()) / (people * votes)


def test_the_per_person_variance_is_the_crossed_one_of_its_influences():
    rng = np.random.default_rng(11)
    # People judge 1 to 9 scenes each: their own rates weigh alike, their votes do not.
    rows = [(i, s) for i in range(14) for s in rng.choice(15, rng.integers(1, 10), replace=False)]
    people, seen = zip(*rows)
    frame = votes_of(people, seen, rng.random(len(rows)) < 0.4)
    row = person_rate(frame)
    y = (frame["answer"] == "real").astype(float)
    rate = y.groupby(frame["participant"]).mean().mean()
    assert row["person_rate"] == pytest.approx(rate, rel=1e-12)
    variance = hand_variance_of(frame.assign(influence=per_person_influence(frame)))
    df = min(frame["participant"].nunique(), frame["scene"].nunique()) - 1
    expected = crossed.wilson(rate, rate * (1 - rate) / variance, student_t.ppf(0.975, df))
    assert (row["person_ci_low"], row["person_ci_high"]) == pytest.approx(expected, rel=1e-12)
    # The per-vote columns are those of rate_table without per_person.
    assert row[st.RATE_COLUMNS].tolist() == one_rate(frame)[st.RATE_COLUMNS].tolist()


def test_the_per_person_rate_is_the_per_vote_one_when_everyone_judged_as_many():
    row = person_rate(random_votes(np.random.default_rng(12)))
    assert row["person_rate"] == pytest.approx(row["rate"], rel=1e-12)
    assert (row["person_ci_low"], row["person_ci_high"]) == pytest.approx((row["ci_low"], row["ci_high"]), rel=1e-9)


def test_the_per_person_variance_with_several_versions_of_a_scene():
    # Everyone judges both versions of some scenes: the cell term is the spread of (participant, scene) sums.
    rng = np.random.default_rng(13)
    rows = [(i, s, v) for i in range(10) for s in rng.choice(8, rng.integers(2, 8), replace=False) for v in "ab"]
    people, scenes, source = (np.array(column) for column in zip(*rows))
    frame = votes_of(people, scenes, rng.random(len(rows)) < 0.4, source=source)
    assert Tally.from_votes(frame).by_cell is not None
    chosen = frame[frame["source"] == "a"]
    row = st.rate_table(frame, ["source"], per_person=True).set_index("source").loc["a"]
    influence = per_person_influence(chosen).reindex(frame.index, fill_value=0.0)
    variance = hand_variance_of(frame.assign(influence=influence))
    rate = row["person_rate"]
    expected = crossed.wilson(rate, rate * (1 - rate) / variance, student_t.ppf(0.975, 7))
    assert (row["person_ci_low"], row["person_ci_high"]) == pytest.approx(expected, rel=1e-12)

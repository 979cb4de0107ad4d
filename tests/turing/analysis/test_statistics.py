import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from tests.turing.report_data import wilson_by_formula
from turing.analysis import statistics as st
from turing.analysis.tally import Tally
from turing.vocabulary import NOT_ANSWERED

Z75 = 0.6744897501960817  # norm.ppf(0.75), from a z-table
Z95 = 1.6448536269514722  # norm.ppf(0.95)


def test_wilson_matches_the_closed_formula():
    low, high = st.wilson_interval(7, 20)
    assert (low, high) == pytest.approx(wilson_by_formula(7, 20), abs=1e-12)
    assert (low, high) == pytest.approx((0.18119, 0.56715), abs=1e-5)


@pytest.mark.parametrize("k, n", [(0, 1), (1, 3), (7, 20), (50, 50), (123, 457)])
def test_wilson_agrees_with_scipy(k, n):
    for confidence in (0.9, 0.95, 0.99):
        reference = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        assert st.wilson_interval(k, n, confidence) == pytest.approx((reference.low, reference.high), abs=1e-12)


def test_wilson_on_arrays():
    low, high = st.wilson_interval(np.array([7, 0]), np.array([20, 0]))
    assert (low[0], high[0]) == pytest.approx(wilson_by_formula(7, 20))
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_wilson_edges_and_confidence():
    assert st.wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert st.wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    assert all(math.isnan(bound) for bound in st.wilson_interval(0, 0))
    narrow, wide = st.wilson_interval(7, 20, confidence=0.8), st.wilson_interval(7, 20)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    assert st.wilson_interval(7, 20, confidence=0.8) == pytest.approx(wilson_by_formula(7, 20, 0.8), abs=1e-12)


def test_holm_on_a_known_example():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") -> 0.03 0.06 0.06 0.02
    assert st.holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_missing_p_values():
    adjusted = st.holm_adjust([0.4, math.nan, 0.3])
    assert adjusted[0] == pytest.approx(0.6) and adjusted[2] == pytest.approx(0.6) and math.isnan(adjusted[1])
    assert st.holm_adjust([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert len(st.holm_adjust([])) == 0


def test_hype_infinity():
    # 3 of 6 fakes judged real, 2 of 6 reals judged generated: with equal counts, 5 errors in 12 judgements.
    assert st.hype_infinity(3, 6, 2, 6) == pytest.approx(5 / 12)
    assert st.hype_infinity(10, 20, 10, 20) == pytest.approx(0.5)
    # Unequal counts: the mean of the two error rates (0.5 + 0.1) / 2, not the pooled 7 / 25.
    assert st.hype_infinity(2, 4, 2, 20) == pytest.approx(0.3)
    assert math.isnan(st.hype_infinity(0, 0, 0, 0)) and math.isnan(st.hype_infinity(3, 6, 0, 0))


@pytest.mark.parametrize("answer", ["real", "generated"])
def test_a_constant_responder_scores_exactly_chance_whatever_the_ratio(answer):
    # Zhou et al.'s HYPE-infinity weighs reals and fakes equally; pooled, "always real" at 14 fakes and 28 reals
    # would score 14 / 42.
    frame = votes(
        [(f"p{i % 2}", "treatment", "m", f"f{i}", answer, None) for i in range(14)]
        + [(f"p{i % 2}", "treatment", "real", f"r{i}", answer, None) for i in range(28)]
    )
    row = st.hype_by_model(frame).iloc[0]
    assert (row["model"], row["hype_infinity"], row["hype_low"], row["hype_high"]) == ("m", 0.5, 0.5, 0.5)


def test_hype_interval_is_the_delta_method_one():
    rng = np.random.default_rng(2)
    frame = votes(
        [
            (f"p{i % 7}", "treatment", source, f"s{i}", "real" if rng.random() < p else "generated", None)
            for i, (source, p) in enumerate([("m", 0.3)] * 40 + [("real", 0.7)] * 60)
        ]
    )
    row = st.hype_by_model(frame).iloc[0]
    assert row["hype_low"] < row["hype_infinity"] < row["hype_high"]
    wrong = ~frame["correct"]
    fakes, reals = frame["source"] == "m", frame["source"] == "real"
    assert row["hype_infinity"] == pytest.approx((wrong[fakes].mean() + wrong[reals].mean()) / 2)
    assert math.isnan(st.hype_by_model(frame[fakes]).iloc[0]["hype_infinity"])


def test_signal_detection_on_table_values():
    # Corrected rates (7.5/10, 2.5/10) = (.75, .25): d' = 2 z(.75), criterion 0.
    result = st.signal_detection(7, 9, 2, 9)
    assert result["hit_rate"] == pytest.approx(7 / 9)
    assert result["false_alarm_rate"] == pytest.approx(2 / 9)
    assert result["d_prime"] == pytest.approx(2 * Z75)
    assert result["criterion"] == pytest.approx(0.0, abs=1e-12)


def test_signal_detection_corrects_perfect_rates():
    # 9/9 hits and 0/9 false alarms become .95 and .05: finite d' = 2 z(.95).
    result = st.signal_detection(9, 9, 0, 9)
    assert (result["hit_rate"], result["false_alarm_rate"]) == (1.0, 0.0)
    assert result["d_prime"] == pytest.approx(2 * Z95)


def test_signal_detection_criterion_sign_and_missing_signal():
    # Saying "generated" to most of everything: no discrimination, liberal criterion (c < 0).
    liberal = st.signal_detection(7, 9, 7, 9)
    assert liberal["d_prime"] == pytest.approx(0.0, abs=1e-12)
    assert liberal["criterion"] == pytest.approx(-Z75)
    control = st.signal_detection(0, 0, 3, 8)
    assert control["false_alarm_rate"] == pytest.approx(3 / 8)
    assert math.isnan(control["hit_rate"]) and math.isnan(control["d_prime"]) and math.isnan(control["criterion"])


def votes(rows):
    frame = pd.DataFrame(rows, columns=["participant", "group", "source", "scene", "answer", "expertise"])
    frame["stimulus"] = frame["source"] + "-" + frame["scene"]
    frame["correct"] = (frame["answer"] == "real") == (frame["source"] == "real")
    return frame


def test_per_image_table_sorts_by_fooling():
    frame = votes(
        [
            ("a", "treatment", "m", "x", "real", None),
            ("b", "treatment", "m", "x", "generated", None),
            ("a", "treatment", "m", "y", "real", None),
            ("b", "treatment", "m", "y", "real", None),
            ("a", "treatment", "real", "z", "generated", None),
        ]
    )
    table = st.per_image_table(frame)
    assert table["stimulus"].tolist() == ["m-y", "m-x", "real-z"]
    assert table["rate"].tolist() == [1.0, 0.5, 0.0]
    assert table["votes"].tolist() == [2, 2, 1]


def test_participant_accuracy_and_histogram():
    frame = votes(
        [
            ("a", "treatment", "m", "x", "generated", "yes"),
            ("a", "treatment", "real", "y", "real", "yes"),
            ("b", "treatment", "m", "x", "real", None),
            ("b", "treatment", "real", "y", "real", None),
        ]
    )
    table = st.participant_accuracy(frame)
    assert table[["participant", "expertise", "votes", "correct", "accuracy"]].values.tolist() == [
        ["a", "yes", 2, 2, 1.0],
        ["b", NOT_ANSWERED, 2, 1, 0.5],
    ]
    histogram = st.accuracy_histogram(table["accuracy"], bins=4)
    assert histogram["participants"].tolist() == [0, 0, 1, 1]
    assert histogram["low"].tolist() == [0.0, 0.25, 0.5, 0.75]


def test_model_comparisons_are_holm_corrected():
    rows = []
    for model, judged_real in (("a", 9), ("b", 5), ("c", 1)):
        rows += [
            (f"p{i}", "treatment", model, f"s{i}", "real" if i < judged_real else "generated", None) for i in range(10)
        ]
    frame = votes(rows)
    table = st.model_comparisons(frame)
    assert list(zip(table["model_a"], table["model_b"])) == [("a", "b"), ("a", "c"), ("b", "c")]
    tally = Tally.from_votes(frame)
    raw = [st.compare_sides(tally, st.Side(a), st.Side(b))["p_value"] for a, b in (("a", "b"), ("a", "c"), ("b", "c"))]
    assert table["p_value"].tolist() == pytest.approx(raw)
    assert table["p_holm"].tolist() == pytest.approx(st.holm_adjust(raw))
    assert table["difference"].tolist() == pytest.approx([0.4, 0.8, 0.4])
    assert (table["ci_low"] < table["difference"]).all() and (table["difference"] < table["ci_high"]).all()
    # Three pairs: detectable differences are stated at Holm's strictest level, 0.05 / 3.
    assert (table["min_detectable"] > 0).all()


def test_treatment_vs_control_needs_both_groups():
    treated_only = votes([("a", "treatment", "real", "x", "real", None)])
    assert st.treatment_vs_control(treated_only) is None
    both = votes([("a", "treatment", "real", "x", "real", None), ("b", "control", "real", "x", "generated", None)])
    result = st.treatment_vs_control(both)
    assert (result["rate_treatment"], result["rate_control"], result["difference"]) == (1.0, 0.0, 1.0)


def test_row_labels_and_order():
    assert st.row_label("real", "control") == "real (control)"
    assert st.row_label("perceptual", "treatment") == "perceptual"
    assert st.row_order(["zeta", "realistic", "real (control)", "alpha", "real"]) == [
        "real",
        "real (control)",
        "alpha",
        "realistic",
        "zeta",
    ]


def test_empty_votes_give_empty_tables():
    empty = votes([])
    assert st.per_image_table(empty).empty
    assert st.participant_accuracy(empty).empty
    assert st.expertise_breakdown(empty).empty
    assert st.model_comparisons(empty).empty
    assert st.signal_detection_by_group(empty).empty
    assert st.treatment_vs_control(empty) is None

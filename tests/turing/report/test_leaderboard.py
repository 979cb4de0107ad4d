"""The leaderboard across studies (turing/report/leaderboard.py): pooled rates checked against a hand computation on two
studies sharing a model, rank ranges, the coverage of the pooled interval in simulated studies, the staff page
and manage.py leaderboard.

Study "votes" is tests/turing/report_data.py's (alpha 3 of 6 judged real, beta 1 of 6, gamma unjudged). Its
alpha rate 1/2 has the crossed variance V_P = (3/2) * ((2/12)^2 + 0 + (2/12)^2) = 1/12 (one vote per scene, so
V_S = V_C), with min(3, 6) - 1 = 2 degrees of freedom. Study "votes-b" has three other people who call all six
of alpha's images real: a crossed variance of 0, so the log-linear rate 6.5 / 7 gives its variance,
(6.5/7) (0.5/7) / 6. With two studies Paule-Mandel's tau^2 is ((y1 - y2)^2 - v1 - v2) / 2.
"""

import csv
import math

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from scipy import special
from scipy.stats import t as student_t

from tests.turing.conftest import run_command
from tests.turing.report_data import R, make_vote_study
from turing.analysis import pooling, simulation
from turing.models import Participant
from turing.report import leaderboard as lb
from turing.report.cache import study_summary

ALL_REAL = {
    key: ("treatment", key, None, [("alpha", scene, R) for scene in alpha_scenes] + [("real", real_scene, R)])
    for key, alpha_scenes, real_scene in [
        ("q1", ("s1", "s2"), "s3"),
        ("q2", ("s3", "s4"), "s5"),
        ("q3", ("s5", "s6"), "s1"),
    ]
}
ALPHA_A, VARIANCE_A = 0.5, 1 / 12
ALPHA_B, VARIANCE_B = 1.0, (6.5 / 7) * (0.5 / 7) / 6


@pytest.fixture
def two_studies(vote_study):
    study_b, people = make_vote_study("votes-b", votes={**ALL_REAL, "bot": ("treatment", "bot", None, [])})
    # A rehearsal bot that calls every alpha image generated: the leaderboard, like the report, leaves it out.
    bot = people["bot"]
    Participant.objects.filter(pk=bot.pk).update(kind=Participant.Kind.BOT)
    alpha = study_b.stimuli.filter(source="alpha").order_by("scene")
    for position, stimulus in enumerate(alpha, start=1):
        bot.trials.create(kind="scored", position=position, stimulus=stimulus, answer="generated")
    return vote_study[0], study_b


def by_model(board):
    return board.table.set_index("model")


def test_two_studies_sharing_a_model_match_the_hand_computation(two_studies):
    board = lb.leaderboard(two_studies)
    alpha = by_model(board).loc["alpha"]
    tau2 = ((ALPHA_A - ALPHA_B) ** 2 - VARIANCE_A - VARIANCE_B) / 2
    weights = 1 / (np.array([VARIANCE_A, VARIANCE_B]) + tau2)
    rate = (weights * [ALPHA_A, ALPHA_B]).sum() / weights.sum()
    se = math.sqrt(1 / weights.sum())
    half = student_t.ppf(0.975, 1) * se
    assert alpha["studies"] == 2 and alpha["votes"] == 12 and alpha["participants"] == 6
    assert alpha["rate"] == pytest.approx(rate, abs=1e-6)
    assert alpha["rate"] == pytest.approx(0.8222, abs=1e-4)
    assert alpha["tau"] == pytest.approx(math.sqrt(tau2), abs=1e-6)
    assert alpha["se"] == pytest.approx(se, abs=1e-6)
    assert (alpha["ci_low"], alpha["ci_high"]) == (max(0.0, rate - half), min(1.0, rate + half))


def test_per_study_rows_are_the_reports(two_studies):
    study_a, study_b = two_studies
    board = lb.leaderboard(two_studies)
    per_study = board.per_study.set_index(["study", "model"])
    for study in two_studies:
        summary = study_summary(study).set_index("source")
        for model in ("alpha", "beta"):
            row, reported = per_study.loc[(study.slug, model)], summary.loc[model]
            assert row["votes"] == reported["votes"]
            if reported["votes"]:
                assert row["rate"] == pytest.approx(reported["rate"])
                assert (row["ci_low"], row["ci_high"]) == pytest.approx((reported["ci_low"], reported["ci_high"]))
    # beta was judged in one study only: it keeps that study's interval, and no between-study spread is claimed.
    beta, reported = by_model(board).loc["beta"], study_summary(study_a).set_index("source").loc["beta"]
    assert beta["studies"] == 1 and math.isnan(beta["tau"])
    assert (beta["rate"], beta["ci_low"], beta["ci_high"]) == pytest.approx(
        (1 / 6, reported["ci_low"], reported["ci_high"])
    )
    assert beta["se"] == pytest.approx(math.sqrt(1 / 36))


def test_unjudged_models_are_listed_unranked(two_studies):
    gamma = by_model(lb.leaderboard(two_studies)).loc["gamma"]
    assert gamma["votes"] == 0 and gamma["studies"] == 0 and gamma["rank"] == "" and math.isnan(gamma["rate"])


def test_rank_bounds_follow_non_overlapping_intervals():
    low = [0.5, 0.4, 0.1, math.nan, 0.55]
    high = [0.7, 0.6, 0.3, math.nan, 0.65]
    best, worst = pooling.rank_bounds(low, high)
    # 0: nothing wholly above; wholly below it only 2 -> 1-3 of 4 ranked. 2: three wholly above it -> rank 4.
    assert list(best[[0, 1, 2, 4]]) == [1, 1, 4, 1]
    assert list(worst[[0, 1, 2, 4]]) == [3, 3, 4, 3]
    assert math.isnan(best[3]) and math.isnan(worst[3])
    assert [pooling.rank_label(b, w) for b, w in zip(best, worst)] == ["1–3", "1–3", "4", "", "1–3"]


def test_leaderboard_ranks_within_a_protocol(two_studies):
    table = by_model(lb.leaderboard(two_studies))
    # alpha's pooled interval (two studies, t on 1 df) overlaps beta's: either could be first.
    assert table.loc["alpha", "rank"] == "1–2" and table.loc["beta", "rank"] == "1–2"


def test_a_protocol_without_an_estimate_is_left_out_with_its_reason(two_studies):
    study_a, study_b = two_studies
    # HYPE-time scores a model by exposure thresholds, not by a rate to pool with the others.
    type(study_b).objects.filter(pk=study_b.pk).update(protocol="hype-time")
    study_b.refresh_from_db()
    board = lb.leaderboard([study_a, study_b])
    entry = board.studies[1]
    assert entry.estimates is None and "protocol 'hype-time'" in entry.left_out
    assert by_model(board).loc["alpha", "studies"] == 1
    assert board.protocols == ["single"]


def test_2afc_rates_are_pooled_and_ranked_apart_from_single_image_rates(two_studies):
    study_a, study_b = two_studies
    type(study_b).objects.filter(pk=study_b.pk).update(protocol="2afc")
    study_b.refresh_from_db()
    table = lb.leaderboard([study_a, study_b]).table
    assert sorted(set(table["protocol"])) == ["2afc", "single"]
    assert table.set_index(["protocol", "model"]).loc[("2afc", "alpha"), "rate"] == pytest.approx(ALPHA_B)


def simulated_leaderboard_covers(rng, studies, study_sd, base=0.3):
    """Whether one simulated leaderboard's pooled interval for model m holds the mean of its study rates over
    the population of studies (study rates differ on the logit scale by a normal with sd ``study_sd``)."""
    mu = special.logit(base)
    estimates = []
    for _ in range(studies):
        rate = float(special.expit(mu + rng.normal(0, study_sd)))
        design = simulation.Design(
            participants=30,
            scenes=40,
            rates={"real": 0.7, "m": rate},
            trials_per_model=10,
            real_trials=10,
            participant_sd=0.7,
            image_sd=0.8,
        )
        estimates.append(pooling.model_estimates(simulation.simulate_votes(design, rng)))
    pooled = pooling.pool(pd.concat(estimates, ignore_index=True))
    return pooled["ci_low"] <= simulation.population_rate(mu, study_sd) <= pooled["ci_high"]


def test_pooled_interval_covers_in_simulated_studies():
    # 150 leaderboards: Monte Carlo standard error about 0.018 at 0.95; 400 of them measured 0.94 (module docstring).
    rng = np.random.default_rng(0)
    coverage = np.mean([simulated_leaderboard_covers(rng, studies=4, study_sd=0.5) for _ in range(150)])
    assert 0.90 <= coverage <= 0.99


def test_staff_page_pools_every_study_by_default(two_studies, staff_client):
    page = staff_client.get("/staff/leaderboard/").content.decode()
    assert 'id="model-single-alpha"' in page and "82.2%" in page
    assert 'value="votes" id="pick-votes" checked' in page and 'value="votes-b" id="pick-votes-b" checked' in page
    assert 'href="/staff/leaderboard/"' in page  # the staff nav links to it


def test_staff_page_pools_the_ticked_studies(two_studies, staff_client):
    page = staff_client.get("/staff/leaderboard/", {"picked": 1, "study": ["votes"]}).content.decode()
    assert "50.0%" in page and "82.2%" not in page
    assert 'value="votes" id="pick-votes" checked' in page
    assert 'value="votes-b" id="pick-votes-b">' in page


@pytest.mark.parametrize(
    ("query", "error"),
    [({"picked": 1}, "Tick at least one study."), ({"picked": 1, "study": ["nope"]}, "No study nope.")],
)
def test_staff_page_says_what_is_wrong_with_a_selection(two_studies, staff_client, query, error):
    response = staff_client.get("/staff/leaderboard/", query)
    assert response.status_code == 200
    assert error in response.content.decode() and 'id="model-single-alpha"' not in response.content.decode()


def test_staff_page_is_for_staff_only(two_studies, client):
    assert client.get("/staff/leaderboard/").status_code == 302
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.get("/staff/leaderboard/").status_code == 403


def test_command_prints_and_writes_the_leaderboard(two_studies, tmp_path):
    target = tmp_path / "board.csv"
    output = run_command("leaderboard", csv=str(target))
    assert "votes (single): 12 votes on models" in output and "votes-b (single): 6 votes on models" in output
    alpha_line = next(line for line in output.splitlines() if " alpha " in line)
    assert alpha_line.split()[:3] == ["1–2", "alpha", "82.2%"]
    with open(target, newline="") as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert list(rows["alpha"]) == lb.LEADERBOARD_COLUMNS
    assert float(rows["alpha"]["rate"]) == pytest.approx(0.8222, abs=1e-4)
    assert rows["alpha"]["studies"] == "2" and rows["beta"]["studies"] == "1" and rows["gamma"]["rank"] == ""


def test_command_pools_the_studies_named(two_studies):
    output = run_command("leaderboard", "--study", "votes-b")
    assert "votes-b (single)" in output and "votes (single)" not in output
    assert next(line for line in output.splitlines() if " alpha " in line).split()[2] == "100.0%"
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run_command("leaderboard", "--study", "votes", "nope")

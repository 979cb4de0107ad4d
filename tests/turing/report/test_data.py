"""turing.report.data and turing.report.cache: the votes table, the summary, the statistics tables and the
headline counts the report is drawn from."""

import math

import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.turing.report_data import ALL_ANSWERS, START, TOTAL_VOTES, d_prime_by_formula, wilson_by_formula
from turing.analysis import statistics as st
from turing.analysis.tally import Tally
from turing.models import Participant, Study, Trial
from turing.report import cache, data
from turing.report.document import build_report
from turing.vocabulary import GENERATED_FIRST, REAL

pytestmark = pytest.mark.django_db


def test_votes_frame_has_one_row_per_answered_scored_trial(vote_study):
    study, participants = vote_study
    votes = data.votes_frame(study)
    assert list(votes.columns) == [
        "protocol",
        "participant",
        "label",
        "cohort",
        "participant_kind",
        "group",
        "kind",
        "position",
        "stimulus",
        "scene",
        "source",
        "answer",
        "correct",
        "response_ms",
        "answered_at",
        "expertise",
        "exposure_ms",
        "achieved_exposure_ms",
        "generated_side",
        "button_order",
        "image_css_px",
        "device_pixel_ratio",
    ]
    assert len(votes) == TOTAL_VOTES
    assert set(votes["protocol"]) == {"single"} and votes["exposure_ms"].isna().all()
    ids = {key: participant.pk for key, participant in participants.items()}
    assert votes["participant"].dtype == "int64"
    assert votes.groupby("participant").size().to_dict() == {
        ids["p1"]: 6,
        ids["p2"]: 6,
        ids["p3"]: 6,
        ids["c1"]: 4,
        ids["c2"]: 4,
    }
    assert dict(zip(votes["participant"], votes["label"])) == {
        ids["p1"]: "p1",
        ids["p2"]: "",
        ids["p3"]: "p3",
        ids["c1"]: "c1",
        ids["c2"]: "c2",
    }
    assert set(votes["kind"]) == {"scored"} and set(votes["participant_kind"]) == {"person"}
    # One presentation order per participant: p1 practised first, p3 met an attention check after 3 votes.
    positions = votes.groupby("participant")["position"].apply(list).to_dict()
    assert positions[ids["p1"]] == [2, 3, 4, 5, 6, 7] and positions[ids["p3"]] == [1, 2, 3, 5, 6, 7]
    # Opaque image ids: the stimulus column is the token, never the scene or the source.
    tokens = dict(study.stimuli.values_list("token", "source"))
    assert set(votes["stimulus"]) <= set(tokens)
    assert all(tokens[token] == source for token, source in zip(votes["stimulus"], votes["source"]))
    assert votes["correct"].sum() == 3 + 4 + 5 + 3 + 2
    assert votes.loc[votes["label"] == "p1", "expertise"].unique().tolist() == ["yes"]
    assert votes.loc[votes["label"] == "c1", "expertise"].isna().all()
    assert votes["response_ms"].dtype == "Int64" and votes["response_ms"].min() == 1010
    assert str(votes["answered_at"].dt.tz) == "UTC"


def test_votes_frame_of_a_study_without_votes_keeps_the_columns(db):
    votes = data.votes_frame(Study.objects.create(slug="empty", title="Empty"))
    assert votes.empty and list(votes.columns) == data.VOTE_COLUMNS


def test_summary_numbers_equal_hand_counts(vote_study):
    study, _ = vote_study
    summary = cache.study_summary(study).set_index(["source", "group"])
    # The data keeps source and group apart; "real (control)" is only how tables name the control row.
    assert list(summary.index) == [
        ("real", "treatment"),
        ("real", "control"),
        ("alpha", "treatment"),
        ("beta", "treatment"),
        ("gamma", "treatment"),
    ]
    expected = {
        ("real", "treatment"): (6, 4, 3),
        ("real", "control"): (8, 5, 2),
        ("alpha", "treatment"): (6, 3, 3),
        ("beta", "treatment"): (6, 1, 3),
    }
    for row_key, (n, k, people) in expected.items():
        row = summary.loc[row_key]
        assert (row["votes"], row["judged_real"], row["participants"]) == (n, k, people)
        assert row["rate"] == pytest.approx(k / n)
        assert (row["wilson_low"], row["wilson_high"]) == pytest.approx(wilson_by_formula(k, n), abs=1e-12)
        assert row["ci_low"] <= row["rate"] <= row["ci_high"]
    # HYPE-infinity: (fakes judged real + the 2 of 6 treatment reals judged generated) / (6 + 6).
    assert summary.loc[("alpha", "treatment"), "hype_infinity"] == pytest.approx((3 + 2) / 12)
    assert summary.loc[("beta", "treatment"), "hype_infinity"] == pytest.approx((1 + 2) / 12)
    assert math.isnan(summary.loc[("real", "treatment"), "hype_infinity"])
    assert math.isnan(summary.loc[("real", "control"), "hype_infinity"])
    gamma = summary.loc[("gamma", "treatment")]
    assert gamma["votes"] == 0 and math.isnan(gamma["rate"]) and math.isnan(gamma["ci_low"])
    assert math.isnan(gamma["hype_infinity"])


def test_the_interval_counts_participants_who_disagree(vote_study):
    study, _ = vote_study
    first, second = cache.study_summary(study), cache.study_summary(study)
    pd.testing.assert_frame_equal(first, second)
    # alpha per participant: 2/2, 1/2, 0/2: people differ, so the interval is wider than the votes-independent one.
    alpha = first.set_index(["source", "group"]).loc[("alpha", "treatment")]
    assert alpha["ci_high"] - alpha["ci_low"] > alpha["wilson_high"] - alpha["wilson_low"]


def test_report_statistics_equal_hand_values(vote_study):
    study, _ = vote_study
    report = cache.report_tables(study)
    assert report["total_votes"] == TOTAL_VOTES and report["voters"] == 5

    treatment, control = report["signal_detection"]
    # Treatment: 12 generated shown, 8 judged generated; 6 real shown, 2 judged generated.
    counts = [treatment[key] for key in ("signal_trials", "hits", "noise_trials", "false_alarms")]
    assert counts == [12, 8, 6, 2]
    assert treatment["hit_rate"] == pytest.approx(8 / 12) and treatment["false_alarm_rate"] == pytest.approx(2 / 6)
    assert treatment["d_prime"] == pytest.approx(d_prime_by_formula(8, 12, 2, 6))
    assert control["false_alarm_rate"] == pytest.approx(3 / 8) and control["d_prime"] is None

    # gamma has no votes yet, so it is in no comparison: one pair, and Holm leaves its p-value as it is.
    (alpha_beta,) = report["comparisons"]
    assert (alpha_beta["model_a"], alpha_beta["model_b"]) == ("alpha", "beta")
    assert alpha_beta["difference"] == pytest.approx(3 / 6 - 1 / 6)
    assert alpha_beta["ci_low"] < alpha_beta["difference"] < alpha_beta["ci_high"]
    assert alpha_beta["p_holm"] == alpha_beta["p_value"]

    versus = report["treatment_vs_control"]
    assert (versus["rate_treatment"], versus["rate_control"]) == pytest.approx((4 / 6, 5 / 8))
    assert versus["difference"] == pytest.approx(4 / 6 - 5 / 8)
    assert versus["ci_low"] < versus["difference"] < versus["ci_high"]
    # Two control participants: the interval, but no p-value (statistics.MIN_CONTROLS_FOR_P).
    assert versus["control_participants"] == 2 and versus["p_value"] is None


def test_per_image_participant_and_expertise_tables(vote_study):
    study, participants = vote_study
    report = cache.report_tables(study)
    fooling = report["fooling_images"]
    assert all(row["source"] != "real" for row in fooling)
    assert [row["rate"] for row in fooling] == sorted((row["rate"] for row in fooling), reverse=True)
    assert {(row["source"], row["scene"]) for row in fooling if row["rate"] == 1.0} == {
        ("alpha", "s3"),
        ("alpha", "s4"),
        ("alpha", "s5"),
        ("beta", "s1"),
    }
    doubted = {row["scene"]: (row["votes"], row["rate"]) for row in report["doubted_real_images"]}
    assert doubted["s2"] == (3, pytest.approx(1 / 3)) and doubted["s1"] == (3, pytest.approx(2 / 3))
    assert report["doubted_real_images"][0]["rate"] == min(rate for _, rate in doubted.values())

    accuracy = {row["participant"]: row["accuracy"] for row in report["participant_accuracy"]}
    by_key = {key: accuracy[participant.pk] for key, participant in participants.items()}
    assert by_key["p1"] == pytest.approx(3 / 6) and by_key["p3"] == pytest.approx(5 / 6)
    assert by_key["c1"] == pytest.approx(3 / 4) and by_key["c2"] == pytest.approx(2 / 4)
    assert {row["participant"]: row["label"] for row in report["participant_accuracy"]}[participants["p2"].pk] == ""
    assert report["mean_accuracy"] == pytest.approx((3 / 6 + 4 / 6 + 5 / 6 + 3 / 4 + 2 / 4) / 5)
    assert sum(row["participants"] for row in report["accuracy_histogram"]) == 5

    expertise = {(row["expertise"], row["row"]): (row["judged_real"], row["votes"]) for row in report["expertise"]}
    assert expertise[("yes", "alpha")] == (2, 2) and expertise[("yes", "beta")] == (0, 2)
    assert expertise[("no", "real")] == (2, 2) and expertise[("no", "alpha")] == (1, 2)
    assert expertise[("not answered", "real (control)")] == (5, 8)
    assert [row["expertise"] for row in report["expertise"]][:3] == ["yes"] * 3


def test_the_position_check_gives_the_judged_real_rate_per_row_and_button_order(vote_study):
    study, participants = vote_study
    generated_first = [participants["p2"].pk, participants["c2"].pk]
    Participant.objects.filter(pk__in=generated_first).update(button_order=GENERATED_FIRST)
    rates = data.button_order_rates(study)
    assert list(rates.columns) == data.BUTTON_ORDER_COLUMNS
    assert [tuple(row)[:5] for row in rates.itertuples(index=False)] == [
        ("real", "Real first", 2, 4, 2),
        ("real", "Generated first", 1, 2, 2),
        ("real (control)", "Real first", 1, 4, 3),
        ("real (control)", "Generated first", 1, 4, 2),
        ("alpha", "Real first", 2, 4, 2),
        ("alpha", "Generated first", 1, 2, 1),
        ("beta", "Real first", 2, 4, 0),
        ("beta", "Generated first", 1, 2, 1),
    ]
    (section,) = [section for section in build_report(study) if section.name == "button-order"]
    assert section.rows[:2] == [["real", "Real first", 2, 4, "50.0%"], ["real", "Generated first", 1, 2, "100.0%"]]


def test_every_kind_of_trial_on_request(vote_study):
    study, participants = vote_study
    votes = data.votes_frame(study, data.Selection(kinds=("scored", "practice", "catch")))
    assert len(votes) == ALL_ANSWERS
    assert votes["kind"].value_counts().to_dict() == {"scored": TOTAL_VOTES, "practice": 1, "catch": 1}
    practice = votes[votes["kind"] == "practice"].iloc[0]
    assert (practice["participant"], practice["position"], practice["scene"]) == (participants["p1"].pk, 1, "s0")
    catch = votes[votes["kind"] == "catch"].iloc[0]
    assert (catch["participant"], catch["source"], catch["correct"]) == (participants["p3"].pk, "catch", True)


def test_a_summary_of_every_kind_of_trial_counts_only_the_scored_ones(vote_study):
    # An `export_votes --all` table read back for the analysis: practice and catch rows must not become data.
    study, _ = vote_study
    everything = data.votes_frame(study, data.Selection(kinds=("scored", "practice", "catch")))
    summary = data.summary_frame(everything, study.model_names)
    pd.testing.assert_frame_equal(summary, data.summary_frame(data.votes_frame(study), study.model_names))
    assert "catch" not in set(summary["source"])


def test_hype_infinity_in_the_summary_weighs_reals_and_fakes_equally():
    # 30 people who always answer "real", each with 3 images of the model and 7 real ones: pooled over votes
    # they would score 3 / 10; as published, exactly chance.
    rows = [
        (p, "treatment", source, f"{source}-{i}", "real")
        for p in range(30)
        for source, count in (("model", 3), ("real", 7))
        for i in range(count)
    ]
    votes = pd.DataFrame(rows, columns=["participant", "group", "source", "stimulus", "answer"])
    votes["scene"] = votes["stimulus"]
    votes["correct"] = (votes["answer"] == "real") == (votes["source"] == "real")
    model = data.summary_frame(votes).set_index("source").loc["model"]
    assert (model["hype_infinity"], model["hype_low"], model["hype_high"]) == (0.5, 0.5, 0.5)


def test_d_prime_and_criterion_per_model_with_intervals(vote_study):
    study, _ = vote_study
    table = st.signal_detection_by_model(data.votes_frame(study)).set_index("model")
    assert list(table.index) == ["alpha", "beta"]  # gamma has no votes
    # Treatment reals: 6 shown, 2 judged generated (false alarms). alpha: 3 of 6 judged generated, beta: 5 of 6.
    for model, hits in (("alpha", 3), ("beta", 5)):
        row = table.loc[model]
        assert (row["hits"], row["signal_trials"], row["false_alarms"], row["noise_trials"]) == (hits, 6, 2, 6)
        assert row["d_prime"] == pytest.approx(d_prime_by_formula(hits, 6, 2, 6))
        assert row["d_low"] <= row["d_prime"] <= row["d_high"] and row["d_low"] < row["d_high"]
        assert row["c_low"] <= row["criterion"] <= row["c_high"]
    assert table.loc["beta", "d_prime"] > table.loc["alpha", "d_prime"]
    page = cache.report_tables(study)["signal_detection_by_model"]
    assert [row["model"] for row in page] == ["alpha", "beta"]


def test_participants_without_labels_stay_apart(vote_study):
    study, participants = vote_study
    # Two people who joined without a label share label "", never an identity.
    Participant.objects.filter(pk=participants["c1"].pk).update(label="")
    votes = data.votes_frame(study)
    assert (votes["label"] == "").sum() == 6 + 4 and votes["participant"].nunique() == 5
    control = cache.study_summary(study).set_index(["source", "group"]).loc[("real", "control")]
    assert control["participants"] == 2
    tally = Tally.from_votes(votes)
    assert sorted(tally.by_participant.groupby("participant")["votes"].sum()) == [4, 4, 6, 6, 6]
    report = cache.report_tables(study)
    assert report["voters"] == 5 and len(report["participant_accuracy"]) == 5


def add_stages(study, participants):
    """To the vote study (5 people who all voted, none finished): p1 and c1 finish; one person per group joins
    and never votes (the treatment one answers only a practice trial, which is no vote); a bot votes and finishes."""
    Participant.objects.filter(pk__in=[participants["p1"].pk, participants["c1"].pk]).update(finished_at=START)
    practice = study.stimuli.get(pool="practice")
    idle = Participant.objects.create(study=study, label="idle-t", group="treatment")
    Trial.objects.create(
        participant=idle, kind=Trial.Kind.PRACTICE, position=1, stimulus=practice, answer=REAL, answered_at=START
    )
    Participant.objects.create(study=study, label="idle-c", group="control")
    bot = Participant.objects.create(
        study=study, label="bot-1", group="treatment", kind=Participant.Kind.BOT, finished_at=timezone.now()
    )
    Trial.objects.create(
        participant=bot,
        position=1,
        stimulus=study.stimuli.get(source="real", scene="s1"),
        answer=REAL,
        answered_at=START,
    )


def test_headline_counts_people_at_each_stage_per_group(vote_study):
    study, participants = vote_study
    add_stages(study, participants)

    with CaptureQueriesContext(connection) as queries:
        counts = data.headline_counts(study)
    assert len(queries.captured_queries) <= 2
    assert counts == {
        "started": {"treatment": 4, "control": 3, "total": 7},
        "voted": {"treatment": 3, "control": 2, "total": 5},
        "finished": {"treatment": 1, "control": 1, "total": 2},
        "bots_left_out": 1,
    }
    with_bots = data.headline_counts(study, data.Selection(include_bots=True))
    assert with_bots["started"]["treatment"] == 5 and with_bots["voted"]["total"] == 6
    assert with_bots["finished"]["total"] == 3 and with_bots["bots_left_out"] == 0


def test_headline_counts_agree_with_the_rest_of_the_report(vote_study):
    study, participants = vote_study
    add_stages(study, participants)
    # p3 now calls the attention check real: left out of every stage when failed checks are excluded.
    Trial.objects.filter(participant=participants["p3"], kind=Trial.Kind.CATCH).update(answer=REAL)

    for selection in (
        data.Selection(),
        data.Selection(include_bots=True),
        data.Selection(exclude_failed_checks=True),
    ):
        report = cache.report_tables(study, selection)
        headline = report["headline"]
        # The people who voted are the people in the per-participant tables, and the dashboard's counts are
        # the same numbers.
        assert headline["voted"]["total"] == report["voters"] == report["participant_accuracy_total"]
        assert report["participation"]["started"] == headline["started"]["total"]
        assert report["participation"]["finished"] == headline["finished"]["total"]
        assert report["participation"]["control"] == headline["started"]["control"]
    assert headline["started"] == {"treatment": 3, "control": 3, "total": 6}


def test_report_and_dashboard_headline_show_the_same_counts(staff_client, vote_study):
    study, participants = vote_study
    add_stages(study, participants)
    for name in ("report", "dashboard"):
        page = staff_client.get(f"/staff/{study.slug}/{name}/").content.decode()
        for tile, text in (
            ("participants", "7"),
            ("voted", "5"),
            ("finished", "2"),
            ("bots-left-out", "1"),
            ("started-split", "4 treatment · 3 control"),
            ("voted-split", "3 treatment · 2 control"),
            ("finished-split", "1 treatment · 1 control"),
        ):
            assert f'id="{tile}">{text}<' in page, (name, tile)
        assert "participants who voted" not in page


@pytest.mark.parametrize("deleted", ["p1", "c2"])
def test_a_participant_deleted_while_the_report_reads_is_left_out_not_merged(vote_study, monkeypatch, deleted):
    study, participants = vote_study
    read_people = data._people_and_images

    def delete_first(*args):
        if participants[deleted].pk is not None:  # once, on the tally's read
            participants[deleted].delete()
        return read_people(*args)

    monkeypatch.setattr(data, "_people_and_images", delete_first)
    tally = data.study_tally(study)
    assert tally.votes == TOTAL_VOTES - (6 if deleted == "p1" else 4)
    per_person = tally.by_participant.groupby("participant")["votes"].sum()
    counted = dict(zip(tally.participants["participant"].iloc[per_person.index], per_person))
    # Nobody inherits the deleted participant's votes: every count is what the database now holds.
    assert counted == data.votes_frame(study).groupby("participant").size().to_dict()


def test_a_long_participant_list_shows_both_ends(vote_study, monkeypatch):
    study, _ = vote_study
    monkeypatch.setattr(cache, "REPORT_ROWS", 2)
    report = cache.report_tables(study)
    shown = [row["accuracy"] for row in report["participant_accuracy"]]
    every = st.participant_accuracy(data.study_tally(study))["accuracy"]
    assert report["participant_accuracy_total"] == 5 and len(shown) == 2
    assert shown == [every.max(), every.min()]


def test_who_left_early_counts_once_in_the_per_person_rate_and_the_dropout_line(vote_study):
    study, participants = vote_study
    # p3 leaves after their first alpha image (s1, judged generated), their later trials unanswered: alpha is then
    # p1 2/2, p2 1/2, p3 0/1, and p3 judged no beta image. Everyone else finished.
    Trial.objects.filter(participant=participants["p3"], kind="scored", stimulus__scene__in=["s2", "s3", "s4"]).update(
        answer=""
    )
    Participant.objects.exclude(pk=participants["p3"].pk).update(finished_at=timezone.now())
    summary = cache.study_summary(study).set_index(["source", "group"])
    alpha = summary.loc[("alpha", "treatment")]
    assert (alpha["rate"], alpha["person_rate"]) == pytest.approx((3 / 5, (1 + 1 / 2 + 0) / 3))
    assert alpha["person_ci_low"] < alpha["person_rate"] < alpha["person_ci_high"]
    # Everyone judged as many reals: there the two rates and intervals agree.
    control = summary.loc[("real", "control")]
    assert control[["person_rate", "person_ci_low", "person_ci_high"]].tolist() == pytest.approx(
        control[["rate", "ci_low", "ci_high"]].tolist()
    )
    assert list(summary.columns[-3:]) == ["person_rate", "person_ci_low", "person_ci_high"]
    dropout = {row["source"]: row for row in cache.report_tables(study)["dropout"] if row["group"] == "treatment"}
    assert (dropout["alpha"]["finishers"], dropout["alpha"]["finisher_rate"]) == (2, pytest.approx(3 / 4))
    assert (dropout["alpha"]["participants"], dropout["alpha"]["person_rate"]) == (3, pytest.approx(1 / 2))
    assert (dropout["beta"]["finishers"], dropout["beta"]["participants"]) == (2, 2)
    section = next(section for section in build_report(study) if section.name == "summary")
    titles = [column.title for column in section.columns]
    assert titles.index("Rate per person") < titles.index("Rate per vote")
    notes = " ".join(map(str, section.notes))
    assert "the per-person rate first (the report's primary rate)" in notes
    assert "The per-vote rate, second, is the share of all votes judged real" in notes
    assert "<strong>Dropout:</strong> 5 started, 4 finished (1 left before the end)." in notes
    assert "alpha 75.0% (n = 2) against 50.0% (n = 3)" in notes

"""Crowd platforms end to end through the real views: Prolific's and MTurk's query strings, MTurk's preview,
frame and submission, series exclusion, the time limit, and cohorts in the report and the export."""

import datetime as dt
import re

import pandas as pd
import pytest
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.turing.conftest import run_command
from tests.turing.participant_steps import answer_all, join, session_participant
from turing.models import Participant, Study
from turing.participant.crowd import MTURK_ORIGINS, MTURK_PREVIEW
from turing.report import cache, data

pytestmark = pytest.mark.django_db

PROLIFIC = {"PROLIFIC_PID": "5f8a9c0d1e2f", "STUDY_ID": "st-42", "SESSION_ID": "se-7"}
SANDBOX = "https://workersandbox.mturk.com"
MTURK = {"assignmentId": "3AS1GN", "hitId": "3H1T", "workerId": "A1W0RKER", "turkSubmitTo": SANDBOX}
HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def join_url(study, query=None):
    url = reverse("turing:join", args=[study.slug])
    return url if not query else f"{url}?{'&'.join(f'{name}={value}' for name, value in query.items())}"


def policy(response):
    return dict(directive.split(" ", 1) for directive in response["Content-Security-Policy"].split("; "))


# Prolific


def test_prolific_ids_are_stored_and_kept_through_the_consent_form(client, small_study):
    page = client.get(join_url(small_study, PROLIFIC)).content.decode()
    hidden = dict(HIDDEN_INPUT.findall(page))
    assert {name: hidden[name] for name in PROLIFIC} == PROLIFIC
    # The form's hidden fields alone carry them: posted to the bare URL, nothing is lost.
    response = client.post(join_url(small_study), {**hidden, "consent": "on"})
    assert response.status_code == 302
    participant = session_participant(client, small_study)
    assert (participant.cohort, participant.label, participant.platform_study, participant.platform_session) == (
        "prolific",
        "5f8a9c0d1e2f",
        "st-42",
        "se-7",
    )


def test_the_same_prolific_pid_joining_again_resumes_the_same_participant(client, small_study):
    first = join(client, small_study, PROLIFIC)
    again = Client().get(join_url(small_study, {**PROLIFIC, "SESSION_ID": "another-session"}))
    assert again.status_code == 302 and again.url == reverse("turing:trial", args=["small"])
    assert list(small_study.participants.values_list("pk", flat=True)) == [first.pk]


def test_prolific_finish_redirects_to_the_completion_url_and_shows_the_code(client, small_study):
    url = "https://app.prolific.com/submissions/complete?cc=C1A2B3"
    Study.objects.filter(pk=small_study.pk).update(completion_url=url, completion_code="C1A2B3")
    join(client, small_study, PROLIFIC)
    last = answer_all(client, small_study)
    assert last.url == url
    page = client.get(reverse("turing:finish", args=["small"])).content.decode()
    assert "Your completion code: <strong><code>C1A2B3</code></strong>" in page
    assert f'href="{url.replace("&", "&amp;")}"' in page


# MTurk


def test_mturk_preview_shows_the_instructions_only_and_creates_nobody(client, small_study):
    response = client.get(join_url(small_study, {"assignmentId": MTURK_PREVIEW, "hitId": "3H1T"}))
    page = response.content.decode()
    assert response.status_code == 200 and "This is a preview" in page and "Real or generated?" in page
    assert "<form" not in page and not small_study.participants.exists()
    # Framed by MTurk, and only by MTurk.
    assert policy(response)["frame-ancestors"] == " ".join(MTURK_ORIGINS)
    assert "X-Frame-Options" not in response


def test_an_accepted_hit_in_the_frame_opens_the_study_in_its_own_tab(client, small_study):
    response = client.get(join_url(small_study, MTURK))
    page = response.content.decode()
    assert "<form" not in page and not small_study.participants.exists()
    tab_url = re.search(r'href="([^"]+)" target="_blank" rel="noopener"', page).group(1).replace("&amp;", "&")
    assert "tab=1" in tab_url and "workerId=A1W0RKER" in tab_url
    assert policy(response)["frame-ancestors"] == " ".join(MTURK_ORIGINS)
    assert "<form" in client.get(tab_url).content.decode()


def test_mturk_worker_takes_part_and_the_finish_page_posts_the_assignment_to_mturk(client, small_study):
    # A completion URL is for other platforms: an MTurk worker must end where the assignment is submitted.
    Study.objects.filter(pk=small_study.pk).update(completion_url="https://example.org/done")
    participant = join(client, small_study, {**MTURK, "tab": "1"})
    assert (participant.cohort, participant.label, participant.platform_study, participant.platform_session) == (
        "mturk",
        "A1W0RKER",
        "3H1T",
        "3AS1GN",
    )
    trial = client.get(reverse("turing:trial", args=["small"]))
    assert policy(trial)["frame-ancestors"] == "'none'" and trial["X-Frame-Options"] == "DENY"
    finish_url = reverse("turing:finish", args=["small"])
    assert answer_all(client, small_study).url == finish_url
    response = client.get(finish_url)
    page = response.content.decode()
    assert f'<form method="post" action="{SANDBOX}/mturk/externalSubmit" class="mturk-submit" data-auto-submit>' in page
    assert '<input type="hidden" name="assignmentId" value="3AS1GN">' in page
    assert "auto-submit.js" in page
    assert policy(response)["form-action"] == f"'self' {SANDBOX}"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({**MTURK, "turkSubmitTo": "https://evil.example"}, "turkSubmitTo (&#x27;https://evil.example&#x27;)"),
        ({name: value for name, value in MTURK.items() if name != "hitId"}, "lacks hitId"),
    ],
)
def test_a_broken_mturk_link_is_refused_naming_the_parameter(client, small_study, query, named):
    response = client.get(join_url(small_study, {**query, "tab": "1"}))
    assert response.status_code == 400 and named in response.content.decode()
    assert not small_study.participants.exists()


def test_pages_reached_without_mturk_cannot_be_framed(client, small_study):
    response = client.get(join_url(small_study))
    assert policy(response)["frame-ancestors"] == "'none'" and response["X-Frame-Options"] == "DENY"


# Series


def test_a_worker_from_another_study_of_the_series_is_refused(client, build_study):
    first = build_study("first", scenes=6, trials_per_participant=2, series="colour-2026")
    second = build_study("second", scenes=6, trials_per_participant=2, series="colour-2026")
    other = build_study("other", scenes=6, trials_per_participant=2)
    join(client, first, PROLIFIC)

    refused = Client().get(join_url(second, PROLIFIC))
    assert refused.status_code == 403
    assert "already taken part in “Study first”" in refused.content.decode()
    posted = Client().post(join_url(second, PROLIFIC), {"consent": "on", "join_key": "k" * 22, **PROLIFIC})
    assert posted.status_code == 403 and not second.participants.exists()

    assert join(Client(), second, {"PROLIFIC_PID": "someone-else"}).cohort == "prolific"
    assert join(Client(), other, PROLIFIC).label == PROLIFIC["PROLIFIC_PID"]  # not in the series


def test_bots_of_a_series_never_collide_with_each_other(build_study):
    first = build_study("first", scenes=6, trials_per_participant=2, series="s")
    second = build_study("second", scenes=6, trials_per_participant=2, series="s")
    run_command("simulate_participants", "first", n=2, seed=1)
    output = run_command("simulate_participants", "second", n=2, seed=1)
    assert "bot-0003 to bot-0004" in output
    assert first.participants.count() == second.participants.count() == 2


# Cohorts


@pytest.mark.parametrize(
    ("query", "cohort"),
    [({}, "link"), ({"via": "poster"}, "poster"), ({"participant_label": "room-1"}, "link"), (PROLIFIC, "prolific")],
)
def test_the_cohort_is_how_the_participant_came(client, small_study, query, cohort):
    assert join(client, small_study, query).cohort == cohort


def test_a_kiosk_participant_is_of_the_kiosk_cohort(client, small_study):
    client.get(reverse("turing:kiosk", args=["small"]))
    assert join(client, small_study).cohort == "kiosk"


def test_the_posters_qr_code_marks_its_joins_as_the_poster_cohort(staff_client, small_study):
    page = staff_client.get(reverse("staff:poster", args=["small"])).content.decode()
    assert "http://testserver/s/small/?via=poster" in page


@pytest.mark.parametrize("cohort", ["prolific", "mturk", "poster", "kiosk"])
def test_bots_rehearse_each_cohort_through_its_query_string(small_study, cohort):
    Study.objects.filter(pk=small_study.pk).update(completion_url="https://example.org/done")
    output = run_command("simulate_participants", "small", n=2, seed=3, cohort=cohort)
    assert f"as cohort {cohort}" in output
    bots = list(small_study.participants.all())
    assert [bot.cohort for bot in bots] == [cohort, cohort]
    assert all(bot.finished_at is not None for bot in bots)
    if cohort in ("prolific", "mturk"):
        assert [bot.platform_study for bot in bots] == ["rehearsal-small"] * 2
        assert all(bot.platform_session for bot in bots)
    assert all(bot.submit_to == (SANDBOX if cohort == "mturk" else "") for bot in bots)


def set_cohorts(participants, **cohorts):
    for key, cohort in cohorts.items():
        Participant.objects.filter(pk=participants[key].pk).update(cohort=cohort)


def test_the_report_breaks_rates_down_by_cohort(vote_study, staff_client):
    study, participants = vote_study
    set_cohorts(participants, p1="prolific", p2="prolific", p3="poster", c1="poster", c2="poster")
    rows = staff_client.get(reverse("staff:report", args=["votes"])).context["cohorts"]
    # Counted by hand from tests/turing/report_data.py: (judged real, votes).
    assert {(row["cohort"], row["row"]): (row["rate"] * row["votes"], row["votes"]) for row in rows} == {
        ("Poster (QR code)", "real"): (1, 2),
        ("Poster (QR code)", "real (control)"): (5, 8),
        ("Poster (QR code)", "alpha"): (0, 2),
        ("Poster (QR code)", "beta"): (0, 2),
        ("Prolific", "real"): (3, 4),
        ("Prolific", "alpha"): (3, 4),
        ("Prolific", "beta"): (1, 4),
    }
    # The intervals are the report's own, computed from each cohort's votes alone.
    votes = data.votes_frame(study)
    prolific = data.summary_frame(votes[votes["cohort"] == "prolific"])
    beta = prolific[prolific["source"] == "beta"].iloc[0]
    row = next(row for row in rows if row["cohort"] == "Prolific" and row["row"] == "beta")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((beta["ci_low"], beta["ci_high"]))
    assert "<h2>By cohort</h2>" in staff_client.get(reverse("staff:report", args=["votes"])).content.decode()


def test_one_cohort_is_the_summary_itself(vote_study):
    study, _ = vote_study
    tables = cache.report_tables(study)
    summary = tables["summary_frame"]
    voted = summary[summary["votes"] > 0]
    assert [row["cohort"] for row in tables["cohorts"]] == ["Link"] * len(voted)
    assert [row["rate"] for row in tables["cohorts"]] == pytest.approx(list(voted["rate"]))


def test_a_cohorts_report_is_cached_apart_from_the_whole_studys(vote_study):
    study, participants = vote_study
    set_cohorts(participants, p1="prolific")
    assert cache.report_tables(study)["total_votes"] == 26
    assert cache.report_tables(study, data.Selection(cohort="prolific"))["total_votes"] == 6


def test_export_votes_has_each_votes_cohort(vote_study, tmp_path):
    study, participants = vote_study
    set_cohorts(participants, p1="mturk")
    target = tmp_path / "votes.csv"
    run_command("export_votes", "votes", str(target))
    votes = pd.read_csv(target)
    assert list(votes.columns) == data.VOTE_COLUMNS
    cohorts = votes.groupby("participant")["cohort"].first().to_dict()
    assert cohorts.pop(participants["p1"].pk) == "mturk" and set(cohorts.values()) == {"link"}


# Time limit


def test_returned_and_timed_out_participants_are_left_out_and_listed(vote_study, staff_client):
    study, participants = vote_study
    Study.objects.filter(pk=study.pk).update(time_limit_minutes=30)
    report_url = reverse("staff:report", args=["votes"])
    before = staff_client.get(report_url).context
    assert before["timed_out_total"] == 0 and before["total_votes"] == 26

    long_ago = timezone.now() - dt.timedelta(hours=2)
    started = {key: participants[key].pk for key in ("p1", "p2", "c1")}
    Participant.objects.filter(pk__in=started.values()).update(started_at=long_ago)
    # p1 returned (never finished); p2 finished in 10 minutes; c1 finished after 45, past the limit.
    Participant.objects.filter(pk=started["p2"]).update(finished_at=long_ago + dt.timedelta(minutes=10))
    Participant.objects.filter(pk=started["c1"]).update(finished_at=long_ago + dt.timedelta(minutes=45))

    # Nobody voted since the first report: its cache must still see the time-outs.
    context = staff_client.get(report_url).context
    assert [row["pk"] for row in context["timed_out"]] == [started["p1"], started["c1"]]
    assert context["timed_out_total"] == 2 and [row["answered"] for row in context["timed_out"]] == [6, 4]
    assert context["total_votes"] == 26 - 6 - 4
    rows = {(row["source"], row["group"]): (row["judged_real"], row["votes"]) for row in context["summary"]}
    assert rows["real", "treatment"] == (3, 4)  # p2 2/2, p3 1/2
    assert rows["real", "control"] == (2, 4)  # c2 alone
    page = " ".join(staff_client.get(report_url).content.decode().split())
    assert "2 participants did not finish within the study's time limit of 30 minutes and are left out" in page
    study.refresh_from_db()
    exported = data.votes_frame(study)
    assert started["p1"] not in set(exported["participant"]) and started["p2"] in set(exported["participant"])


def test_without_a_time_limit_nobody_is_left_out(vote_study):
    study, participants = vote_study
    Participant.objects.filter(pk=participants["p1"].pk).update(started_at=timezone.now() - dt.timedelta(days=3))
    assert cache.report_tables(study)["timed_out_total"] == 0
    assert len(data.votes_frame(study)) == 26


def test_a_returned_participant_does_not_hold_a_place_under_the_cap(small_study):
    """Prolific replaces a participant who returns or times out with a new one; the cap (max_participants, set
    to the platform's places) counted the returned one, so the replacement was told the study was full and
    the study closed short of the people it can use, who are the ones the time limit keeps."""
    Study.objects.filter(pk=small_study.pk).update(max_participants=2, time_limit_minutes=20)
    first, second = Client(), Client()
    join(first, small_study, {**PROLIFIC, "PROLIFIC_PID": "returned"})
    join(second, small_study, {**PROLIFIC, "PROLIFIC_PID": "finishing"})
    assert Client().get(join_url(small_study, {**PROLIFIC, "PROLIFIC_PID": "third"})).context["reason"] == "full"
    Participant.objects.filter(label="returned").update(started_at=timezone.now() - dt.timedelta(minutes=21))

    replacement = join(Client(), small_study, {**PROLIFIC, "PROLIFIC_PID": "replacement"})

    assert replacement.label == "replacement"
    assert Client().get(join_url(small_study, {**PROLIFIC, "PROLIFIC_PID": "fourth"})).context["reason"] == "full"


# Settings


def test_create_study_takes_the_crowd_settings(image_folders):
    folders = image_folders(6)
    run_command(
        "create_study",
        "crowd",
        title="Crowd",
        real=str(folders.real),
        generated=[f"{name}={path}" for name, path in folders.generated.items()],
        completion_url="https://app.prolific.com/submissions/complete?cc=X1",
        completion_code="X1",
        time_limit=25,
        series="colour-2026",
        practice=0,
    )
    study = Study.objects.get(slug="crowd")
    assert (study.completion_code, study.time_limit_minutes, study.series) == ("X1", 25, "colour-2026")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"series": "two words"}, "--series 'two words'"), ({"time_limit": 0}, "--time-limit must be at least 1")],
)
def test_create_study_refuses_bad_crowd_settings(image_folders, options, message):
    folders = image_folders(4)
    with pytest.raises(CommandError, match=re.escape(message)):
        run_command(
            "create_study",
            "crowd",
            title="Crowd",
            real=str(folders.real),
            generated=[f"a={folders.generated['perceptual']}"],
            **options,
        )
    assert not Study.objects.filter(slug="crowd").exists()


def test_the_crowd_settings_stay_editable_in_the_admin_after_joins(admin_client, small_study):
    from tests.turing.test_admin import unchanged_form_data

    join(Client(), small_study, PROLIFIC)
    url = reverse("admin:turing_study_change", args=[small_study.pk])
    data = unchanged_form_data(admin_client.get(url))
    data.update(completion_code="C0DE", time_limit_minutes="20", series="spring")
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    small_study.refresh_from_db()
    assert (small_study.completion_code, small_study.time_limit_minutes, small_study.series) == ("C0DE", 20, "spring")

"""Crowd parameters that cannot be stored are refused with a page saying why, wherever they arrive (the join URL's
query, the URL the consent form posts to, the form's fields); Prolific IDs are one person in any case; a browser's
odd response time is left out and the vote kept."""

import html
import importlib
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertTemplateNotUsed, assertTemplateUsed

from tests.turing.participant_steps import current_trial, join, right_answer
from turing.models import LABEL_MAX_LENGTH, Participant, Trial
from turing.participant.crowd import CROWD_PARAMETERS
from turing.participant.forms import LABEL_PARAMETERS, MAX_RESPONSE_MS

pytestmark = pytest.mark.django_db

PROLIFIC = {"PROLIFIC_PID": "5f8a9c0d1e2f3a4b5c6d7e8f", "STUDY_ID": "st-42", "SESSION_ID": "se-7"}
SANDBOX = "https://workersandbox.mturk.com"
# What each bad value is refused for, as the page says it.
TOO_LONG = f"at most {LABEL_MAX_LENGTH} are allowed"
CONTROL = "contains control characters"
BAD_VALUES = {
    "too long": ("s" * (LABEL_MAX_LENGTH + 1), TOO_LONG),
    "NUL": ("st\x0042", CONTROL),
    "CR/LF": ("st\r\n42", CONTROL),
    "right-to-left override": ("st\u202e24", CONTROL),
    "bell": ("st\x0742", CONTROL),
    "escape": ("st\x1b[0m42", CONTROL),
    "zero-width joiner": ("st\u200d42", CONTROL),
}


def join_url(study, query=None):
    url = reverse("turing:join", args=[study.slug])
    return f"{url}?{urlencode(query)}" if query else url


def consent(**fields):
    return {"consent": "on", "join_key": "k" * 22, **fields}


def arrive(study, arrival, name, value):
    """The join request that brings a Prolific link's parameter ``name`` as ``value`` by way of ``arrival``."""
    query = {**PROLIFIC, name: value}
    if arrival == "GET query":
        return Client().get(join_url(study, query))
    if arrival == "POST URL":
        # The form carries the good Prolific IDs but not this one, which only the URL it was posted to has.
        fields = {key: good for key, good in PROLIFIC.items() if key != name}
        return Client().post(join_url(study, query), consent(**fields))
    return Client().post(join_url(study), consent(**query))


def text(response):
    return " ".join(html.unescape(response.content.decode()).split())


def assert_refused(response, name, reason):
    assert response.status_code == 400
    assertTemplateUsed(response, "turing/label_refused.html")
    assertTemplateNotUsed(response, "turing/join.html")
    page = text(response)
    assert f"This link's {name}" in page and reason in page
    assert not Participant.objects.exists()


@pytest.mark.parametrize("arrival", ["GET query", "POST URL", "form field"])
@pytest.mark.parametrize("bad", BAD_VALUES)
def test_a_bad_crowd_parameter_is_refused_saying_why_wherever_it_arrives(small_study, arrival, bad):
    value, reason = BAD_VALUES[bad]
    assert_refused(arrive(small_study, arrival, "STUDY_ID", value), "STUDY_ID", reason)


@pytest.mark.parametrize("name", sorted({*LABEL_PARAMETERS, *CROWD_PARAMETERS}))
@pytest.mark.parametrize("arrival", ["GET query", "POST URL", "form field"])
def test_every_crowd_parameter_is_checked(small_study, name, arrival):
    # A NUL byte reached PostgreSQL from the POST's URL (DataError: a bare 500), and a 256-character one too.
    assert_refused(arrive(small_study, arrival, name, "a\x00b"), name, CONTROL)
    assert_refused(arrive(small_study, arrival, name, "a" * 300), name, TOO_LONG)


def test_a_bad_value_among_repeated_parameters_is_refused(small_study):
    response = Client().get(f"{join_url(small_study, PROLIFIC)}&SESSION_ID=se%0A8")
    assert_refused(response, "SESSION_ID", CONTROL)


def test_good_crowd_parameters_up_to_the_limit_and_in_any_script_are_taken(client, small_study):
    query = {**PROLIFIC, "STUDY_ID": "s" * LABEL_MAX_LENGTH, "SESSION_ID": "סשן-7 セッション"}
    participant = join(client, small_study, query)
    assert (participant.platform_study, participant.platform_session) == (query["STUDY_ID"], query["SESSION_ID"])


# Prolific IDs in any case


def test_a_prolific_id_in_capitals_is_stored_lower_cased(client, small_study):
    participant = join(client, small_study, {**PROLIFIC, "PROLIFIC_PID": PROLIFIC["PROLIFIC_PID"].upper()})
    assert participant.label == PROLIFIC["PROLIFIC_PID"]


def test_a_prolific_id_in_another_case_resumes_the_same_participant(client, small_study):
    first = join(client, small_study, {**PROLIFIC, "PROLIFIC_PID": PROLIFIC["PROLIFIC_PID"].upper()})
    again = Client().get(join_url(small_study, PROLIFIC))
    assert again.status_code == 302 and again.url == reverse("turing:trial", args=[small_study.slug])
    # Through the consent form too, from a browser that never joined: the same participant, not a second one.
    for pid in (PROLIFIC["PROLIFIC_PID"], "5F8a9C0d1E2f3A4b5C6d7E8f"):
        posted = Client().post(join_url(small_study), consent(**{**PROLIFIC, "PROLIFIC_PID": pid}))
        assert posted.status_code == 302 and posted.url == reverse("turing:trial", args=[small_study.slug])
    assert list(small_study.participants.values_list("pk", flat=True)) == [first.pk]


def test_a_prolific_id_in_another_case_meets_the_series_exclusion(client, build_study):
    first = build_study("first", scenes=6, trials_per_participant=2, series="colour-2026")
    second = build_study("second", scenes=6, trials_per_participant=2, series="colour-2026")
    join(client, first, PROLIFIC)
    lower = PROLIFIC["PROLIFIC_PID"].upper()
    refused = Client().get(join_url(second, {**PROLIFIC, "PROLIFIC_PID": lower}))
    assert refused.status_code == 403 and "already taken part in “Study first”" in text(refused)
    posted = Client().post(join_url(second), consent(**{**PROLIFIC, "PROLIFIC_PID": lower}))
    assert posted.status_code == 403 and not second.participants.exists()


def test_other_labels_keep_their_case(client, small_study):
    assert join(client, small_study, {"participant_label": "P1-Anna"}).label == "P1-Anna"
    worker = {"workerId": "A1W0RKER", "assignmentId": "3AS", "hitId": "3H", "tab": "1", "turkSubmitTo": SANDBOX}
    assert join(Client(), small_study, worker).label == "A1W0RKER"


def test_the_migration_lower_cases_stored_prolific_ids_it_can(small_study, build_study):
    other = build_study("other", scenes=6, trials_per_participant=2)
    pid = PROLIFIC["PROLIFIC_PID"]
    capitals = Participant.objects.create(study=small_study, label=pid.upper(), cohort="prolific", join_key="a")
    # The same ID twice in one study (joined in both cases before): both participations are kept as they are.
    twice = Participant.objects.create(study=other, label=pid.upper(), cohort="prolific", join_key="b")
    Participant.objects.create(study=other, label=pid, cohort="prolific", join_key="c")
    # Not a Prolific ID (a participant_label given beside one), and not of Prolific's cohort: left alone.
    named = Participant.objects.create(study=small_study, label="P1-ABC", cohort="prolific", join_key="d")
    worker = Participant.objects.create(study=small_study, label="A" * 24, cohort="mturk", join_key="e")
    migration = importlib.import_module("turing.migrations.0004_lowercase_prolific_ids")
    migration.lowercase_prolific_ids(apps, None)
    labels = dict(Participant.objects.values_list("pk", "label"))
    assert labels[capitals.pk] == pid and labels[twice.pk] == pid.upper()
    assert labels[named.pk] == "P1-ABC" and labels[worker.pk] == "A" * 24


# A browser's odd response time


@pytest.mark.parametrize("response_ms", ["soon", "-5", str(MAX_RESPONSE_MS + 1), "1e9", "NaN"])
def test_a_bad_response_time_is_left_out_and_the_vote_stored(client, small_study, response_ms):
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    answer = right_answer(trial)
    response = client.post(data["vote_url"], {"answer": answer, "response_ms": response_ms, "viewport_width": 390})
    assert response.status_code == 302
    trial = Trial.objects.get(pk=trial.pk)
    assert (trial.answer, trial.response_ms) == (answer, None)
    assert trial.participant.viewport_width == 390, "the other measurements are kept"

"""A database that stops answering: participants get a 503 that says to wait and retries, never a bare 500,
and an answer stored just before the failure is accepted once when sent again."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from tests.turing.participant_steps import current_trial, join, join_form, right_answer
from turing.participant import answers, decorators

pytestmark = pytest.mark.django_db


def fail_once(monkeypatch, module, name):
    """Make <module>.<name> raise OperationalError on its next call only."""
    real = getattr(module, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def test_a_page_during_an_outage_is_a_503_that_reloads_itself(client, small_study, monkeypatch):
    join(client, small_study)
    fail_once(monkeypatch, decorators, "held_participant")
    page = client.get(reverse("turing:trial", args=[small_study.slug]))
    assert page.status_code == 503 and page["Retry-After"] == "3"
    body = page.content.decode()
    assert "Connection problem — retrying…" in body and 'http-equiv="refresh"' in body


def test_a_vote_stored_before_the_outage_is_accepted_once_when_retried(client, small_study, monkeypatch):
    participant = join(client, small_study)
    data, trial = current_trial(client, small_study)
    # The answer is committed, then the connection drops before the reply.
    real = answers.record_answer

    def then_the_outage(*args, **kwargs):
        real(*args, **kwargs)
        raise OperationalError("the database went away")

    monkeypatch.setattr(answers, "record_answer", then_the_outage)
    vote = {"answer": right_answer(trial)}
    first = client.post(data["vote_url"], vote, headers={"accept": "application/json"})
    assert first.status_code == 503 and first.json() == {"retry": True, "retry_seconds": 3}
    trial.refresh_from_db()
    assert trial.answer == right_answer(trial)  # stored before the failure
    again = client.post(data["vote_url"], vote, headers={"accept": "application/json"})
    assert again.status_code == 200 and again.json()["next"] is not None
    participant.refresh_from_db()
    assert participant.answer_count == 1


def test_an_outage_while_saving_the_session_after_a_join_is_a_503_not_a_500(small_study, monkeypatch):
    # The join view has returned; SessionMiddleware meets the outage on the way out, outside any view.
    browser = Client(raise_request_exception=False)
    url, fields = join_form(browser, small_study)

    def outage(self, must_create=False):
        raise OperationalError("the database went away")

    monkeypatch.setattr(SessionStore, "save", outage)
    page = browser.post(url, fields)
    assert page.status_code == 503 and "Connection problem — retrying…" in page.content.decode()

    monkeypatch.undo()
    # Start pressed again once the database is back: the participant made before the outage, not a second one.
    assert browser.post(url, fields).status_code == 302
    assert small_study.participants.count() == 1


def test_other_errors_outside_a_view_are_still_a_plain_500(small_study, monkeypatch):
    browser = Client(raise_request_exception=False)
    url, fields = join_form(browser, small_study)
    monkeypatch.setattr(SessionStore, "save", lambda self, must_create=False: 1 / 0)
    page = browser.post(url, fields)
    assert page.status_code == 500 and "Connection problem" not in page.content.decode()

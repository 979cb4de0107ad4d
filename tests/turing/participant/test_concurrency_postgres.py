"""Races that only a database server shows: requests at the same instant, each thread on its own connection.

These run on PostgreSQL (`make test` starts one with .ci/postgres and runs `pytest -m postgres` with
DATABASE_URL pointing at it); the in-memory SQLite test database cannot serve several connections.
"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from tests.turing.participant_steps import current_trial, join, join_form, session_participant
from turing.models import Participant, Trial
from turing.vocabulary import GENERATED, REAL

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _on_postgresql():
    assert connection.vendor == "postgresql", "run with DATABASE_URL=postgres://... (see .ci/postgres)"


def at_once(calls):
    """Run every call in its own thread, released together; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # re-raised below: an assertion in a thread would be lost
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def tabs_of(client, count):
    """Clients sharing one browser session, like tabs of one phone."""
    tabs = []
    for _ in range(count):
        tab = Client()
        tab.cookies = client.cookies
        tabs.append(tab)
    return tabs


def test_the_same_vote_sent_eight_times_at_once_is_stored_once_and_accepted(small_study):
    client = Client()
    participant = join(client, small_study)
    data, trial = current_trial(client, small_study)

    statuses = at_once(
        [lambda tab=tab: tab.post(data["vote_url"], {"answer": REAL}).status_code for tab in tabs_of(client, 8)]
    )

    assert statuses == [302] * 8
    trial.refresh_from_db()
    assert trial.answer == REAL and trial.answered_at is not None
    assert participant.trials.exclude(answer="").count() == 1


def test_conflicting_answers_at_once_keep_the_first_and_refuse_the_rest(small_study):
    client = Client()
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    answers = [REAL, GENERATED] * 4

    statuses = at_once(
        [
            lambda tab=tab, answer=answer: tab.post(data["vote_url"], {"answer": answer}).status_code
            for tab, answer in zip(tabs_of(client, 8), answers)
        ]
    )

    trial.refresh_from_db()
    assert trial.answer in (REAL, GENERATED)
    for answer, status in zip(answers, statuses):
        assert status == (302 if answer == trial.answer else 409), (answer, status, trial.answer)


def test_participants_joining_at_once_get_balanced_groups_and_views(build_study):
    study = build_study("rush", scenes=30, trials_per_participant=6, practice_trials=0, control_fraction=0.25)
    clients = [Client() for _ in range(24)]
    # Pages fetched first, outside the race: the test client collects the context of every template rendered
    # while its request runs, other threads' too, so a page fetched in a race may carry another one's form.
    forms = [join_form(client, study) for client in clients]

    at_once([lambda client=client, form=form: client.post(*form) for client, form in zip(clients, forms)])

    participants = Participant.objects.filter(study=study)
    assert participants.count() == 24
    groups = Counter(participants.values_list("group", flat=True))
    assert groups == {"treatment": 18, "control": 6}, "blocks of 4 with one control, none skipped or doubled"
    scored = Trial.objects.filter(participant__study=study, kind=Trial.Kind.SCORED)
    for participant in participants:
        scenes = scored.filter(participant=participant).values_list("stimulus__scene", flat=True)
        assert len(scenes) == 6 and len(set(scenes)) == 6
    # Each join counted the trials of the joins before it: had two read the same counts, they would have
    # taken the same least-shown stimuli, and some stimuli would be far ahead of others of their source.
    views = Counter(scored.values_list("stimulus", flat=True))
    for source in study.stimuli.values_list("source", flat=True).distinct():
        counts = [views[pk] for pk in study.stimuli.filter(source=source).values_list("pk", flat=True)]
        assert max(counts) - min(counts) <= 1, (source, sorted(counts))


@pytest.mark.parametrize("count", [2, 8])
@pytest.mark.parametrize("same_browser", [True, False], ids=["tabs", "clients"])
def test_one_join_form_sent_several_times_at_once_makes_one_participant(small_study, count, same_browser):
    client = Client()
    url, data = join_form(client, small_study)
    senders = tabs_of(client, count) if same_browser else [Client() for _ in range(count)]

    responses = at_once([lambda sender=sender: sender.post(url, data) for sender in senders])

    trial_url = reverse("turing:trial", args=[small_study.slug])
    assert [(response.status_code, response.url) for response in responses] == [(302, trial_url)] * count
    participant = Participant.objects.get(study=small_study)
    assert all(session_participant(sender, small_study) == participant for sender in senders)
    assert participant.trials.count() == 6


@pytest.mark.parametrize("count", [2, 8])
def test_one_prolific_id_joining_from_several_clients_at_once_makes_one_participant(small_study, count):
    clients = [Client() for _ in range(count)]
    forms = [join_form(client, small_study, {"PROLIFIC_PID": "5f0c3a9e1b2d"}) for client in clients]

    responses = at_once([lambda client=client, form=form: client.post(*form) for client, form in zip(clients, forms)])

    assert [response.status_code for response in responses] == [302] * count
    participant = Participant.objects.get(study=small_study)
    assert participant.label == "5f0c3a9e1b2d"
    assert all(session_participant(client, small_study) == participant for client in clients)
    assert participant.trials.count() == 6

"""Races that only a database server shows: requests at the same instant, each thread on its own connection.

These run on PostgreSQL (`make test` starts one with .ci/postgres and runs `pytest -m postgres` with
DATABASE_URL pointing at it); the in-memory SQLite test database cannot serve several connections.
"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test import Client

from tests.turing.participant_steps import current_trial, join
from turing.models import GENERATED, REAL, Participant, Stimulus, Trial

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

    statuses = at_once([lambda tab=tab: tab.post(data["vote_url"], {"answer": REAL}).status_code
                        for tab in tabs_of(client, 8)])

    assert statuses == [302] * 8
    trial.refresh_from_db()
    assert trial.answer == REAL and trial.answered_at is not None
    assert participant.trials.exclude(answer="").count() == 1


def test_conflicting_answers_at_once_keep_the_first_and_refuse_the_rest(small_study):
    client = Client()
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    answers = [REAL, GENERATED] * 4

    statuses = at_once([lambda tab=tab, answer=answer: tab.post(data["vote_url"], {"answer": answer}).status_code
                        for tab, answer in zip(tabs_of(client, 8), answers)])

    trial.refresh_from_db()
    assert trial.answer in (REAL, GENERATED)
    for answer, status in zip(answers, statuses):
        assert status == (302 if answer == trial.answer else 409), (answer, status, trial.answer)


def test_participants_joining_at_once_get_balanced_groups_and_views(build_study):
    study = build_study("rush", scenes=30, trials_per_participant=6, practice_trials=0, control_fraction=0.25)
    clients = [Client() for _ in range(24)]

    at_once([lambda client=client: join(client, study) for client in clients])

    participants = Participant.objects.filter(study=study)
    assert participants.count() == 24
    groups = Counter(participants.values_list("group", flat=True))
    assert groups == {"treatment": 18, "control": 6}, "blocks of 4 with one control, none skipped or doubled"
    scored = Trial.objects.filter(participant__study=study, practice=False)
    for participant in participants:
        scenes = scored.filter(participant=participant).values_list("stimulus__scene", flat=True)
        assert len(scenes) == 6 and len(set(scenes)) == 6
    assert sum(Stimulus.objects.filter(study=study).values_list("times_assigned", flat=True)) == scored.count()

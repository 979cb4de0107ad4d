"""What the requests every participant makes many times cost the database: a vote, a trial page, an image.

Counted as SQL statements (transaction control aside) and commits, on whichever database the suite runs on.
"""

import re
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import connection
from django.urls import reverse

from tests.turing.participant_steps import current_trial, join, right_answer

pytestmark = pytest.mark.django_db(transaction=True)  # real commits, not the test's savepoints

TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)", re.IGNORECASE)
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)", re.IGNORECASE)
JSON = {"accept": "application/json"}


@contextmanager
def database_work():
    """Yield a dict that fills with the statements run inside the block, the writes run outside a transaction
    (each its own commit) and the commits of transactions."""
    seen = {"statements": [], "autocommitted_writes": [], "commits": 0}

    def record(execute, sql, params, many, context):
        if not TRANSACTION_CONTROL.match(sql):
            seen["statements"].append(sql)
            if WRITE.match(sql) and not connection.in_atomic_block:
                seen["autocommitted_writes"].append(sql)
        return execute(sql, params, many, context)

    real_commit = connection.commit

    def commit():
        seen["commits"] += 1
        real_commit()

    with connection.execute_wrapper(record), mock.patch.object(connection, "commit", commit):
        yield seen


@pytest.fixture
def participant_at_a_scored_trial(client, build_study):
    study = build_study(scenes=13, trials_per_participant=6, practice_trials=2, catch_trials=1)
    join(client, study)
    for _ in range(3):  # past the practice
        data, trial = current_trial(client, study)
        client.post(data["vote_url"], {"answer": right_answer(trial), "response_ms": 900}, headers=JSON)
    data, trial = current_trial(client, study)
    assert not trial.practice
    return study, data, trial


def bumps_the_data_version(statements):
    return any(WRITE.match(sql) and "turing_study" in sql and "data_version" in sql for sql in statements)


def test_a_scored_vote_is_six_statements_and_one_commit_without_a_session_write(client, participant_at_a_scored_trial):
    study, data, trial = participant_at_a_scored_trial
    with database_work() as seen:
        reply = client.post(data["vote_url"], {"answer": right_answer(trial), "response_ms": 900}, headers=JSON)
    assert reply.status_code == 200 and reply.json()["next"] is not None
    # The sixth is the bump of the study's data_version, in the answer's transaction.
    assert len(seen["statements"]) <= 6 and bumps_the_data_version(seen["statements"]), seen["statements"]
    assert seen["commits"] == 1 and seen["autocommitted_writes"] == []
    assert not any("django_session" in sql for sql in seen["statements"] if WRITE.match(sql))
    trial.refresh_from_db()
    assert trial.answer == right_answer(trial)


def test_the_last_vote_finishes_the_participant_in_the_same_commit(client, participant_at_a_scored_trial):
    study, data, trial = participant_at_a_scored_trial
    participant = trial.participant
    while True:
        with database_work() as seen:
            reply = client.post(data["vote_url"], {"answer": right_answer(trial), "response_ms": 900}, headers=JSON)
        assert len(seen["statements"]) <= 6 and seen["commits"] == 1, seen["statements"]
        if reply.json()["next"] is None:
            break
        data, trial = current_trial(client, study)
    participant.refresh_from_db()
    assert participant.finished_at is not None
    assert participant.answer_count == participant.trials.count()


def test_a_trial_page_reads_three_times_and_writes_nothing(client, participant_at_a_scored_trial):
    study, _, _ = participant_at_a_scored_trial
    with database_work() as seen:
        page = client.get(reverse("turing:trial", args=[study.slug]))
    assert page.status_code == 200
    assert len(seen["statements"]) <= 4, seen["statements"]
    assert not any(WRITE.match(sql) for sql in seen["statements"]) and seen["commits"] == 0


def test_an_image_is_two_reads(client, participant_at_a_scored_trial):
    _, data, _ = participant_at_a_scored_trial
    with database_work() as seen:
        image = client.get(data["image_url"])
    assert image.status_code == 200
    assert len(seen["statements"]) <= 2 and seen["commits"] == 0, seen["statements"]


def test_with_an_exposure_limit_a_vote_also_records_the_next_exposure_in_the_same_commit(client, build_study):
    study = build_study(scenes=10, trials_per_participant=4, practice_trials=0, exposure_ms=1500)
    join(client, study)
    data, trial = current_trial(client, study)
    with database_work() as seen:
        reply = client.post(data["vote_url"], {"answer": right_answer(trial), "response_ms": 900}, headers=JSON)
    assert reply.status_code == 200 and reply.json()["next"] is not None
    assert len(seen["statements"]) <= 7 and bumps_the_data_version(seen["statements"]), seen["statements"]
    assert seen["commits"] == 1 and seen["autocommitted_writes"] == []

"""Study.data_version, the report cache's key, moves with every change to a study's data: a join, a vote, a
bot purge, a deletion of participants or answers; and a study saved from a stale instance leaves it alone."""

import pytest
from django.urls import reverse

from tests.turing.conftest import run_command
from tests.turing.participant_steps import current_trial, join, right_answer
from turing.models import Participant, Study, Trial
from turing.participant.enrollment import enroll_participant
from turing.vocabulary import BOT

pytestmark = pytest.mark.django_db


def version(study):
    return Study.objects.values_list("data_version", flat=True).get(pk=study.pk)


def test_a_join_bumps_it(client, small_study):
    before = version(small_study)
    join(client, small_study)
    assert version(small_study) == before + 1


def test_a_vote_bumps_it_and_a_repeated_vote_does_not(client, small_study):
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    before = version(small_study)
    client.post(data["vote_url"], {"answer": right_answer(trial)})
    assert version(small_study) == before + 1
    client.post(data["vote_url"], {"answer": right_answer(trial)})
    assert version(small_study) == before + 1


def test_a_bot_purge_bumps_it(small_study):
    enroll_participant(small_study, kind=BOT, label="bot-0001")
    before = version(small_study)
    run_command("purge_bots", small_study.slug)
    assert version(small_study) == before + 1
    assert not small_study.participants.exists()


def test_deleting_participants_in_the_admin_bumps_it(admin_client, small_study):
    first, second, third = (enroll_participant(small_study) for _ in range(3))
    before = version(small_study)
    admin_client.post(reverse("admin:turing_participant_delete", args=[first.pk]), {"post": "yes"})
    assert version(small_study) == before + 1
    admin_client.post(
        reverse("admin:turing_participant_changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [second.pk, third.pk]},
    )
    assert version(small_study) == before + 2
    assert not Participant.objects.exists()


def test_deleting_trials_in_the_admin_bumps_it(admin_client, small_study):
    trial = enroll_participant(small_study).trials.first()
    before = version(small_study)
    admin_client.post(reverse("admin:turing_trial_delete", args=[trial.pk]), {"post": "yes"})
    assert version(small_study) == before + 1
    assert not Trial.objects.filter(pk=trial.pk).exists()


def test_saving_a_study_read_before_a_vote_keeps_the_votes_bump(client, small_study):
    stale = Study.objects.get(pk=small_study.pk)
    join(client, small_study)
    stale.title = "Renamed"
    stale.save()
    assert version(small_study) == stale.data_version + 1
    assert Study.objects.get(pk=small_study.pk).title == "Renamed"

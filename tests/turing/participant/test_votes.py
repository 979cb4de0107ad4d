"""Votes are recorded once, never changed, only by their own participant, and image URLs give nothing away."""

from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from tests.turing.participant_steps import current_trial, join, join_form, right_answer, wrong_answer
from turing.models import Trial
from turing.participant import views
from turing.vocabulary import GENERATED, REAL


@pytest.fixture
def voted(client, small_study):
    """A participant who answered their first trial rightly: (its vote URL, the Trial)."""
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    response = client.post(data["vote_url"], {"answer": right_answer(trial), "response_ms": 900})
    assert response.status_code == 302
    trial.refresh_from_db()
    return data["vote_url"], trial


def test_the_same_answer_twice_is_recorded_once(client, voted):
    vote_url, trial = voted
    again = client.post(vote_url, {"answer": trial.answer, "response_ms": 5000})
    assert again.status_code == 302
    assert again.url == reverse("turing:feedback", args=["small", trial.pk])
    stored = Trial.objects.get(pk=trial.pk)
    assert (stored.answer, stored.response_ms, stored.answered_at) == (trial.answer, 900, trial.answered_at)
    assert Trial.objects.exclude(answer="").count() == 1


def test_the_same_answer_twice_by_javascript_is_a_success(client, voted):
    vote_url, trial = voted
    again = client.post(vote_url, {"answer": trial.answer}, headers={"accept": "application/json"})
    assert again.status_code == 200 and again.json()["next"]["progress"] == "Practice 2 / 2"
    assert Trial.objects.exclude(answer="").count() == 1


@pytest.mark.parametrize("same_answer", [True, False])
def test_a_vote_racing_another_request_for_the_same_trial(client, small_study, same_answer):
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    answer = right_answer(trial)
    rival = answer if same_answer else wrong_answer(trial)

    def rival_request_commits_first(request, raced_trial):
        # Runs after this request read the trial as unanswered and before it writes.
        Trial.objects.filter(pk=raced_trial.pk).update(answer=rival, response_ms=700)
        return 999

    with mock.patch.object(views, "server_response_ms", side_effect=rival_request_commits_first):
        response = client.post(data["vote_url"], {"answer": answer})
    assert response.status_code == (302 if same_answer else 409)
    stored = Trial.objects.get(pk=trial.pk)
    assert (stored.answer, stored.response_ms) == (rival, 700)


def test_a_different_answer_to_an_answered_trial_is_refused(client, voted):
    vote_url, trial = voted
    refused = client.post(vote_url, {"answer": wrong_answer(trial)})
    assert refused.status_code == 409
    assert "answers cannot be changed" in refused.content.decode()
    assert Trial.objects.get(pk=trial.pk).answer == trial.answer

    refused = client.post(vote_url, {"answer": wrong_answer(trial)}, headers={"accept": "application/json"})
    assert refused.status_code == 409
    assert refused.json()["redirect"] == reverse("turing:trial", args=["small"])


def test_back_button_reaches_only_the_current_trial(client, small_study, voted):
    vote_url, trial = voted
    # Going back and reloading shows the next trial, not the answered one ...
    data, current = current_trial(client, small_study)
    assert current.pk != trial.pk and data["vote_url"] != vote_url
    # ... and a stale page's form cannot change the answer.
    assert client.post(vote_url, {"answer": wrong_answer(trial)}).status_code == 409
    assert Trial.objects.get(pk=trial.pk).answer == trial.answer


def test_trials_are_answered_in_order(client, small_study):
    participant = join(client, small_study)
    later = participant.trials.get(position=3)
    response = client.post(reverse("turing:vote", args=["small", later.pk]), {"answer": REAL})
    assert response.status_code == 409
    assert not participant.trials.exclude(answer="").exists()


def test_another_participants_trial_is_not_found(client, small_study):
    owner = join(client, small_study)
    intruder = Client()
    join(intruder, small_study)
    theirs = owner.trials.order_by("position").first()
    response = intruder.post(reverse("turing:vote", args=["small", theirs.pk]), {"answer": GENERATED})
    assert response.status_code == 404
    assert Trial.objects.get(pk=theirs.pk).answer == ""


def test_a_trial_of_another_study_is_not_found(client, small_study, build_study):
    other = build_study("other", scenes=4, trials_per_participant=2, practice_trials=0)
    participant = join(client, small_study)
    join(client, other)
    trial = participant.trials.order_by("position").first()
    assert client.post(reverse("turing:vote", args=["other", trial.pk]), {"answer": REAL}).status_code == 404


def test_a_browser_that_never_joined_cannot_vote(small_study, client):
    participant = join(Client(), small_study)
    trial = participant.trials.first()
    response = client.post(reverse("turing:vote", args=["small", trial.pk]), {"answer": REAL})
    assert response.url == reverse("turing:join", args=["small"])
    assert Trial.objects.get(pk=trial.pk).answer == ""


def test_an_answer_other_than_real_or_generated_is_refused(client, small_study):
    join(client, small_study)
    data, trial = current_trial(client, small_study)
    assert client.post(data["vote_url"], {"answer": "maybe"}).status_code == 400
    assert not Trial.objects.exclude(answer="").exists()


def test_votes_are_get_only_refused(client, voted):
    vote_url, _ = voted
    assert client.get(vote_url).status_code == 405


def test_csrf_is_enforced(small_study):
    browser = Client(enforce_csrf_checks=True)
    join_url, fields = join_form(browser, small_study)
    token = browser.cookies["csrftoken"].value
    assert browser.post(join_url, fields).status_code == 403
    assert browser.post(join_url, {**fields, "csrfmiddlewaretoken": token}).status_code == 302

    data, trial = current_trial(browser, small_study)
    assert browser.post(data["vote_url"], {"answer": REAL}).status_code == 403
    assert Trial.objects.get(pk=trial.pk).answer == ""
    # What participant.js sends: the token in the X-CSRFToken header.
    accepted = browser.post(
        data["vote_url"], {"answer": REAL}, headers={"x-csrftoken": token, "accept": "application/json"}
    )
    assert accepted.status_code == 200
    assert Trial.objects.get(pk=trial.pk).answer == REAL


# Image access


def test_participant_gets_their_images_with_identical_headers(client, small_study):
    participant = join(client, small_study)
    headers = []
    for trial in participant.trials.select_related("stimulus"):
        response = client.get(reverse("turing:image", args=[trial.image_token]))
        assert response.status_code == 200
        with trial.stimulus.image.open("rb") as stored:
            assert b"".join(response.streaming_content) == stored.read()
        assert int(response["Content-Length"]) == trial.stimulus.image.size
        headers.append({key: value for key, value in response.headers.items() if key != "Content-Length"})
    sources = set(participant.trials.values_list("stimulus__source", flat=True))
    assert len(sources) == 3, "real and both models, so that identical headers mean something"
    assert all(h == headers[0] for h in headers)
    assert headers[0]["Content-Type"] == "image/png"
    # Not even the browser keeps a copy that could be found or compared later.
    assert headers[0]["Cache-Control"] == "no-store"
    for revealing in ("Content-Disposition", "Last-Modified", "ETag"):
        assert revealing not in headers[0]


def test_image_urls_reveal_neither_scene_nor_source_nor_stimulus(client, small_study):
    participant = join(client, small_study)
    for trial in participant.trials.select_related("stimulus"):
        url = reverse("turing:image", args=[trial.image_token])
        assert url.rsplit("/", 1)[1] == trial.image_token
        stimulus = trial.stimulus
        assert stimulus.token not in url and stimulus.scene not in url and stimulus.source not in url


def test_images_outside_ones_trials_are_not_found(client, small_study, django_user_model):
    participant = join(client, small_study)
    trial = participant.trials.select_related("stimulus").first()
    # A stimulus's own token is no participant URL, even for a stimulus this participant is shown.
    assert client.get(reverse("turing:image", args=[trial.stimulus.token])).status_code == 404

    url = reverse("turing:image", args=[trial.image_token])
    assert Client().get(url).status_code == 404
    member = Client()
    member.force_login(django_user_model.objects.create_user("visitor", password="x"))
    assert member.get(url).status_code == 404
    assert client.get(reverse("turing:image", args=["not-a-token"])).status_code == 404


def test_staff_see_every_stimulus_but_no_participants_image_url(client, small_study, admin_client):
    for stimulus in small_study.stimuli.all():
        assert admin_client.get(reverse("staff:stimulus", args=[stimulus.token])).status_code == 200
        assert client.get(reverse("staff:stimulus", args=[stimulus.token])).status_code != 200
    trial = join(client, small_study).trials.first()
    assert admin_client.get(reverse("turing:image", args=[trial.image_token])).status_code == 404

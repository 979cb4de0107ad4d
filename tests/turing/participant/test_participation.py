"""What makes the results defensible, through the participant views: no answer key in any reply or image
URL, one person one participation, limits on joining, and shared devices (kiosk mode)."""

from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertTemplateUsed

from tests.turing.participant_steps import (
    answer_all,
    current_trial,
    join,
    join_form,
    right_answer,
    session_participant,
    wrong_answer,
)
from turing.models import LABEL_MAX_LENGTH, Participant, Study, Trial
from turing.participant import throttle, views

JSON = {"accept": "application/json"}


def text(response):
    """The response's HTML with runs of white space made single spaces."""
    return " ".join(response.content.decode().split())


def bot_client():
    """A client whose session is marked the way simulate_participants marks its bots'."""
    client = Client()
    session = client.session
    session[views.BOT_SESSION_KEY] = True
    session.save()
    return client


def resume(client, study, label):
    """Open the join link with a label that already took part; return the client, now holding that participant."""
    response = client.get(reverse("turing:join", args=[study.slug]), {"participant_label": label})
    assert response.status_code == 302 and response.url == reverse("turing:trial", args=[study.slug])
    return client


# Point 1: only practice votes say whether the answer was right.


def without_urls(reply):
    """A JSON vote reply without its URLs, which differ between participants by design."""
    if isinstance(reply, dict):
        return {key: without_urls(value) for key, value in reply.items() if not key.endswith(("url", "urls"))}
    return reply


@pytest.fixture
def blind_study(build_study):
    # One practice trial, then three scored trials and one attention check in random order.
    return build_study("blind", scenes=11, trials_per_participant=3, practice_trials=1, catch_trials=1, seed=4)


def test_scored_and_catch_replies_are_the_same_for_right_and_wrong_answers(blind_study):
    study = blind_study
    replies = {}
    for choose in (right_answer, wrong_answer):
        client = Client()
        participant = join(client, study)
        data, trial = current_trial(client, study)
        practice = client.post(data["vote_url"], {"answer": choose(trial)}, headers=JSON).json()
        assert practice["feedback"]["correct"] is (choose is right_answer)
        replies[choose] = []
        kinds = []
        while (step := current_trial(client, study)) != (None, None):
            data, trial = step
            kinds.append(trial.kind)
            reply = client.post(data["vote_url"], {"answer": choose(trial)}, headers=JSON).json()
            assert reply["feedback"] is None
            replies[choose].append(without_urls(reply))
        assert sorted(kinds) == [Trial.Kind.CATCH] + [Trial.Kind.SCORED] * 3
        assert {trial.correct for trial in participant.trials.exclude(kind=Trial.Kind.PRACTICE)} == {
            choose is right_answer
        }
    assert replies[right_answer] == replies[wrong_answer]


def test_scored_html_votes_redirect_alike_for_right_and_wrong_answers(blind_study):
    study = blind_study
    replies = {}
    for choose in (right_answer, wrong_answer):
        client = Client()
        join(client, study)
        data, trial = current_trial(client, study)
        practice = client.post(data["vote_url"], {"answer": choose(trial)})
        # Practice: the feedback page, which tells whether the answer was right.
        assert practice.url == reverse("turing:feedback", args=["blind", trial.pk])
        verdict = "Correct!" if choose is right_answer else "Not quite."
        assert verdict in client.get(practice.url).content.decode()
        replies[choose] = []
        while (step := current_trial(client, study)) != (None, None):
            data, trial = step
            response = client.post(data["vote_url"], {"answer": choose(trial)})
            replies[choose].append((response.status_code, response.url, response.content))
    trial_url, finish_url = reverse("turing:trial", args=["blind"]), reverse("turing:finish", args=["blind"])
    assert [url for _, url, _ in replies[right_answer]] == [trial_url] * 3 + [finish_url]
    assert replies[right_answer] == replies[wrong_answer]


# Point 2: an image URL belongs to one trial, one participant, and dies with the answer.


@pytest.fixture
def shared_study(build_study):
    # Every participant sees both real photos: the same two stimuli for all.
    return build_study("shared", scenes=2, trials_per_participant=2, real_fraction=1.0)


def test_one_stimulus_gets_a_different_url_for_each_participant(shared_study):
    alice, bob = Client(), Client()
    alices, bobs = join(alice, shared_study), join(bob, shared_study)
    data, _ = current_trial(alice, shared_study)
    assert data["image_url"] == reverse("turing:image", args=[alices.trials.get(position=1).image_token])
    shown = set(alices.trials.values_list("stimulus", flat=True))
    assert shown == set(bobs.trials.values_list("stimulus", flat=True)) and len(shown) == 2
    for stimulus in shown:
        url_a = reverse("turing:image", args=[alices.trials.get(stimulus=stimulus).image_token])
        url_b = reverse("turing:image", args=[bobs.trials.get(stimulus=stimulus).image_token])
        assert url_a != url_b
        response = alice.get(url_a)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert bob.get(url_b).status_code == 200
        assert bob.get(url_a).status_code == 404
        assert alice.get(url_b).status_code == 404
        assert Client().get(url_a).status_code == 404


def test_an_answered_trials_image_lasts_only_the_grace_period(client, shared_study, settings):
    join(client, shared_study)
    data, trial = current_trial(client, shared_study)
    client.post(data["vote_url"], {"answer": right_answer(trial)})
    # A reload of the page that showed it, just after the vote.
    assert client.get(data["image_url"]).status_code == 200

    Trial.objects.filter(pk=trial.pk).update(
        answered_at=F("answered_at") - timedelta(seconds=settings.TURING_IMAGE_GRACE_SECONDS + 1)
    )
    assert client.get(data["image_url"]).status_code == 404
    # The next trial's image, not answered yet, is still there.
    assert client.get(data["next_image_url"]).status_code == 200


def test_without_a_grace_period_the_answer_ends_the_url(client, shared_study, settings):
    settings.TURING_IMAGE_GRACE_SECONDS = 0
    join(client, shared_study)
    data, trial = current_trial(client, shared_study)
    assert client.get(data["image_url"]).status_code == 200
    client.post(data["vote_url"], {"answer": right_answer(trial)})
    assert client.get(data["image_url"]).status_code == 404


# Point 4: one person, one participation.


def test_a_join_form_sent_twice_makes_one_participant(client, small_study):
    url, fields = join_form(client, small_study)
    first = client.post(url, fields)
    second = client.post(url, fields)
    assert first.url == second.url == reverse("turing:trial", args=["small"])
    participant = Participant.objects.get()
    assert participant.join_key == fields["join_key"]
    assert participant.trials.count() == 6


def test_a_join_form_sent_from_two_clients_makes_one_participant(small_study):
    first, second = Client(), Client()
    url, fields = join_form(first, small_study)
    assert first.post(url, fields).status_code == 302
    assert second.post(url, fields).status_code == 302
    participant = Participant.objects.get()
    assert session_participant(first, small_study) == session_participant(second, small_study) == participant


def test_a_double_join_racing_past_the_first_check_still_makes_one_participant(client, small_study):
    url, fields = join_form(client, small_study)
    client.post(url, fields)
    # The second request checked before the first one committed: enroll_participant finds the twin.
    with mock.patch.object(views, "existing_participant", return_value=None):
        assert client.post(url, fields).status_code == 302
    assert Participant.objects.count() == 1
    assert Trial.objects.count() == 6


def test_two_browsers_starting_with_one_label_make_one_participant(small_study):
    first, second = Client(), Client()
    url, first_fields = join_form(first, small_study, {"PROLIFIC_PID": "worker-1"})
    _, second_fields = join_form(second, small_study, {"PROLIFIC_PID": "worker-1"})
    assert first_fields["join_key"] != second_fields["join_key"]
    first.post(url, first_fields)
    second.post(url, second_fields)
    assert Participant.objects.get().label == "worker-1"
    assert session_participant(second, small_study) == session_participant(first, small_study)


def test_a_label_that_took_part_resumes_in_another_browser_then_is_done(small_study):
    query = {"PROLIFIC_PID": "5f8a9c"}
    first = Client()
    participant = join(first, small_study, query)
    for _ in range(3):
        data, trial = current_trial(first, small_study)
        first.post(data["vote_url"], {"answer": right_answer(trial)})

    second = Client()
    url = reverse("turing:join", args=["small"]) + "?PROLIFIC_PID=5f8a9c"
    resumed = second.get(url)
    assert resumed.url == reverse("turing:trial", args=["small"])
    assert session_participant(second, small_study) == participant
    _, trial = current_trial(second, small_study)
    assert trial.position == 4
    answer_all(second, small_study)
    assert Participant.objects.get().trials.filter(answer="").count() == 0

    done = Client().get(url, follow=True)
    assertTemplateUsed(done, "turing/finish.html")
    assert "Thank you!" in text(done) and "Your answers are saved" in text(done)
    assert Participant.objects.count() == 1


def test_labels_up_to_the_limit_are_accepted(small_study):
    label = "x" * LABEL_MAX_LENGTH
    assert join(Client(), small_study, {"participant_label": label}).label == label


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_label_over_the_limit_is_refused_with_a_clear_message(small_study, method):
    url = reverse("turing:join", args=["small"])
    label = "x" * (LABEL_MAX_LENGTH + 1)
    if method == "get":
        response = Client().get(url, {"participant_label": label})
    else:
        response = Client().post(url, {"consent": "on", "participant_label": label, "join_key": "k" * 22})
    assert response.status_code == 400
    assertTemplateUsed(response, "turing/label_refused.html")
    assert f"at most {LABEL_MAX_LENGTH} are allowed" in text(response)
    assert not Participant.objects.exists()


@pytest.mark.parametrize("label", ["tab\there", "two\nlines", "bell\x07", "escape\x1b[0m"])
def test_a_label_with_control_characters_is_refused(small_study, label):
    response = Client().get(reverse("turing:join", args=["small"]), {"PROLIFIC_PID": label})
    assert response.status_code == 400
    assert "control characters" in text(response)
    assert not Participant.objects.exists()


# Point 5: limits on joining.


@pytest.fixture
def one_minute():
    # Every join counted in the same minute, however long the test takes.
    with mock.patch.object(throttle, "time", SimpleNamespace(time=lambda: 60.0 * 28_000_000 + 1)):
        yield


def test_joins_per_address_are_limited_and_so_are_label_look_ups(small_study, settings, one_minute):
    settings.TURING_JOINS_PER_MINUTE = 4
    first_client = Client()
    # The look-up of the label, then the join: two of the four.
    first = join(first_client, small_study, {"participant_label": "first"})
    join(Client(), small_study)
    join(Client(), small_study)

    refused_client = Client()
    url, fields = join_form(refused_client, small_study)
    refused = refused_client.post(url, fields)
    assert refused.status_code == 429
    assertTemplateUsed(refused, "turing/too_many_joins.html")
    assert Participant.objects.count() == 3
    assert views.participant_key(small_study.pk) not in refused_client.session

    # Someone who joined gets back in from their own browser; from another, the label look-up is a join, refused
    # alike whether the label exists or not, so that trying labels tells nothing.
    assert session_participant(resume(first_client, small_study, "first"), small_study) == first
    for label in ("first", "nobody"):
        probe = Client().get(reverse("turing:join", args=["small"]), {"participant_label": label})
        assert probe.status_code == 429
    # Another address, and rehearsal bots, are counted apart.
    assert session_participant(resume(Client(REMOTE_ADDR="192.0.2.8"), small_study, "first"), small_study) == first
    assert join(Client(REMOTE_ADDR="192.0.2.7"), small_study).kind == Participant.Kind.PERSON
    assert join(bot_client(), small_study).kind == Participant.Kind.BOT


def test_a_full_study_shows_a_clear_page_and_bots_do_not_count(build_study):
    study = build_study("capped", scenes=6, trials_per_participant=2, max_participants=2)
    join(bot_client(), study)
    join(Client(), study, {"participant_label": "p1"})
    # Opened before the study filled up, sent after.
    late = Client()
    url, fields = join_form(late, study)
    join(Client(), study)

    for response in (late.post(url, fields), Client().get(url)):
        assertTemplateUsed(response, "turing/closed.html")
        assert "has all the participants it needs" in text(response)
    assert Participant.objects.filter(kind=Participant.Kind.PERSON).count() == 2
    assert views.participant_key(study.pk) not in late.session
    # Those who joined can still come back, and rehearsal bots can still run.
    resume(Client(), study, "p1")
    assert join(bot_client(), study).kind == Participant.Kind.BOT


# Point 7: shared devices.


def test_a_kiosk_forgets_each_participant_at_the_finish(client, small_study):
    join_url = reverse("turing:join", args=["small"])
    assert client.get(reverse("turing:kiosk", args=["small"])).url == join_url
    first = join(client, small_study)
    answer_all(client, small_study)

    finish = client.get(reverse("turing:finish", args=["small"]))
    html = finish.content.decode()
    assert f'class="button primary next-participant" href="{join_url}">Next participant</a>' in html
    assert f'<meta http-equiv="refresh" content="{views.KIOSK_RETURN_SECONDS};url={join_url}">' in html

    fresh = client.get(join_url)
    assertTemplateUsed(fresh, "turing/join.html")
    assert "form" in fresh.context
    assert client.get(reverse("turing:trial", args=["small"])).url == join_url
    second = join(client, small_study)
    assert second != first
    assert second.trials.exclude(answer="").count() == 0
    first.refresh_from_db()
    assert first.finished_at is not None


def test_a_kiosk_never_offers_to_continue_someone_who_walked_away(client, small_study):
    client.get(reverse("turing:kiosk", args=["small"]))
    walked_away = join(client, small_study)
    data, trial = current_trial(client, small_study)
    client.post(data["vote_url"], {"answer": right_answer(trial)})

    page = client.get(reverse("turing:join", args=["small"]))
    assertTemplateUsed(page, "turing/join.html")
    assert "form" in page.context and views.participant_key(small_study.pk) not in client.session
    # The trial page tells participant.js to hand the device over after a while alone.
    next_person = join(client, small_study)
    assert next_person != walked_away
    trial_page = client.get(reverse("turing:trial", args=["small"])).content.decode()
    assert f'data-idle-ms="{views.KIOSK_IDLE_SECONDS * 1000}"' in trial_page
    assert reverse("turing:new_participant", args=["small"]) in trial_page


def test_a_kiosk_ends_on_the_finish_page_even_with_a_completion_url(client, small_study):
    # A crowd study's completion URL would take the device away before the finish page forgets the participant.
    Study.objects.filter(pk=small_study.pk).update(completion_url="https://app.prolific.com/submissions/complete?cc=X")
    small_study.refresh_from_db()
    client.get(reverse("turing:kiosk", args=["small"]))
    join(client, small_study)
    last = answer_all(client, small_study)
    assert last.url == reverse("turing:finish", args=["small"])
    client.get(last.url)
    assertTemplateUsed(client.get(reverse("turing:join", args=["small"])), "turing/join.html")


def test_outside_kiosk_mode_the_finish_page_stays(client, small_study):
    join(client, small_study)
    answer_all(client, small_study)
    finish = client.get(reverse("turing:finish", args=["small"]))
    assert "Next participant" not in finish.content.decode() and 'http-equiv="refresh"' not in finish.content.decode()
    assert client.get(reverse("turing:trial", args=["small"])).url == reverse("turing:finish", args=["small"])


def test_a_new_participant_on_a_browser_that_took_part(client, small_study):
    join_url = reverse("turing:join", args=["small"])
    first = join(client, small_study)
    data, trial = current_trial(client, small_study)
    client.post(data["vote_url"], {"answer": right_answer(trial)})

    offer = client.get(join_url)
    assertTemplateUsed(offer, "turing/resume.html")
    assert "I am a new participant" in offer.content.decode()
    assert client.post(reverse("turing:new_participant", args=["small"])).url == join_url
    assertTemplateUsed(client.get(join_url), "turing/join.html")
    second = join(client, small_study)
    assert second != first
    assert first.trials.exclude(answer="").count() == 1


def test_new_participant_needs_a_post(client, small_study):
    first = join(client, small_study)
    assert client.get(reverse("turing:new_participant", args=["small"])).status_code == 405
    assert session_participant(client, small_study) == first


@pytest.mark.parametrize(
    ("protocol", "one", "two"),
    [
        ("single", "The first image is for practice", "The first 2 images are for practice"),
        ("hype-time", "The first image is for practice", "The first 2 images are for practice"),
        ("2afc", "The first pair is for practice", "The first 2 pairs are for practice"),
    ],
)
def test_the_practice_note_counts_in_words_that_fit_one_or_more(client, build_study, protocol, one, two):
    for practice_trials, expected, plural in ((1, one, "it does not count"), (2, two, "they do not count")):
        slug = f"note{practice_trials}"
        build_study(slug, scenes=8, trials_per_participant=2, practice_trials=practice_trials, protocol=protocol)
        page = text(client.get(reverse("turing:join", args=[slug])))
        assert f"{expected}: you will be told whether you were right, and {plural}." in page
        assert "The first 1 " not in page


# Point 11: the join page tells the truth about the number of images.


@pytest.mark.parametrize(
    ("scenes", "trials_per_participant", "practice_trials", "catch_trials", "total"),
    [(10, 3, 2, 1, 6), (9, 20, 1, 1, 5), (6, 4, 0, 0, 4)],
    ids=["practice-and-catch", "trials-capped-by-scenes", "no-practice"],
)
def test_the_join_page_states_the_true_number_of_images(
    client, build_study, scenes, trials_per_participant, practice_trials, catch_trials, total
):
    study = build_study(
        "count",
        scenes=scenes,
        trials_per_participant=trials_per_participant,
        practice_trials=practice_trials,
        catch_trials=catch_trials,
    )
    page = text(client.get(reverse("turing:join", args=["count"])))
    assert f"You will see {total} images, one at a time." in page
    if practice_trials == 1:
        assert "The first image is for practice: you will be told whether you were right, and it does not" in page
    elif practice_trials:
        assert f"The first {practice_trials} images are for practice" in page
    else:
        assert "for practice" not in page
    participant = join(client, study)
    assert participant.trials.count() == total
    assert participant.trials.filter(kind=Trial.Kind.PRACTICE).count() == practice_trials

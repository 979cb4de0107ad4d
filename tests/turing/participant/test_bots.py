from io import StringIO
from unittest import mock

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.turing.participant_steps import join
from turing.models import REAL, Participant, Study, Trial
from turing.participant import views


def simulate(*args, **options):
    out = StringIO()
    call_command("simulate_participants", *args, stdout=out, **options)
    return out.getvalue()


def test_bots_answer_real_at_the_given_rates_through_the_views(build_study):
    study = build_study("rehearsal", scenes=22, trials_per_participant=20, practice_trials=1, seed=5)
    p_real = {REAL: 0.85, "perceptual": 0.6, "koalarization": 0.2}
    with mock.patch.object(views, "enroll_participant", wraps=views.enroll_participant) as enroll:
        out = simulate("rehearsal", n=40, seed=11, p_real=[f"{source}={p}" for source, p in p_real.items()])
    assert enroll.call_count == 40, "every bot joined through the join view"

    bots = Participant.objects.filter(study=study)
    assert sorted(bots.values_list("label", flat=True)) == [f"bot-{i:04d}" for i in range(1, 41)]
    assert set(bots.values_list("kind", flat=True)) == {Participant.Kind.BOT}
    assert not bots.filter(finished_at=None).exists()
    assert not Trial.objects.filter(answer="").exists()
    assert Trial.objects.filter(kind=Trial.Kind.PRACTICE).count() == 40
    scored = Trial.objects.filter(kind=Trial.Kind.SCORED)
    assert scored.count() == 800
    assert not scored.filter(response_ms=None).exists()
    for source, p in p_real.items():
        votes = scored.filter(stimulus__source=source)
        share = votes.filter(answer=REAL).count() / votes.count()
        assert abs(share - p) < 0.1, (source, share)
    assert "40 bots took study 'rehearsal' as cohort link (bot-0001 to bot-0040)." in out
    assert "perceptual" in out and "koalarization" in out
    assert "purge_bots rehearsal" in out


def test_bots_pay_attention_unless_told_not_to(build_study):
    study = build_study("checked", scenes=8, trials_per_participant=4, catch_trials=1, seed=2)
    simulate("checked", n=3, seed=1)
    simulate("checked", n=2, seed=1, p_real=["catch=1"])

    catch = Trial.objects.filter(participant__study=study, kind=Trial.Kind.CATCH)
    answers = dict(catch.values_list("participant__label", "answer"))
    assert answers == {
        "bot-0001": "generated",
        "bot-0002": "generated",
        "bot-0003": "generated",
        "bot-0004": "real",
        "bot-0005": "real",
    }


def test_later_runs_number_bots_on(small_study):
    simulate("small", n=2, seed=1)
    simulate("small", n=1, seed=2)
    assert sorted(Participant.objects.values_list("label", flat=True)) == ["bot-0001", "bot-0002", "bot-0003"]


def test_bots_pass_production_host_and_https_checks(small_study, settings):
    # Outside pytest ALLOWED_HOSTS has no "testserver", and production redirects plain HTTP to HTTPS.
    settings.ALLOWED_HOSTS = [".poster.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    simulate("small", n=2, seed=1)
    assert Participant.objects.filter(finished_at__isnull=False).count() == 2


@pytest.mark.parametrize(
    "p_real, problem",
    [
        (["gan=0.5"], "unknown source 'gan'"),
        (["real=1.5"], "between 0 and 1"),
        (["real"], "expected SOURCE=P"),
        (["real=often"], "'often' is not a number"),
    ],
)
def test_bad_probabilities_are_named(small_study, p_real, problem):
    with pytest.raises(CommandError, match=problem):
        simulate("small", n=1, p_real=p_real)
    assert not Participant.objects.exists()


def test_closed_or_missing_study_is_refused(small_study):
    Study.objects.filter(pk=small_study.pk).update(status=Study.Status.CLOSED)
    with pytest.raises(CommandError, match="'small' is closed"):
        simulate("small", n=1)
    with pytest.raises(CommandError, match="no study with slug 'absent'"):
        simulate("absent", n=1)


def test_a_person_labelled_like_a_bot_is_left_alone(small_study, client):
    # Labels are free text: a person may join as "bot-0001", and a bot joining with that label would resume them.
    person = join(client, small_study, {"participant_label": "bot-0001"})
    simulate("small", n=1, seed=1)

    bot = Participant.objects.get(kind=Participant.Kind.BOT)
    assert bot.label == "bot-0002"
    assert not person.trials.exclude(answer="").exists()


def shares_by_bot(study):
    """Each bot's share of scored images judged real."""
    shares = []
    for bot in study.participants.all():
        scored = bot.trials.filter(kind=Trial.Kind.SCORED)
        shares.append(scored.filter(answer=REAL).count() / scored.count())
    return shares


def test_bots_and_images_differ_as_much_as_asked(build_study):
    # Rehearsal with alike bots shows intervals far narrower than a real study would have.
    same = build_study("alike", scenes=12, trials_per_participant=12, seed=5)
    spread = build_study("spread", scenes=12, trials_per_participant=12, seed=5)
    simulate("alike", n=30, seed=3)
    simulate("spread", n=30, seed=3, participant_sd=3.0, image_sd=0.0)
    # Binomial spread of a 12-vote share at p = 0.5 is 0.14; a logit sd of 3 spreads bots' own rates to about 0.35.
    assert np.std(shares_by_bot(same)) < 0.2 < np.std(shares_by_bot(spread))

    images = build_study("images", scenes=12, trials_per_participant=12, seed=5)
    simulate("images", n=30, seed=3, image_sd=3.0)
    per_image = [
        stimulus.trials.filter(answer=REAL).count() / stimulus.trials.count()
        for stimulus in images.stimuli.all()
        if stimulus.trials.count() >= 8
    ]
    assert np.std(per_image) > 0.25


def test_negative_spreads_are_refused(small_study):
    with pytest.raises(CommandError, match="must be zero or more"):
        simulate("small", n=1, participant_sd=-1.0)

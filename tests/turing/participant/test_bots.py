from io import StringIO
from unittest import mock

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.turing.participant_steps import join
from turing.analysis.simulation import logit_mean
from turing.models import Participant, Study, Trial
from turing.participant import bots, views
from turing.protocols import Protocol
from turing.protocols.single import Single
from turing.vocabulary import GENERATED, REAL


def simulate(*args, **options):
    out = StringIO()
    call_command("simulate_participants", *args, stdout=out, **options)
    return out.getvalue()


def test_bots_take_the_study_through_the_views_which_record_what_they_answered(build_study):
    # A few bots and a few dozen votes show that the views record what the bots answer. Rates and spreads over
    # hundreds of votes are the model's: the spreads below, and tests/turing/analysis/test_simulation.py on
    # simulated votes, check them without the views' cost per vote.
    study = build_study("rehearsal", scenes=10, trials_per_participant=8, practice_trials=1, seed=5)
    p_real = {REAL: 1.0, "perceptual": 0.0, "koalarization": 0.5}
    pressed = {}

    def press(protocol, trial, judged_real):
        pressed[trial.pk] = Protocol.posted_answer(protocol, trial, judged_real)
        return pressed[trial.pk]

    with (
        mock.patch.object(views, "enroll_participant", wraps=views.enroll_participant) as enroll,
        mock.patch.object(Single, "posted_answer", press),
    ):
        out = simulate("rehearsal", n=4, seed=11, p_real=[f"{source}={p}" for source, p in p_real.items()])
    assert enroll.call_count == 4, "every bot joined through the join view"

    joined = Participant.objects.filter(study=study)
    assert sorted(joined.values_list("label", flat=True)) == [f"bot-{i:04d}" for i in range(1, 5)]
    assert set(joined.values_list("kind", flat=True)) == {Participant.Kind.BOT}
    assert not joined.filter(finished_at=None).exists()
    assert not Trial.objects.filter(answer="").exists()
    assert dict(Trial.objects.values_list("pk", "answer")) == pressed, "each trial holds the button its bot pressed"
    assert Trial.objects.filter(kind=Trial.Kind.PRACTICE).count() == 4
    scored = Trial.objects.filter(kind=Trial.Kind.SCORED)
    assert scored.count() == 32
    assert not scored.filter(response_ms=None).exists()
    answers = {
        source: set(scored.filter(stimulus__source=source).values_list("answer", flat=True)) for source in p_real
    }
    assert answers == {REAL: {REAL}, "perceptual": {GENERATED}, "koalarization": {REAL, GENERATED}}
    assert "4 bots took study 'rehearsal' as cohort link (bot-0001 to bot-0004)." in out
    assert "perceptual" in out and "koalarization" in out
    assert "purge_bots rehearsal" in out


P_REAL = {REAL: 0.7, "perceptual": 0.3, "koalarization": 0.5}


def bots_drawn(study, *, n, **spreads):
    """What rehearse hands each of n bots for the study (logit means, own offset, the images' offsets), without
    taking the study: each bot's answer is expit(logit mean + its offset + the image's offset), drawn in Bot.vote."""
    with mock.patch.object(bots, "Bot") as bot:
        bots.rehearse(study, n, P_REAL, seed=3, **spreads)
    return [call.args[2:6] for call in bot.call_args_list]


def test_bots_and_images_differ_as_much_as_asked(small_study):
    # A logit sd of 3 is what spreads bots' own rates to about 0.35 (test_simulation checks those shares).
    drawn = bots_drawn(small_study, n=400, participant_sd=3.0, image_sd=1.0)
    logit_means, _, _, image_offsets = drawn[0]
    assert logit_means == {source: logit_mean(p, np.hypot(3.0, 1.0)) for source, p in P_REAL.items()}
    assert np.std([offset for _, _, offset, _ in drawn]) == pytest.approx(3.0, rel=0.1)
    assert all(offsets is image_offsets for *_, offsets in drawn), "every bot sees the same images"
    assert set(image_offsets) == set(small_study.stimuli.values_list("pk", flat=True))
    assert np.std(list(image_offsets.values())) == pytest.approx(1.0, rel=0.4)

    alike = bots_drawn(small_study, n=5)
    assert alike[0][0] == {source: logit_mean(p, 0.0) for source, p in P_REAL.items()}
    assert {offset for _, _, offset, _ in alike} == {0.0} and set(alike[0][3].values()) == {0.0}


def test_bots_pay_attention_unless_told_not_to(build_study):
    study = build_study("checked", scenes=9, trials_per_participant=4, catch_trials=1, seed=2)
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


def test_negative_spreads_are_refused(small_study):
    with pytest.raises(CommandError, match="must be zero or more"):
        simulate("small", n=1, participant_sd=-1.0)

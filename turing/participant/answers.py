"""How a vote is stored: a participant's trials in order and which of them are open, the exposure clock (the
exposure recorded when a trial is handed out, the clock started when its image is first served, and whether
its exposure has run out), and an answer recorded exactly once, in
order, with the participant's counts and the study's data_version in the same transaction.

turing.participant.views parses the requests and chooses the responses; the rules are here.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape

from colorization.errors import UserError
from turing.models import Participant, Study, Trial
from turing.protocols import protocol_of

# A timed image is refused once this much more than its exposure has passed since it was first served, so that
# it cannot be fetched again to look at after it was hidden. What it must allow: a reload during the exposure,
# whose page is rendered with what is left of the exposure and asks for the image again a round trip later.
# Measured from the trial page's request to its image's request (tests/turing/test_exposure_on_screen.py,
# headless Chromium on a busy 2-core machine, localhost): 105-155 ms; a phone adds a round trip of 50-300 ms (4G
# to 3G). A reload later than that gets "Time is up" (the image refused, the page reloads once more without it).
EXPOSURE_IMAGE_GRACE = timedelta(milliseconds=500)


# What the browser measured that is stored on the answered trial (record_answer).
TRIAL_MEASURED = ("achieved_exposure_ms", "image_css_width", "image_css_height", "device_pixel_ratio")


class AnswerRefused(UserError):
    """An answer that cannot be stored: to a later trial while an earlier one is open, or changing one given."""


def trials_of(participant):
    """The participant's trials in order, with their stimuli: one query that tells a participant page everything
    it needs (the current trial, the next, the progress, whether this is the last)."""
    return list(participant.trials.select_related("stimulus").order_by("position"))


def open_trials(trials):
    return [trial for trial in trials if not trial.answer]


def upcoming(trials):
    """(the current trial, the one after it), None where there is none."""
    pending = open_trials(trials)
    return (pending[0] if pending else None), (pending[1] if len(pending) > 1 else None)


def trial_data(study, trials, trial, following):
    """What a trial page (and participant.js, as JSON) needs to show trial (handed out: hand_out) and preload
    the next image(s).

    Nothing in it depends on the trial's kind beyond "practice": a catch trial looks like a scored one.
    "expired": the exposure limit ran out since the image was first served, so there is no image to show.
    "image_urls" are all the trial's images in screen order (two for a pair), "image_url" the first.
    "next_image_urls" are empty when the next trial's exposure is limited: its images are named only by the
    reply that stores this trial's answer (or by its own trial page), so that nobody holds one before its trial.
    """
    protocol = protocol_of(study)
    n_practice = sum(t.practice for t in trials)
    if trial.practice:
        progress = f"Practice {trial.position} / {n_practice}"
    else:
        progress = f"{trial.position - n_practice} / {len(trials) - n_practice}"
    expired = exposure_over(trial)
    urls = [reverse("turing:image", args=[token]) for token in protocol.image_tokens(trial)]
    preload = following and not protocol.exposure_ms(study, trials, following)
    next_urls = [reverse("turing:image", args=[token]) for token in protocol.image_tokens(following)] if preload else []
    exposure_ms = trial.exposure_ms or protocol.exposure_ms(study, trials, trial)
    if not expired and trial.shown_at is not None and trial.exposure_ms:
        # Shown before (a reload): only what is left of the exposure, which participant.js times from the new
        # paint. The full exposure again would let a reload just before the limit double it unflagged.
        elapsed_ms = (timezone.now() - trial.shown_at) / timedelta(milliseconds=1)
        exposure_ms = max(1, round(trial.exposure_ms - elapsed_ms))
    return {
        "vote_url": reverse("turing:vote", args=[study.slug, trial.pk]),
        "image_url": None if expired else urls[0],
        "image_urls": [] if expired else urls,
        "practice": trial.practice,
        "progress": progress,
        "next_image_url": next_urls[0] if next_urls else None,
        "next_image_urls": next_urls,
        # What was recorded when the trial was handed out (what is left of it on a reload once its image was
        # served); what the protocol asks for a trial without a limit.
        "exposure_ms": exposure_ms,
        "expired": expired,
        **protocol.trial_data(trial),
    }


def exposure_over(trial, grace=timedelta(0)):
    """Whether trial's exposure limit (plus grace) has run out since its image was first served."""
    if not trial.exposure_ms or trial.shown_at is None:
        return False
    return timezone.now() - trial.shown_at > timedelta(milliseconds=trial.exposure_ms) + grace


def image_servable(trial) -> bool:
    """Whether trial's images may be served now: until it is answered (plus TURING_IMAGE_GRACE_SECONDS for a
    reload), and with an exposure limit until the limit (plus EXPOSURE_IMAGE_GRACE) has run out since they were
    first served. Serving one starts a timed trial's exposure clock (mark_shown)."""
    grace = timedelta(seconds=settings.TURING_IMAGE_GRACE_SECONDS)
    if trial.answered_at is not None and timezone.now() - trial.answered_at > grace:
        return False
    return not exposure_over(trial, EXPOSURE_IMAGE_GRACE)


def mark_shown(trial) -> None:
    """Start a timed trial's exposure clock when its image is first served, once. The clock starts with the bytes,
    not the page: a page that names the image shows nothing until the browser has fetched it, however long that
    takes, and whoever fetches the image, by any means, starts the clock."""
    if trial.exposure_ms and trial.shown_at is None:
        trial.shown_at = timezone.now()
        Trial.objects.filter(pk=trial.pk, shown_at=None).update(shown_at=trial.shown_at)


def hand_out(study, trials, trial) -> None:
    """Record the exposure trial's protocol asks for it when the trial is handed out (its trial page, or the
    reply that stores the answer before it), once: the page is told that exposure, and the report compares it
    with the one achieved. Trials without a limit record nothing."""
    if trial.exposure_ms is None:
        exposure = protocol_of(study).exposure_ms(study, trials, trial)
        if exposure:
            trial.exposure_ms = exposure
            Trial.objects.filter(pk=trial.pk, exposure_ms=None).update(exposure_ms=exposure)


def give_answer(participant, trials, trial, answer, response_ms, measured=None) -> bool:
    """Record one answer to trial (one of trials, the participant's, as trials_of read them), exactly once;
    whether this call stored it.

    The same answer sent again (a double tap, a retried request) is accepted and changes nothing. Raises
    AnswerRefused for an answer to a later trial while an earlier one is open, and for a different answer to an
    answered trial. For measured see record_answer.
    """
    stored = False
    if not trial.answer and open_trials(trials)[0] is trial:
        stored = record_answer(participant, trials, trial, answer, response_ms, measured)
    if not trial.answer and not stored:
        # Either a concurrent request (a double tap) answered this trial since it was read, or this is a
        # later trial while an earlier one is still open.
        trial.refresh_from_db(fields=["answer"])
        if not trial.answer:
            raise AnswerRefused("Please answer the images in order.")
    if trial.answer != answer:
        raise AnswerRefused("This image has already been answered; answers cannot be changed.")
    return stored


def record_answer(participant, trials, trial, answer, response_ms, measured=None):
    """Write the answer to trial, the participant's first open trial when trials were read, count it and bump
    the study's data_version, as one transaction of three statements (four with an exposure limit, which hands
    out the next trial: hand_out); False if another request (a double tap) answered the trial first.
    measured: what the browser measured (achieved_exposure_ms, image_css_width, image_css_height and
    device_pixel_ratio for the trial; viewport_width, viewport_height and device_pixel_ratio, the latest, for the
    participant), entries None when not sent.

    The answer="" condition makes the write atomic: of two requests racing, one updates the row and the other
    stores nothing. No later trial can have been answered since trials were read (answers go in order, and
    this one was open), so whether this answer is the participant's last is known from trials.
    """
    measured = measured or {}
    counted = {"answer_count": F("answer_count") + 1}
    counted |= {
        name: measured[name]
        for name in ("viewport_width", "viewport_height", "device_pixel_ratio")
        if measured.get(name) is not None
    }
    following = open_trials(trials)[1:2]
    if not following:
        counted["finished_at"] = Coalesce(F("finished_at"), timezone.now())
    with transaction.atomic():
        stored = Trial.objects.filter(pk=trial.pk, answer="").update(
            answer=answer,
            response_ms=response_ms,
            answered_at=timezone.now(),
            **{name: measured.get(name) for name in TRIAL_MEASURED},
        )
        if stored:
            trial.answer = answer
            Participant.objects.filter(pk=participant.pk).update(**counted)
            if following:
                # Here, not when its page asks: the next exposure may depend on this answer (a staircase).
                hand_out(participant.study, trials, following[0])
            # Last, so that the study row, which every vote of the study updates, is held for the shortest time.
            Study.objects.filter(pk=participant.study_id).data_changed()
    return bool(stored)


def practice_feedback(study, trials, trial):
    """What a practice trial's feedback says: whether the answer was right, the truth, and whether it was the
    last practice trial."""
    return {
        "correct": trial.correct,
        "verdict": "Correct!" if trial.correct else "Not quite.",
        # HTML (participant.js puts it in the page as such): a pair's sides are named as the page lays them out.
        "truth": conditional_escape(protocol_of(study).truth(trial)),
        "last": not any(t.practice and t.position > trial.position for t in trials),
    }


def score(trials):
    """(correct, total) of the trials shown after the practice, attention checks included: the count the
    participant saw."""
    shown = [trial for trial in trials if not trial.practice]
    return sum(trial.correct for trial in shown), len(shown)

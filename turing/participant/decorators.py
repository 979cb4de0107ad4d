"""Access to the participant pages (``participant_view``): the session lookup and the closed-study page."""

import functools

from django.shortcuts import get_object_or_404, redirect, render

from turing.models import Participant, Study

PARTICIPANT_KEY_PREFIX = "turing.participant."


def participant_key(study_id):
    # One entry per study, so one browser can take part in several studies.
    return f"{PARTICIPANT_KEY_PREFIX}{study_id}"


def held_participant(request, slug):
    """The participant (its study with it) this browser holds in study <slug>, in one query; None if none.

    The session names participants by study id and the URL names the study by slug, so the participants
    the browser holds in any study are looked up together with the slug.
    """
    held = [value for key, value in request.session.items() if key.startswith(PARTICIPANT_KEY_PREFIX)]
    if not held:
        return None
    participant = Participant.objects.select_related("study").filter(pk__in=held, study__slug=slug).first()
    if participant is None or request.session.get(participant_key(participant.study_id)) != participant.pk:
        return None
    return participant


def closed(request, study, reason=None):
    """The page for a study nobody can join or vote in now: closed, not started, or full.

    A vote in such a study is refused (403); visiting its pages is not an error.
    """
    status = 403 if request.method == "POST" else 200
    return render(request, "turing/closed.html", {"study": study, "reason": reason}, status=status)


def participant_view(view=None, *, require_open=True):
    """Call view(request, participant, ...) for the participant this browser enrolled in study <slug>.

    A browser that has not joined is sent to the join page.
    """
    if view is None:
        return functools.partial(participant_view, require_open=require_open)

    @functools.wraps(view)
    def wrapper(request, slug, *args, **kwargs):
        participant = held_participant(request, slug)
        study = participant.study if participant else get_object_or_404(Study, slug=slug)
        if require_open and study.status != Study.Status.OPEN:
            return closed(request, study)
        if participant is None:
            return redirect("turing:join", slug)
        return view(request, participant, *args, **kwargs)

    return wrapper

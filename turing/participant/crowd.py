"""Crowd platforms and cohorts: what a join URL says about how a participant came, MTurk's preview and
submission, series exclusion, and the time limit past which a participant counts as returned or timed out.

Prolific sends ``?PROLIFIC_PID=...&STUDY_ID=...&SESSION_ID=...``; MTurk's ExternalQuestion sends
``?assignmentId=...&hitId=...&workerId=...&turkSubmitTo=...`` (``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`` and
no worker while a worker only previews the HIT). The poster's QR code carries ``?via=poster``, a kiosk is a
browser that opened the kiosk link, and anything else is a plain link.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from colorization.errors import UserError
from turing.models import Participant, Study
from turing.vocabulary import KIOSK, LINK, MTURK, POSTER, PROLIFIC

PROLIFIC_PARAMETERS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
MTURK_PARAMETERS = ("workerId", "assignmentId", "hitId", "turkSubmitTo")
# ?via=poster: the poster's QR code (turing.staff.views.poster), so that its joins form their own cohort.
VIA_PARAMETER, VIA_POSTER = "via", "poster"
# MTurk shows the HIT in a frame on its own site, where browsers withhold this site's SameSite=Lax session and
# CSRF cookies (and, more and more, every third-party cookie): no form could be posted there. The framed join
# page therefore links to itself with ?tab=1 in a new tab, where the study runs first-party.
TAB_PARAMETER = "tab"
# Carried through the consent form as hidden fields (turing.participant.forms.JoinForm), so the POST knows them too.
CROWD_PARAMETERS = (*PROLIFIC_PARAMETERS, *MTURK_PARAMETERS, VIA_PARAMETER, TAB_PARAMETER)
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
# Where MTurk frames HITs from and takes their answers: the only turkSubmitTo values accepted, so that a crafted
# link cannot make the finish page post anywhere else.
MTURK_ORIGINS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
MTURK_SUBMIT_PATH = "/mturk/externalSubmit"


class CrowdError(ValueError):
    """A join URL's crowd parameters cannot be used; the message names the parameter and what is wrong."""


class SeriesConflict(UserError):
    """A participant label that took part in another study of the series (series_conflict); the message asks
    the participant to return the task."""

    def __init__(self, other: Study):
        super().__init__(
            f"You have already taken part in “{other.title}”, a study of the same series, and each person may "
            "take part in only one of them. Thank you for your interest! Please return this task."
        )


@dataclass(frozen=True)
class CrowdJoin:
    """How a participant came, from the join URL (or the consent form's hidden copy of it).

    preview: an MTurk worker previewing the HIT, who sees the instructions only. framed: an MTurk worker who
    accepted the HIT, on the join page inside MTurk's frame, who is sent to a tab of its own (TAB_PARAMETER)."""

    cohort: str
    platform_study: str = ""
    platform_session: str = ""
    submit_to: str = ""
    preview: bool = False
    framed: bool = False

    @property
    def in_mturk_frame(self) -> bool:
        """Whether the join page is shown inside MTurk's frame, where nobody joins (a preview, or an accepted HIT
        that is sent to a tab of its own)."""
        return self.preview or self.framed

    def participant_fields(self) -> dict[str, str]:
        """The Participant fields this join sets."""
        fields = asdict(self)
        del fields["preview"], fields["framed"]
        return fields


def crowd_join(params, *, kiosk: bool) -> CrowdJoin:
    """The CrowdJoin of a join request's parameters (a QueryDict or dict); kiosk: whether the browser is a
    kiosk. Raises CrowdError for an MTurk link missing a parameter or naming a turkSubmitTo outside MTurk."""
    value = {name: str(params.get(name, "")).strip() for name in CROWD_PARAMETERS}
    if value["PROLIFIC_PID"]:
        return CrowdJoin(PROLIFIC, platform_study=value["STUDY_ID"], platform_session=value["SESSION_ID"])
    if mturk_link(value):
        return _mturk_join(value)
    if kiosk:
        return CrowdJoin(KIOSK)
    return CrowdJoin(POSTER if value[VIA_PARAMETER] == VIA_POSTER else LINK)


def prolific_id(pid: str) -> str:
    """A PROLIFIC_PID as stored and compared: lower-cased. Prolific's IDs are 24 lower-case hex digits, so the
    same ID in capitals (a link typed or edited by hand) is the same person, and must resume their participation
    and meet the series exclusion rather than take part again (migration 0004 lower-cased those stored before)."""
    return pid.lower()


def mturk_link(params) -> bool:
    """Whether a join request's parameters come from an MTurk ExternalQuestion (a preview included)."""
    return bool(params.get("assignmentId") or params.get("workerId"))


def _mturk_join(value: dict[str, str]) -> CrowdJoin:
    if value["assignmentId"] == MTURK_PREVIEW:
        return CrowdJoin(MTURK, platform_study=value["hitId"], preview=True)
    missing = [name for name in MTURK_PARAMETERS if not value[name]]
    if missing:
        raise CrowdError(
            f"This MTurk link lacks {', '.join(missing)}: MTurk adds assignmentId, hitId, workerId and turkSubmitTo "
            "to an ExternalQuestion's URL. Please return the HIT and tell the requester."
        )
    submit_to = value["turkSubmitTo"].rstrip("/")
    if submit_to not in MTURK_ORIGINS:
        raise CrowdError(
            f"This MTurk link's turkSubmitTo ({submit_to[:100]!r}) is not MTurk's ({' or '.join(MTURK_ORIGINS)}). "
            "Please return the HIT and tell the requester."
        )
    return CrowdJoin(
        MTURK,
        platform_study=value["hitId"],
        platform_session=value["assignmentId"],
        submit_to=submit_to,
        framed=value[TAB_PARAMETER] != "1",
    )


def mturk_submit_url(participant: Participant) -> str | None:
    """Where the finish page posts an MTurk participant's assignment; None for anyone else."""
    if participant.cohort != MTURK or not participant.submit_to:
        return None
    return participant.submit_to + MTURK_SUBMIT_PATH


def series_conflict(study: Study, label: str, kind: str) -> Study | None:
    """Another study of ``study``'s series in which a participant of this kind (persons against persons, bots
    against bots) took part with this label (a Prolific PID, an MTurk workerId, a participant_label); None
    when there is none, or the study has no series or the participant no label."""
    if not study.series or not label:
        return None
    other = (
        Participant.objects.filter(study__series=study.series, label=label, kind=kind)
        .exclude(study=study)
        .select_related("study")
        .order_by("pk")
        .first()
    )
    return other.study if other else None


def timed_out(study: Study, now: datetime | None = None) -> Q:
    """Participants (a Q on Participant) who did not finish within the study's time limit: returned, timed out
    or still going past it, as Prolific counts them; a finish after the limit counts as timed out too. Matches
    nobody when the study has no limit."""
    if not study.time_limit_minutes:
        return Q(pk__in=[])
    limit = timedelta(minutes=study.time_limit_minutes)
    now = now or timezone.now()
    return Q(finished_at__isnull=True, started_at__lt=now - limit) | Q(finished_at__gt=F("started_at") + limit)

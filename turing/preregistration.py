"""Preregistration: a study's plan frozen before its data, and what an analysis does differently from it.

The plan holds the design (Study.DESIGN_FIELDS and every stimulus with the SHA-256 of its image file), the
target number of participants (from the power planner, whose output can be recorded with it), the exclusion
rules the report supports (rehearsal bots, failed attention checks, which trials count) and the primary
analysis. It is stored once as canonical JSON with that text's SHA-256 (models.Preregistration), which the
report and the poster show.

Canonical JSON: json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False), encoded as
UTF-8, no trailing newline. The download is that text byte for byte, so `sha256sum plan.json` gives the hash,
and so does canonical_json(json.load(file)) after any reformatting that keeps the values.
"""

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction

from colorization.errors import UserError
from turing.models import Preregistration, Study
from turing.protocols import protocol_of
from turing.report.data import PER_PERSON, PER_VOTE, PRIMARY_RATE, Selection
from turing.vocabulary import SCORED

FORMAT = "turing-preregistration/1"
# The report's statistics a plan can name as its primary analysis, with what the report shows for each.
PRIMARY_ANALYSES = {
    "fooling_rate": "each model's fooling rate (share of its images judged real) with its 95% interval over "
    "participants and images",
    "model_comparison": "the difference in fooling rate between models, two-sided t-test Holm-corrected over the pairs",
    "hype_infinity": "HYPE-infinity per model with its 95% interval",
    "treatment_vs_control": "real photos judged real, treatment group against control group",
}
# The summary's two rates (turing.report.data.summary_frame) a plan can name as its primary one.
PRIMARY_RATES = {
    PER_PERSON: "per person: each participant's own share judged real, averaged (everyone counts once)",
    PER_VOTE: "per vote: the share of all votes judged real (people weigh as many images as they judged)",
}
# Keys a plan file may hold; the design, format and study are read off the study itself.
PLAN_FILE_KEYS = (
    "target_participants",
    "exclude_failed_checks",
    "primary_analysis",
    "primary_models",
    "primary_rate",
    "power_analysis",
)
# A departure from the frozen plan shows at most this many names (of scenes, say), then a count.
LISTED = 5


class PlanError(UserError):
    """A plan that cannot be frozen, or a second freeze; the message names the setting and the problem."""


def canonical_json(plan: Any) -> bytes:
    """The bytes a plan's hash is taken of (see the module docstring)."""
    return json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def plan_sha256(plan: Any) -> str:
    return hashlib.sha256(canonical_json(plan)).hexdigest()


def _stimuli(study: Study, *, hashes: bool) -> list[dict]:
    rows = []
    for stimulus in study.stimuli.order_by("pool", "scene", "source"):
        row = {"scene": stimulus.scene, "source": stimulus.source, "pool": stimulus.pool}
        if hashes:
            with stimulus.image.open("rb") as image:
                row["sha256"] = hashlib.sha256(image.read()).hexdigest()
        rows.append(row)
    return rows


def study_design(study: Study, *, hashes: bool = True) -> dict:
    """The design part of a plan: the design settings and the stimuli (scene, source, pool and, with
    ``hashes``, the SHA-256 of the image file), in a fixed order."""
    return {
        **{name: getattr(study, name) for name in Study.DESIGN_FIELDS},
        "stimuli": _stimuli(study, hashes=hashes),
    }


def unavailable_analyses(study: Study) -> dict[str, str]:
    """The PRIMARY_ANALYSES that the report of ``study`` does not give, each with why."""
    unavailable = {}
    if not protocol_of(study).reports_hype_infinity(study):
        unavailable["hype_infinity"] = f"the report of study {study.slug!r} ({study.protocol}) gives no HYPE-infinity"
    if not study.control_fraction:
        unavailable["treatment_vs_control"] = f"study {study.slug!r} has no control group (its control fraction is 0)"
    return unavailable


def build_plan(
    study: Study,
    *,
    target_participants: int | None,
    primary_analysis: str,
    exclude_failed_checks: bool = False,
    primary_models: list[str] | tuple[str, ...] = (),
    primary_rate: str = PER_PERSON,
    power_analysis: dict | None = None,
) -> dict:
    """The plan to freeze for ``study``; PlanError naming the setting for one the study cannot have.
    ``power_analysis`` is plan_study --json's output: its participants_needed is the target when none is given."""
    if power_analysis is not None and not isinstance(power_analysis, dict):
        raise PlanError("power_analysis: expected the JSON object plan_study --json prints")
    if target_participants is None and power_analysis is not None:
        target_participants = power_analysis.get("participants_needed")
        if target_participants is None:
            raise PlanError(
                "power_analysis: its participants_needed is empty (the planner did not reach the target power): "
                "give target_participants yourself or plan again"
            )
    if target_participants is None:
        raise PlanError(
            "target_participants: give the planned number of participants (e.g. plan_study's answer), "
            "or power_analysis with its participants_needed"
        )
    if isinstance(target_participants, bool) or not isinstance(target_participants, int) or target_participants < 1:
        raise PlanError(f"target_participants: expected a whole number of at least 1, got {target_participants!r}")
    if primary_analysis not in PRIMARY_ANALYSES:
        raise PlanError(
            f"primary_analysis: {primary_analysis!r} is not one of the report's statistics "
            f"({', '.join(PRIMARY_ANALYSES)})"
        )
    if primary_rate not in PRIMARY_RATES:
        raise PlanError(f"primary_rate: {primary_rate!r} is not one of the report's rates ({', '.join(PRIMARY_RATES)})")
    if not isinstance(exclude_failed_checks, bool):
        raise PlanError(f"exclude_failed_checks: expected true or false, got {exclude_failed_checks!r}")
    if exclude_failed_checks and not study.catch_trials:
        raise PlanError(f"exclude_failed_checks: study {study.slug!r} has no attention checks to fail")
    if isinstance(primary_models, str) or not all(isinstance(name, str) for name in primary_models):
        raise PlanError(f"primary_models: expected a list of model names, got {primary_models!r}")
    models = study.model_names
    unknown = sorted(set(primary_models) - set(models))
    if unknown:
        raise PlanError(
            f"primary_models: {', '.join(unknown)} not in study {study.slug!r} (its models: {', '.join(models)})"
        )
    if primary_analysis == "model_comparison" and len(primary_models or models) < 2:
        raise PlanError("primary_analysis: a model comparison needs at least two models")
    unavailable = unavailable_analyses(study)
    if primary_analysis in unavailable:
        raise PlanError(f"primary_analysis: {unavailable[primary_analysis]}")
    return {
        "format": FORMAT,
        "study": {"slug": study.slug, "title": study.title},
        "design": study_design(study),
        "target_participants": target_participants,
        # The time limit decides who is left out as returned or timed out (turing.participant.crowd.timed_out) and stays
        # editable once people joined, so it is frozen with the other exclusions (departures compares it).
        "exclusions": {
            "rehearsal_bots": True,
            "failed_attention_checks": exclude_failed_checks,
            "time_limit_minutes": study.time_limit_minutes,
        },
        "analysed_trials": [SCORED],
        "primary_analysis": {
            "statistic": primary_analysis,
            "description": PRIMARY_ANALYSES[primary_analysis],
            "models": sorted(primary_models),
        },
        "primary_rate": primary_rate,
        "power_analysis": power_analysis,
    }


def plan_from_file(study: Study, data: Any, source: str = "plan") -> dict:
    """build_plan from a plan file's object (keys PLAN_FILE_KEYS); PlanError naming ``source`` and the key."""
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a JSON object with keys {', '.join(PLAN_FILE_KEYS)}")
    unknown = sorted(set(data) - set(PLAN_FILE_KEYS))
    if unknown:
        raise PlanError(f"{source}: unknown key {', '.join(unknown)} (known: {', '.join(PLAN_FILE_KEYS)})")
    if "primary_analysis" not in data:
        raise PlanError(f"{source}: primary_analysis is missing (one of {', '.join(PRIMARY_ANALYSES)})")
    try:
        return build_plan(
            study,
            target_participants=data.get("target_participants"),
            primary_analysis=data["primary_analysis"],
            exclude_failed_checks=data.get("exclude_failed_checks", False),
            primary_models=data.get("primary_models", ()),
            primary_rate=data.get("primary_rate", PER_PERSON),
            power_analysis=data.get("power_analysis"),
        )
    except PlanError as error:
        raise PlanError(f"{source}: {error}") from None


def already_frozen(registration: Preregistration) -> PlanError:
    return PlanError(
        f"study {registration.study.slug!r} was already frozen on {registration.frozen_at:%Y-%m-%d %H:%M} UTC "
        f"(sha256 {registration.sha256}); a frozen plan cannot be changed or replaced: create a new study"
    )


def freeze(study: Study, plan: dict, frozen_by: str = "") -> Preregistration:
    """Store ``plan`` as the study's preregistration and make its target the study's; PlanError if it has one."""
    text = canonical_json(plan)
    try:
        with transaction.atomic():
            registration = Preregistration.objects.create(
                study=study,
                canonical=text.decode("utf-8"),
                sha256=hashlib.sha256(text).hexdigest(),
                frozen_by=frozen_by,
            )
    except IntegrityError:
        raise already_frozen(Preregistration.objects.get(study=study)) from None
    study.target_participants = plan["target_participants"]
    study.save(update_fields=["target_participants"])
    return registration


def registration_of(study: Study) -> Preregistration | None:
    return Preregistration.objects.filter(study=study).first()


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown if len(names) <= LISTED else f"{shown} and {len(names) - LISTED} more"


def design_departures(study: Study, plan: dict, *, hashes: bool = False) -> list[str]:
    """How the study's design differs from the frozen one; image contents are compared only with ``hashes``
    (reading every image file: freeze_study --verify, not every report)."""
    frozen, now = plan["design"], study_design(study, hashes=hashes)
    found = [
        f"{name.replace('_', ' ')} is {now[name]!r}, the plan froze {frozen[name]!r}"
        for name in Study.DESIGN_FIELDS
        if frozen.get(name) != now[name]
    ]

    def key(row):
        return f"{row['scene']} [{row['source']}, {row['pool']}]"

    if hashes:
        frozen_hash = {key(row): row.get("sha256") for row in frozen["stimuli"]}
        changed = sorted(
            key(row) for row in now["stimuli"] if frozen_hash.get(key(row), row["sha256"]) != row["sha256"]
        )
        if changed:
            found.append(f"{len(changed)} image file(s) changed since freezing: {_listed(changed)}")
    frozen_keys, now_keys = {key(row) for row in frozen["stimuli"]}, {key(row) for row in now["stimuli"]}
    if now_keys - frozen_keys:
        added = sorted(now_keys - frozen_keys)
        found.append(f"{len(added)} stimulus/stimuli not in the plan: {_listed(added)}")
    if frozen_keys - now_keys:
        removed = sorted(frozen_keys - now_keys)
        found.append(f"{len(removed)} planned stimulus/stimuli gone: {_listed(removed)}")
    return found


def _minutes(limit: int | None) -> str:
    return "none" if limit is None else f"{limit} minutes"


def planned_selection(plan: dict) -> Selection:
    """The report's switches as the plan set them."""
    return Selection(
        include_bots=not plan["exclusions"]["rehearsal_bots"],
        exclude_failed_checks=plan["exclusions"]["failed_attention_checks"],
        kinds=tuple(plan["analysed_trials"]),
    )


def departures(study: Study, plan: dict, selection: Selection) -> list[str]:
    """Every way an analysis with ``selection`` of the study as it is now departs from the frozen ``plan``."""
    planned = planned_selection(plan)
    found = []
    if selection.include_bots != planned.include_bots:
        found.append(
            "rehearsal bots are counted; the plan leaves them out"
            if selection.include_bots
            else "rehearsal bots are left out; the plan counts them"
        )
    if selection.exclude_failed_checks != planned.exclude_failed_checks:
        found.append(
            "participants who failed an attention check are left out; the plan keeps them"
            if selection.exclude_failed_checks
            else "participants who failed an attention check are kept; the plan leaves them out"
        )
    if tuple(selection.kinds) != planned.kinds:
        found.append(f"trials analysed: {', '.join(selection.kinds)}; the plan analyses {', '.join(planned.kinds)}")
    if selection.cohort is not None:
        found.append(f"only the {selection.cohort} cohort is analysed; the plan analyses every participant")
    planned_limit = plan["exclusions"]["time_limit_minutes"]
    if study.time_limit_minutes != planned_limit:
        found.append(
            f"the time limit is {_minutes(study.time_limit_minutes)}, the plan froze {_minutes(planned_limit)}: "
            "it decides who is left out as returned or timed out"
        )
    if plan["primary_rate"] != PRIMARY_RATE:
        found.append(
            f"the report's primary rate (shown first) is {PRIMARY_RATE}; the plan's is {plan['primary_rate']} "
            "(shown second in the summary)"
        )
    found += design_departures(study, plan)
    # The people who finished and whom the plan's exclusions keep: the sample its target counts.
    finished = planned.participants(study).filter(finished_at__isnull=False).count()
    target = plan["target_participants"]
    if finished != target:
        found.append(
            f"{finished} participant(s) finished and kept by the plan's exclusions; the plan's target is {target} "
            + ("(not reached)" if finished < target else "(exceeded: more data than planned)")
        )
    if study.target_participants != target:
        found.append(f"the study's target is now {study.target_participants}; the plan froze {target}")
    return found


def status(study: Study, selection: Selection, registration: Preregistration | None = None) -> dict | None:
    """What the report shows of a frozen plan (``registration``, read when not given): hash, date, target,
    primary analysis and the departures of ``selection``; None for a study that was not preregistered."""
    registration = registration or registration_of(study)
    if registration is None:
        return None
    plan = registration.plan
    return {
        "sha256": registration.sha256,
        "frozen_at": registration.frozen_at,
        "target": plan["target_participants"],
        "primary_analysis": plan["primary_analysis"],
        "primary_rate": plan["primary_rate"],
        "exclude_failed_checks": plan["exclusions"]["failed_attention_checks"],
        "departures": departures(study, plan, selection),
    }

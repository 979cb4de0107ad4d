import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from turing import preregistration
from turing.management.study_options import study_or_error


def _json_file(path: str, option: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(f"{option} {path}: cannot read ({error.strerror or error}).") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CommandError(f"{option} {path}: not valid UTF-8 JSON ({error}).") from error


class Command(BaseCommand):
    help = (
        "Freeze a study's preregistered plan once: its design (settings and every stimulus with the SHA-256 of "
        "its image), the target number of participants, the exclusion rules and the primary analysis. Prints "
        "the SHA-256 of the plan's canonical JSON, which the report and poster show. A second freeze is refused. "
        "With --verify (or --out) on a frozen study, checks (or writes) the frozen plan instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--plan",
            metavar="PLAN.json",
            help="A JSON object with keys "
            + ", ".join(preregistration.PLAN_FILE_KEYS)
            + "; options below override it.",
        )
        parser.add_argument("--target", type=int, metavar="N", help="Planned number of participants.")
        parser.add_argument(
            "--primary-analysis", choices=list(preregistration.PRIMARY_ANALYSES), help="The primary statistic."
        )
        parser.add_argument(
            "--primary-rate",
            choices=list(preregistration.PRIMARY_RATES),
            help="The primary rate of the summary (default: per person).",
        )
        parser.add_argument(
            "--primary-models", metavar="A,B", help="The models the primary analysis is about (default: all)."
        )
        parser.add_argument(
            "--exclude-failed-checks",
            action="store_true",
            default=None,
            help="Plan to leave out participants who call an attention check real.",
        )
        parser.add_argument(
            "--power-json",
            metavar="FILE",
            help="plan_study --json's output, recorded with the plan (its answer is the target unless --target).",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Recompute the frozen plan's hash and compare the study (and each image's SHA-256) with it.",
        )
        parser.add_argument("--out", metavar="FILE", help="Write the frozen plan's canonical JSON to FILE.")

    def handle(self, *args, slug, **options):
        study = study_or_error(slug)
        registration = preregistration.registration_of(study)
        if options["verify"] or options["out"]:
            if registration is None:
                raise CommandError(f"study {slug!r} has no frozen plan (freeze_study {slug} --plan PLAN.json)")
            self._check(study, registration, options["verify"], options["out"])
            return
        if registration is not None:
            raise CommandError(str(preregistration.already_frozen(registration)))
        data = _json_file(options["plan"], "--plan") if options["plan"] else {}
        if not isinstance(data, dict):
            raise CommandError(f"--plan {options['plan']}: expected a JSON object")
        overrides = {
            "target_participants": options["target"],
            "primary_analysis": options["primary_analysis"],
            "exclude_failed_checks": options["exclude_failed_checks"],
            "primary_models": options["primary_models"] and options["primary_models"].split(","),
            "primary_rate": options["primary_rate"],
            "power_analysis": options["power_json"] and _json_file(options["power_json"], "--power-json"),
        }
        data = {**data, **{key: value for key, value in overrides.items() if value is not None}}
        try:
            plan = preregistration.plan_from_file(study, data, options["plan"] or "options")
            registration = preregistration.freeze(study, plan, frozen_by="freeze_study")
        except preregistration.PlanError as error:
            raise CommandError(f"{error}.") from error
        self.stdout.write(f"Froze the plan of {study.title} ({slug}): {len(plan['design']['stimuli'])} stimuli")
        self.stdout.write(f"  target: {plan['target_participants']} participants")
        self.stdout.write(f"  primary analysis: {plan['primary_analysis']['description']}")
        self.stdout.write(f"  primary rate: {plan['primary_rate']}")
        self.stdout.write(f"sha256 {registration.sha256}")

    def _check(self, study, registration, verify, out):
        if out:
            try:
                Path(out).write_bytes(registration.canonical.encode("utf-8"))
            except OSError as error:
                raise CommandError(f"{out}: cannot write ({error.strerror or error}).") from error
            self.stdout.write(f"Wrote {out} (sha256 {registration.sha256})")
        if not verify:
            return
        plan = registration.plan
        if preregistration.plan_sha256(plan) != registration.sha256:
            raise CommandError(f"the stored plan of {study.slug!r} no longer hashes to {registration.sha256}")
        changes = preregistration.design_departures(study, plan, hashes=True)
        if changes:
            listed = "\n".join(f"- {change}" for change in changes)
            raise CommandError(f"study {study.slug!r} departs from its frozen design:\n{listed}")
        self.stdout.write(f"plan verified: sha256 {registration.sha256}, design and every image as frozen")

"""Command-line options shared by create_study and build_study: the study's settings and NAME=PATH lists."""

import secrets
from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from colorization.cli import parse_named
from turing.models import CATCH_POOL_FACTOR, Pool, Study
from turing.network import DEFAULT_PORT
from turing.participant.enrollment import pool_scenes, trial_counts
from turing.protocols import get_protocol, protocol_names
from turing.stimuli.normalize import DEFAULT_STIMULUS_SIZE


def study_or_error(slug):
    """The study with this slug; CommandError in the one wording every command uses when there is none."""
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        raise CommandError(f"no study with slug {slug!r}")
    return study


def add_study_arguments(parser):
    parser.add_argument("slug", help="Short name used in the join URL /s/SLUG/.")
    parser.add_argument("--title", required=True)
    parser.add_argument(
        "--protocol",
        default="single",
        choices=protocol_names(),
        help="What a trial asks (default single): "
        + "; ".join(f"{name}, {get_protocol(name).label}" for name in protocol_names()),
    )
    parser.add_argument("--trials", type=int, default=20, help="Scored trials per participant (default 20).")
    parser.add_argument("--real-fraction", type=float, default=0.5, help="Share of real images (default 0.5).")
    parser.add_argument(
        "--control-fraction",
        type=float,
        default=0.0,
        help="Share of participants who see only real images (default 0).",
    )
    parser.add_argument("--exposure-ms", type=int, default=None, help="Hide each image after N ms.")
    parser.add_argument(
        "--practice",
        type=int,
        default=3,
        help="Scenes reserved for practice: every participant sees each once, with feedback; "
        "they are never scored (default 3).",
    )
    parser.add_argument(
        "--catch-trials",
        type=int,
        default=0,
        help="Attention checks per participant: obviously wrong colorizations mixed into the scored trials, "
        f"drawn from {CATCH_POOL_FACTOR} x N reserved scenes so that no check image reaches more than "
        f"1/{CATCH_POOL_FACTOR} of the participants (default 0).",
    )
    parser.add_argument(
        "--show-score",
        action="store_true",
        help="Tell each participant their score at the end (a poster session). Off by default: "
        "the score lets throwaway joins learn the answers.",
    )
    parser.add_argument(
        "--max-participants",
        type=int,
        default=None,
        help="Close joining once N people have joined (default: no limit).",
    )
    parser.add_argument(
        "--allow-luminance-mismatch",
        action="store_true",
        help="Import even if generated images differ from the real photos in lightness (the report then says so).",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_STIMULUS_SIZE, help="Stimulus side in pixels.")
    parser.add_argument(
        "--seed", type=int, default=None, help="Seed for trial assignment (default: random, stored with the study)."
    )
    parser.add_argument(
        "--completion-url", default="", help="Redirect here after the last vote (e.g. Prolific's completion link)."
    )
    parser.add_argument(
        "--completion-code", default="", help="Shown on the finish page (e.g. the Prolific study's completion code)."
    )
    parser.add_argument(
        "--time-limit",
        type=int,
        default=None,
        metavar="MINUTES",
        help="Participants who have not finished this many minutes after joining (returned or timed out) are "
        "left out of the statistics and listed in the report (default: no limit).",
    )
    parser.add_argument(
        "--series",
        default="",
        metavar="NAME",
        help="Studies of one series refuse a crowd ID (Prolific PID, MTurk workerId, participant_label) that took "
        "part in another of them.",
    )
    parser.add_argument("--no-expertise", action="store_true", help="Do not ask the expertise question.")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"The port `serve` will use, for the join URL printed at the end (default {DEFAULT_PORT}).",
    )


def study_fields(options) -> dict:
    """import_study's keyword arguments from the options of add_study_arguments (a missing seed drawn at random);
    CommandError for a time limit or series name that cannot be stored."""
    if options["time_limit"] is not None and options["time_limit"] < 1:
        raise CommandError(f"--time-limit must be at least 1 minute, got {options['time_limit']}")
    if options["series"]:
        try:
            Study._meta.get_field("series").run_validators(options["series"])
        except ValidationError:
            raise CommandError(
                f"--series {options['series']!r}: a series name is a slug of at most 50 letters, digits, - and _, "
                "e.g. colour-2026"
            ) from None
    return {
        "protocol": options["protocol"],
        "trials_per_participant": options["trials"],
        "real_fraction": options["real_fraction"],
        "control_fraction": options["control_fraction"],
        "exposure_ms": options["exposure_ms"],
        "practice_trials": options["practice"],
        "catch_trials": options["catch_trials"],
        "max_participants": options["max_participants"],
        "show_score": options["show_score"],
        "allow_luminance_mismatch": options["allow_luminance_mismatch"],
        "seed": options["seed"] if options["seed"] is not None else secrets.randbelow(2**31),
        "completion_url": options["completion_url"],
        "completion_code": options["completion_code"],
        "time_limit_minutes": options["time_limit"],
        "series": options["series"],
        "ask_expertise": not options["no_expertise"],
    }


def write_design(command, study):
    """The scenes of each pool and what each participant will see, as create_study and build_study print them
    after an import, with a warning when there are fewer scored scenes than the trials asked for."""
    scenes = pool_scenes(study)
    n_practice, n_scored, n_catch = trial_counts(study, scenes)
    scored_scenes = scenes[Pool.SCORED]
    command.stdout.write(
        f"  scenes: {scored_scenes} scored, {scenes[Pool.PRACTICE]} practice, {scenes[Pool.CATCH]} attention checks"
    )
    command.stdout.write(f"  each participant: {n_practice} practice, {n_scored} scored and {n_catch} catch trials")
    if n_catch:
        command.stdout.write(
            f"  attention checks: each participant gets the {n_catch} least shown of the {scenes[Pool.CATCH]}, so "
            f"none reaches more than 1/{CATCH_POOL_FACTOR} of the participants"
        )
    if n_scored < study.trials_per_participant:
        command.stdout.write(
            command.style.WARNING(
                f"  --trials {study.trials_per_participant} asks for more scored trials than there are scored scenes "
                f"({scored_scenes}): each participant gets {n_scored}, one per scene"
            )
        )


def named_paths(values, *, option, metavar, example, convert=Path, required=True) -> dict:
    """{name: convert(value)} from repeated `option NAME=VALUE` values (paths by default), at least one when
    required and no name twice. convert raises ValueError for a value it does not take.

    Parsed here rather than by argparse so that call_command(option=[...]) strings get the same checks.
    """
    pairs = []
    for value in values:
        try:
            name, text = parse_named(value)
        except ValueError:
            raise CommandError(f"{option}: expected {metavar} (e.g. {example}), got {value!r}") from None
        try:
            pairs.append((name, convert(text)))
        except ValueError as error:
            raise CommandError(f"{option} {value}: {error}") from None
    if not pairs and required:
        raise CommandError(f"give at least one {option} {metavar}")
    repeated = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
    if repeated:
        raise CommandError(f"{option} names a model more than once: {', '.join(repeated)}")
    return dict(pairs)

import argparse
import secrets
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from turing.importing import StudyImportError, import_study
from turing.stimuli import DEFAULT_STIMULUS_SIZE


def model_folder(value):
    """argparse type for --generated NAME=DIR."""
    name, sep, folder = value.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=DIR (e.g. perceptual=outputs/perceptual), got {value!r}")
    return name.strip(), Path(folder.strip())


def add_study_arguments(parser):
    """The study options shared by create_study and build_study."""
    parser.add_argument("--trials", type=int, default=20, help="Scored trials per participant (default 20).")
    parser.add_argument("--real-fraction", type=float, default=0.5, help="Share of real images (default 0.5).")
    parser.add_argument("--control-fraction", type=float, default=0.0,
                        help="Share of participants who see only real images (default 0).")
    parser.add_argument("--exposure-ms", type=int, default=None, help="Hide each image after N ms.")
    parser.add_argument("--practice", type=int, default=3, help="Practice trials with feedback (default 3).")
    parser.add_argument("--size", type=int, default=DEFAULT_STIMULUS_SIZE, help="Stimulus side in pixels.")
    parser.add_argument("--seed", type=int, default=None,
                        help="Seed for trial assignment (default: random, stored with the study).")
    parser.add_argument("--completion-url", default="", help="Redirect here after the last vote.")
    parser.add_argument("--no-expertise", action="store_true", help="Do not ask the expertise question.")


def study_fields(options) -> dict:
    """import_study's Study fields from the options of add_study_arguments (a missing seed drawn at random)."""
    return {
        "trials_per_participant": options["trials"],
        "real_fraction": options["real_fraction"],
        "control_fraction": options["control_fraction"],
        "exposure_ms": options["exposure_ms"],
        "practice_trials": options["practice"],
        "seed": options["seed"] if options["seed"] is not None else secrets.randbelow(2**31),
        "completion_url": options["completion_url"],
        "ask_expertise": not options["no_expertise"],
    }


class Command(BaseCommand):
    help = (
        "Create a study from a folder of real photos and one folder per model, matching files by stem. "
        "All or nothing: any bad file aborts the import and leaves nothing behind."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="Short name used in the join URL /s/SLUG/.")
        parser.add_argument("--title", required=True)
        parser.add_argument("--real", required=True, type=Path, metavar="DIR", help="Folder of real photos.")
        # Not required=True: call_command(generated=[...]) must be able to pass several models.
        parser.add_argument(
            "--generated", action="append", type=model_folder, default=[], metavar="NAME=DIR",
            help="A model's name and its folder of outputs; repeat for each model (at least one).",
        )
        add_study_arguments(parser)

    def handle(self, *args, **options):
        try:
            # call_command(generated=[...]) hands over the strings unparsed.
            generated = [model_folder(value) if isinstance(value, str) else value for value in options["generated"]]
        except argparse.ArgumentTypeError as error:
            raise CommandError(f"--generated: {error}") from None
        if not generated:
            raise CommandError("at least one --generated NAME=DIR is required")
        names = [name for name, _ in generated]
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise CommandError(f"--generated names a model more than once: {', '.join(repeated)}")
        fields = study_fields(options)
        seed = fields["seed"]
        try:
            study = import_study(
                options["slug"], options["title"], options["real"], dict(generated),
                size=options["size"], **fields,
            )
        except StudyImportError as error:
            raise CommandError(str(error)) from None

        per_source = Counter(study.stimuli.values_list("source", flat=True))
        scenes = study.stimuli.values("scene").distinct().count()
        self.stdout.write(self.style.SUCCESS(f"Created study {study.slug!r} ({study.title}) with seed {seed}."))
        self.stdout.write(f"  scenes: {scenes}")
        for source in ["real", *study.model_names]:
            self.stdout.write(f"  {source}: {per_source[source]} stimuli")
        self.stdout.write(f"Join URL: {study.get_absolute_url()}")

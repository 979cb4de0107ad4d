"""build_study: from trained colorization runs to a Turing-test study in one command (turing.stimuli.building does the
work: draw the scenes, crop, colorize, import and audit).

`--outputs NAME=DIR` adds a model this package cannot run: a folder of another tool's colorizations of the
held-out photos, cropped exactly as the real photos are.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import add_study_arguments, named_paths, study_fields, write_design
from turing.models import CATCH_POOL_FACTOR
from turing.network import join_url_line
from turing.stimuli.building import CHECKPOINTS, BuildPlan, StudyBuildError, build_study


def saturation_factor(text: str) -> float:
    factor = float(text)
    if not 0 < factor <= 4:
        raise ValueError("the factor must be above 0 and at most 4 (1.4 is the paper's +40%)")
    return factor


class Command(BaseCommand):
    help = (
        "Build a study from trained runs: draw scenes at random from the split's held-out images, crop them as "
        "the models saw them, colorize them with every run, normalize and import everything, and audit it."
    )

    def add_arguments(self, parser):
        add_study_arguments(parser)
        parser.add_argument(
            "--split",
            required=True,
            type=Path,
            metavar="SPLIT_DIR",
            help="Split folder (split.json) the runs were trained on.",
        )
        # Not required=True: call_command(run=[...]) must be able to pass several runs.
        parser.add_argument(
            "--run",
            action="append",
            metavar="NAME=RUN_DIR",
            default=[],
            help="A model's name and its run folder (or checkpoint file); repeat for each model.",
        )
        parser.add_argument(
            "--outputs",
            action="append",
            metavar="NAME=DIR",
            default=[],
            help="A model this package cannot run: a folder of its colorizations of the held-out "
            "photos, one file per photo named after it (<stem>.png or another image "
            "extension), at the photo's size. Repeat per model.",
        )
        parser.add_argument(
            "--crop-size",
            type=int,
            help="Side of the square crops (default: the largest training size of the runs; 256 with --outputs only).",
        )
        parser.add_argument(
            "--n-scenes",
            type=int,
            default=100,
            help="Scenes to draw (default 100); the practice and catch scenes "
            f"({CATCH_POOL_FACTOR} per attention check) are reserved from them.",
        )
        parser.add_argument(
            "--checkpoint",
            choices=sorted(CHECKPOINTS),
            default="last",
            help="Checkpoint of each run folder (default last: best.pt was chosen on the "
            "held-out loss, the very images the scenes come from).",
        )
        parser.add_argument("--device", default="auto", help="Device for colorizing (default auto).")
        parser.add_argument(
            "--saturation",
            action="append",
            metavar="NAME=FACTOR",
            default=[],
            help="Multiply that model's colour (ab) by FACTOR, e.g. perceptual=1.4 for the +40%% "
            "boost the paper's study used; recorded in the study. Repeat per model.",
        )

    def handle(self, *args, **options):
        plan = BuildPlan(
            slug=options["slug"],
            title=options["title"],
            split_dir=Path(options["split"]),
            runs=named_paths(
                options["run"],
                option="--run",
                metavar="NAME=RUN_DIR",
                example="perceptual=runs/perceptual",
                required=False,
            ),
            outputs=named_paths(
                options["outputs"],
                option="--outputs",
                metavar="NAME=DIR",
                example="ddcolor=~/ddcolor-out",
                required=False,
            ),
            saturation=named_paths(
                options["saturation"],
                option="--saturation",
                metavar="NAME=FACTOR",
                example="perceptual=1.4",
                convert=saturation_factor,
                required=False,
            ),
            n_scenes=options["n_scenes"],
            checkpoint=options["checkpoint"],
            crop_size=options["crop_size"],
            device=options["device"],
            size=options["size"],
            fields=study_fields(options),
        )
        try:
            study = build_study(plan, log=self.stdout.write, progress=options["verbosity"] > 1)
        except StudyBuildError as error:
            raise CommandError(str(error)) from None

        self.stdout.write(f"audit passed: {study.stimuli.count()} stimuli")
        models = ", ".join([*plan.runs, *plan.outputs])
        self.stdout.write(
            self.style.SUCCESS(
                f"Built study {study.slug!r} ({study.title}): {study.manifest['n_scenes']} scenes x "
                f"(real + {models}), seed {study.seed}."
            )
        )
        write_design(self, study)
        self.stdout.write(join_url_line(study.get_absolute_url(), options["port"]))

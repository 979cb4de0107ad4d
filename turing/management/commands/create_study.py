from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import add_study_arguments, named_paths, study_fields, write_design
from turing.models import Pool
from turing.network import join_url_line
from turing.stimuli.importing import StudyImportError, import_study


class Command(BaseCommand):
    help = (
        "Create a study from a folder of real photos and one folder per model, matching files by stem. "
        "All or nothing: any bad file aborts the import and leaves nothing behind."
    )

    def add_arguments(self, parser):
        add_study_arguments(parser)
        parser.add_argument("--real", required=True, type=Path, metavar="DIR", help="Folder of real photos.")
        # Not required=True: call_command(generated=[...]) must be able to pass several models.
        parser.add_argument(
            "--generated",
            action="append",
            default=[],
            metavar="NAME=DIR",
            help="A model's name and its folder of outputs; repeat for each model (at least one).",
        )
        parser.add_argument(
            "--allow-missing",
            action="store_true",
            help="Import even if a model's folder lacks some of the real scenes (those are shown real-only for "
            "that model; the study records which).",
        )

    def handle(self, *args, **options):
        generated = named_paths(
            options["generated"], option="--generated", metavar="NAME=DIR", example="perceptual=outputs/perceptual"
        )
        fields = study_fields(options)
        seed = fields["seed"]
        try:
            study = import_study(
                options["slug"],
                options["title"],
                options["real"],
                generated,
                size=options["size"],
                allow_missing=options["allow_missing"],
                warn=lambda line: self.stderr.write(self.style.WARNING(f"warning: {line}")),
                **fields,
            )
        except StudyImportError as error:
            raise CommandError(str(error)) from None
        for name, stems in study.manifest.get("missing_scenes", {}).items():
            self.stderr.write(
                self.style.WARNING(
                    f"warning: {name} lacks {len(stems)} scene(s), shown real-only for it (recorded in the study)"
                )
            )

        per_source = Counter(study.stimuli.filter(pool=Pool.SCORED).values_list("source", flat=True))
        self.stdout.write(self.style.SUCCESS(f"Created study {study.slug!r} ({study.title}) with seed {seed}."))
        for source in ["real", *study.model_names]:
            self.stdout.write(f"  {source}: {per_source[source]} scored stimuli")
        write_design(self, study)
        self.stdout.write(join_url_line(study.get_absolute_url(), options["port"]))

from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import study_or_error
from turing.stimuli.audit import audit_study


class Command(BaseCommand):
    help = (
        "Check that a study's stimuli differ only in their colours: PNG format, mode, size, encoding, no "
        "metadata, random file names, no file-size cue to real vs generated, generated lightness matching the "
        "real photo's, and practice, scored and catch pools apart. Exits non-zero on problems."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="slug of the study to audit")

    def handle(self, *args, slug, **options):
        study = study_or_error(slug)
        problems = audit_study(study, check_luminance=not study.luminance_mismatch_allowed)
        if problems:
            listed = "\n".join(f"- {problem}" for problem in problems)
            raise CommandError(f"audit of {slug!r} found {len(problems)} problem(s):\n{listed}")
        self.stdout.write(f"audit passed: {study.stimuli.count()} stimuli")
        if study.luminance_mismatch_allowed:
            self.stdout.write("lightness not compared: the study was imported with --allow-luminance-mismatch")

from django.core.management.base import BaseCommand, CommandError

from turing.audit import audit_study
from turing.models import Study


class Command(BaseCommand):
    help = (
        "Check that a study's stimuli differ only in their pixels: PNG format, mode, size, encoding, no "
        "metadata, random file names, and no file-size cue to real vs generated. Exits non-zero on problems."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="slug of the study to audit")

    def handle(self, *args, slug, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug {slug!r}")
        problems = audit_study(study)
        if problems:
            listed = "\n".join(f"- {problem}" for problem in problems)
            raise CommandError(f"audit of {slug!r} found {len(problems)} problem(s):\n{listed}")
        self.stdout.write(f"audit passed: {study.stimuli.count()} stimuli")

from django.core.management.base import BaseCommand, CommandError

from turing.models import Study
from turing.reporting import write_votes_csv


class Command(BaseCommand):
    help = "Write a study's raw votes (one row per answered scored trial, long format) to a CSV file."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("path", metavar="VOTES.csv")

    def handle(self, slug, path, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"No study with slug '{slug}'.")
        try:
            count = write_votes_csv(study, path)
        except OSError as error:
            raise CommandError(f"{path}: cannot write ({error.strerror or error}).") from error
        self.stdout.write(f"Wrote {count} votes to {path}")

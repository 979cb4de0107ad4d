from django.core.management.base import BaseCommand

from turing.management.study_options import study_or_error


class Command(BaseCommand):
    help = "Delete a study's rehearsal bots (simulate_participants) and all their votes; people are untouched."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, slug, **options):
        deleted, votes = study_or_error(slug).purge_bots()
        self.stdout.write(f"Deleted {deleted} bots and their {votes} answers from {slug!r}.")

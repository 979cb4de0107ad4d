from django.core.management.base import BaseCommand
from django.db import transaction

from turing.management.study_options import study_or_error
from turing.models import Participant, Trial


class Command(BaseCommand):
    help = "Delete a study's rehearsal bots (simulate_participants) and all their votes; people are untouched."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, slug, **options):
        study = study_or_error(slug)
        bots = Participant.objects.filter(study=study, kind=Participant.Kind.BOT)
        with transaction.atomic():
            votes = Trial.objects.filter(participant__in=bots).exclude(answer="").count()
            deleted = bots.count()
            bots.delete()
        self.stdout.write(f"Deleted {deleted} bots and their {votes} answers from {slug!r}.")

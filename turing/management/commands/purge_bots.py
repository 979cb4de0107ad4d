from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from turing.models import Participant, Study, Trial


class Command(BaseCommand):
    help = "Delete a study's rehearsal bots (simulate_participants) and all their votes; people are untouched."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, slug, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"No study with slug '{slug}'.")
        bots = Participant.objects.filter(study=study, kind=Participant.Kind.BOT)
        with transaction.atomic():
            votes = Trial.objects.filter(participant__in=bots).exclude(answer="").count()
            deleted = bots.count()
            bots.delete()
        self.stdout.write(f"Deleted {deleted} bots and their {votes} answers from {slug!r}.")

from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import study_or_error
from turing.report.data import Selection
from turing.report.exports import write_votes_csv
from turing.vocabulary import SCORED, TRIAL_KINDS


class Command(BaseCommand):
    help = (
        "Write a study's raw votes to a CSV file: one row per answered scored trial of a person (long format); "
        "--all adds practice and attention-check trials, --include-bots the rehearsal bots."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("path", metavar="VOTES.csv")
        parser.add_argument("--all", action="store_true", help="Also practice and catch trials (column kind).")
        parser.add_argument("--include-bots", action="store_true", help="Also rehearsal bots (participant_kind bot).")
        parser.add_argument(
            "--exclude-failed-checks",
            action="store_true",
            help="Leave out participants who called an attention check real.",
        )

    def handle(self, slug, path, **options):
        study = study_or_error(slug)
        selection = Selection(
            include_bots=options["include_bots"],
            exclude_failed_checks=options["exclude_failed_checks"],
            kinds=TRIAL_KINDS if options["all"] else (SCORED,),
        )
        try:
            count = write_votes_csv(study, path, selection)
        except OSError as error:
            raise CommandError(f"{path}: cannot write ({error.strerror or error}).") from error
        self.stdout.write(f"Wrote {count} answers to {path}")

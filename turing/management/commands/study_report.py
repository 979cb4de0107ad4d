from django.core.management.base import BaseCommand, CommandError

from turing import preregistration
from turing.management.study_options import study_or_error
from turing.protocols import protocol_of
from turing.report.cache import report_tables
from turing.report.data import Selection
from turing.report.document import build_report
from turing.report.exports import write_metrics_csv, write_summary_csv
from turing.report.text import render


class Command(BaseCommand):
    help = (
        "Print a study's report, the staff report page as text: share judged real per source and group (real, real "
        "in the control group, each model), per person and per vote, with 95% intervals over participants and "
        "images (and Wilson's, votes taken as independent), HYPE-infinity per model where the protocol gives it, "
        "and every other section of the page. People only unless --include-bots."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", metavar="SUMMARY.csv", help="Also write the summary CSV (as the web export).")
        parser.add_argument(
            "--metrics-csv",
            metavar="METRICS.csv",
            help="Also write every generated image's fooling rate next to its metrics (as the web export).",
        )
        parser.add_argument("--include-bots", action="store_true", help="Count rehearsal bots too.")
        parser.add_argument(
            "--exclude-failed-checks",
            action="store_true",
            help="Leave out participants who called an attention check real.",
        )

    def handle(self, slug, csv=None, metrics_csv=None, **options):
        study = study_or_error(slug)
        selection = Selection(
            include_bots=options["include_bots"], exclude_failed_checks=options["exclude_failed_checks"]
        )
        try:
            if csv:
                write_summary_csv(study, csv, selection)
            metrics = write_metrics_csv(study, metrics_csv, selection) if metrics_csv else None
        except OSError as error:
            raise CommandError(f"{error.filename}: cannot write ({error.strerror or error}).") from error
        # The cached report's tables, which the sections below are drawn from too.
        tables = report_tables(study, selection)
        self.stdout.write(f"{study.title} ({study.slug}): {tables['total_votes']} votes")
        self.stdout.write(f"Protocol: {study.protocol} ({protocol_of(study).label})")
        frozen = preregistration.status(study, selection)
        if frozen:
            self.stdout.write(f"Preregistered plan sha256 {frozen['sha256']}")
            for departure in frozen["departures"]:
                self.stdout.write(self.style.WARNING(f"DEPARTS FROM THE PLAN: {departure}"))
            if not frozen["departures"]:
                self.stdout.write("Analysed as planned.")
        self.stdout.write(render(build_report(study, selection)))
        if csv:
            self.stdout.write(f"Wrote {csv}")
        if metrics_csv:
            self.stdout.write(f"Wrote {metrics} images to {metrics_csv}")

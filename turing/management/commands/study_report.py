from django.core.management.base import BaseCommand, CommandError

from turing.models import Study
from turing.reporting import study_summary, write_summary_csv
from turing.templatetags.staff_format import interval, percent


class Command(BaseCommand):
    help = ("Print a study's summary: share judged real per source (real, real (control), each model) with "
            "Wilson and participant-bootstrap 95% intervals, and HYPE-infinity per model.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", metavar="SUMMARY.csv", help="Also write the summary CSV (as the web export).")

    def handle(self, slug, csv=None, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"No study with slug '{slug}'.")
        try:
            summary = write_summary_csv(study, csv) if csv else study_summary(study)
        except OSError as error:
            raise CommandError(f"{csv}: cannot write ({error.strerror or error}).") from error
        table = summary.assign(
            # Padded so that to_string's right alignment leaves the names left-aligned.
            source=summary["source"].str.ljust(max(summary["source"].str.len(), default=0)),
            judged_real=summary["rate"].map(percent),
            wilson_95=list(map(interval, summary["ci_low"], summary["ci_high"])),
            bootstrap_95=list(map(interval, summary["boot_low"], summary["boot_high"])),
            hype_infinity=summary["hype_infinity"].map(percent),
        )[["source", "group", "votes", "participants", "judged_real", "wilson_95", "bootstrap_95", "hype_infinity"]]
        self.stdout.write(f"{study.title} ({study.slug}): {int(summary['votes'].sum())} votes")
        self.stdout.write(table.to_string(index=False) if len(table) else "No votes yet.")
        if csv:
            self.stdout.write(f"Wrote {csv}")

import math

from django.core.management.base import BaseCommand, CommandError

from turing import preregistration
from turing.analysis.statistics import row_label
from turing.management.study_options import study_or_error
from turing.protocols import protocol_of
from turing.report.reporting import (
    EXPOSURE_TOLERANCE_MS,
    Selection,
    metric_tables,
    report_tables,
    study_summary,
    write_metrics_csv,
    write_summary_csv,
)
from turing.templatetags.staff_format import decimal, interval, percent


class Command(BaseCommand):
    help = (
        "Print a study's summary: share judged real per source and group (real, real in the control group, "
        "each model) with 95% intervals over participants and images (and Wilson's, votes taken as independent), and "
        "HYPE-infinity per model. "
        "People only unless --include-bots."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", metavar="SUMMARY.csv", help="Also write the summary CSV (as the web export).")
        parser.add_argument(
            "--metrics-csv",
            metavar="METRICS.csv",
            help="Also write every generated image's fooling rate next to its metrics (as the web export), and "
            "print Spearman's rho per model and metric.",
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
            summary = write_summary_csv(study, csv, selection) if csv else study_summary(study, selection)
        except OSError as error:
            raise CommandError(f"{csv}: cannot write ({error.strerror or error}).") from error
        labels = [row_label(source, group) for source, group in zip(summary["source"], summary["group"])]
        table = summary.assign(
            # Padded so that to_string's right alignment leaves the names left-aligned.
            source=[label.ljust(max(map(len, labels), default=0)) for label in labels],
            judged_real=summary["rate"].map(percent),
            interval_95=list(map(interval, summary["ci_low"], summary["ci_high"])),
            wilson_95=list(map(interval, summary["wilson_low"], summary["wilson_high"])),
            hype_infinity=summary["hype_infinity"].map(percent),
        )[["source", "group", "votes", "participants", "judged_real", "interval_95", "wilson_95", "hype_infinity"]]
        self.stdout.write(f"{study.title} ({study.slug}): {int(summary['votes'].sum())} votes")
        protocol = protocol_of(study)
        self.stdout.write(f"Protocol: {study.protocol} ({protocol.label})")
        frozen = preregistration.status(study, selection)
        if frozen:
            self.stdout.write(f"Preregistered plan sha256 {frozen['sha256']}")
            for departure in frozen["departures"]:
                self.stdout.write(self.style.WARNING(f"DEPARTS FROM THE PLAN: {departure}"))
            if not frozen["departures"]:
                self.stdout.write("Analysed as planned.")
        # The cached report's tables, which the summary above came from too.
        tables = report_tables(study, selection)
        bots = tables["participation"]["bots_left_out"]
        if bots:
            self.stdout.write(f"People only: {bots} rehearsal bots left out (--include-bots counts them).")
        attention = tables["attention"]
        if attention:
            self.stdout.write(
                f"Attention checks: {attention['failed']} of {attention['checked']} participants failed"
                + (f", {attention['unchecked']} answered none" if attention["unchecked"] else "")
                + (
                    f"; {attention['excluded']} left out of everything below."
                    if selection.exclude_failed_checks
                    else " (--exclude-failed-checks leaves them out)."
                )
            )
        if study.luminance_mismatch_allowed:
            self.stdout.write("Imported with --allow-luminance-mismatch: generated images may differ in lightness.")
        self.stdout.write(table.to_string(index=False) if len(table) else "No votes yet.")
        if len(table):
            self.stdout.write(
                "interval_95 counts both samples, participants and images; wilson_95 takes every "
                "vote as independent and is too narrow when people or images differ."
            )
        for line in protocol.report_lines(tables["protocol_tables"]):
            self.stdout.write(line)
        flags = tables["exposure_flags"]
        if flags:
            self.stdout.write(
                f"Exposure: {flags['measured']} timed trials measured by the browser, {flags['flagged']} off by more "
                f"than one frame ({EXPOSURE_TOLERANCE_MS} ms) from the exposure asked"
                + (f", {flags['unmeasured']} not measured." if flags["unmeasured"] else ".")
            )
        if csv:
            self.stdout.write(f"Wrote {csv}")
        if metrics_csv:
            self._write_metrics(study, metrics_csv, selection)

    def _write_metrics(self, study, path, selection):
        try:
            count = write_metrics_csv(study, path, selection)
        except OSError as error:
            raise CommandError(f"{path}: cannot write ({error.strerror or error}).") from error
        tables = metric_tables(study, selection)
        correlations = tables["metric_correlations_frame"]
        if tables["metric_images_unmeasured"]:
            self.stdout.write(
                f"{tables['metric_images_unmeasured']} judged generated images have no metrics and are left out."
            )
        if len(correlations):
            table = correlations.assign(
                rho=correlations["rho"].map(decimal),
                interval_95=[
                    f"{decimal(low)} – {decimal(high)}" if not math.isnan(low) else "—"
                    for low, high in zip(correlations["ci_low"], correlations["ci_high"])
                ],
            )[["model", "metric", "images", "votes", "rho", "interval_95", "note"]]
            self.stdout.write("Spearman's rho of fooling rate and metric, per model (n = images):")
            self.stdout.write(table.to_string(index=False))
            self.stdout.write(
                "interval_95 resamples images (seeded BCa bootstrap); it leaves out that other participants would "
                "give other rates, so it may be too narrow when few people judged each image."
            )
        else:
            self.stdout.write("No votes on generated images with metrics yet.")
        self.stdout.write(f"Wrote {count} images to {path}")

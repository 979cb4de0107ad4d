from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import study_or_error
from turing.models import Study
from turing.report.leaderboard import leaderboard
from turing.templatetags.staff_format import interval, percent


class Command(BaseCommand):
    help = (
        "Print every model's fooling rate per protocol, pooled over studies with study as a random effect "
        "(turing/analysis/pooling.py says how), with 95% intervals and rank ranges ('1–2'). People's scored votes "
        "only, as the report counts them. Every study unless --study names some."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--study",
            metavar="SLUG",
            nargs="+",
            action="extend",
            help="Pool only these studies (several after one --study, or --study repeated).",
        )
        parser.add_argument("--csv", metavar="LEADERBOARD.csv", help="Also write the leaderboard as CSV.")

    def handle(self, study=None, csv=None, **options):
        studies = (
            [study_or_error(slug) for slug in dict.fromkeys(study)] if study else Study.objects.order_by("created_at")
        )
        board = leaderboard(studies)
        if csv:
            try:
                board.table.to_csv(csv, index=False)
            except OSError as error:
                raise CommandError(f"{csv}: cannot write ({error.strerror or error}).") from error
        self.stdout.write(f"Studies ({len(board.studies)}), people's scored votes only:")
        for entry in board.studies:
            note = f"left out: {entry.left_out}" if entry.left_out else f"{entry.votes} votes on models"
            self.stdout.write(f"  {entry.study.slug} ({entry.study.protocol}): {note}")
        for protocol in board.protocols:
            rows = board.table[board.table["protocol"] == protocol]
            table = rows.assign(
                rank=rows["rank"].replace("", "—"),
                # Padded so that to_string's right alignment leaves the names left-aligned.
                model=rows["model"].str.ljust(rows["model"].str.len().max()),
                fooling_rate=rows["rate"].map(percent),
                interval_95=list(map(interval, rows["ci_low"], rows["ci_high"])),
                between_study_sd=[percent(tau) if n > 1 else "—" for tau, n in zip(rows["tau"], rows["studies"])],
            )[["rank", "model", "fooling_rate", "interval_95", "studies", "votes", "participants", "between_study_sd"]]
            self.stdout.write(f"\nProtocol {protocol}:")
            self.stdout.write(table.to_string(index=False))
        if not board.protocols:
            self.stdout.write("No model has been judged by people in these studies.")
        else:
            self.stdout.write(
                "\nRank 'a–b': a = 1 + models whose interval lies wholly above, b = models ranked - those wholly "
                "below. With one study a model keeps that study's interval; with two the interval is wide."
            )
        if csv:
            self.stdout.write(f"Wrote {csv}")

from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import study_or_error
from turing.models import Study
from turing.stimuli.metrics import MetricsError, fill_metrics


class Command(BaseCommand):
    help = (
        "Compute the colorization metrics (PSNR, SSIM, ab error, AuC, colourfulness) of every generated stimulus "
        "that has none, against its scene's real stimulus: studies imported before the metrics were stored at "
        "import. Without a slug, every study. Stimuli that have them already are left as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="studies to fill (default: all)")

    def handle(self, *args, slugs, **options):
        studies = [study_or_error(slug) for slug in slugs] if slugs else list(Study.objects.order_by("slug"))
        if not studies:
            self.stdout.write("No studies.")
        for study in studies:
            try:
                measured = fill_metrics(study)
            except MetricsError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(
                f"{study.slug}: measured {measured} generated stimuli"
                if measured
                else f"{study.slug}: every generated stimulus has its metrics already"
            )

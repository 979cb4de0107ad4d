"""Rehearse a study with bots that take it through the real participant pages (turing.participant.bots), as oTree's do.

A bot answers "real" with probability --p-real SOURCE=P for an image of that source, so a researcher can
see what the report shows for known fooling rates before the poster session. Real people and images differ:
--participant-sd S gives each bot, and --image-sd S each image, its own offset drawn from N(0, S) on the
logit scale, so that p = expit(mu + bot offset + image offset), with mu set so that the average of p over
bots and images is P (turing.analysis.simulation.logit_mean): P is then the rate the report estimates, and a dry run
shows the interval widths a real study would have.

--cohort makes the bots join the way that cohort does (turing.participant.bots): with Prolific's or MTurk's query
string, the poster's QR code, a kiosk, or a plain link, so that a rehearsal of a crowd study exercises its join URL
and finish.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from turing.management.study_options import study_or_error
from turing.models import Participant, Study, Trial
from turing.participant import bots
from turing.vocabulary import CATCH, REAL


def parse_p_real(values, sources):
    """{source: P} from ["SOURCE=P", ...]; every source of the study defaults to 0.5, attention checks
    ("catch") to 0: bots pay attention unless told otherwise."""
    p_real = dict.fromkeys(sources, 0.5) | {CATCH: 0.0}
    for value in values:
        source, sep, probability = value.partition("=")
        if not sep:
            raise CommandError(f"--p-real {value!r}: expected SOURCE=P, e.g. real=0.8")
        if source not in p_real:
            raise CommandError(f"--p-real {value!r}: unknown source {source!r}; this study has {', '.join(sources)}")
        try:
            p_real[source] = float(probability)
        except ValueError:
            raise CommandError(f"--p-real {value!r}: {probability!r} is not a number") from None
        if not 0.0 <= p_real[source] <= 1.0:
            raise CommandError(f"--p-real {value!r}: the probability must lie between 0 and 1")
    return p_real


class Command(BaseCommand):
    help = "Take an open study with N bots through the real participant pages and print their votes per source."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--n", type=int, default=40, help="Number of bots (default 40).")
        parser.add_argument("--seed", type=int, help="Seed for the bots' answers (default: random).")
        parser.add_argument(
            "--p-real",
            nargs="+",
            action="extend",
            default=[],
            metavar="SOURCE=P",
            help='Probability of answering "real" for images of SOURCE ("real", a model name, or "catch" for '
            "attention checks); default 0.5, catch 0.",
        )
        parser.add_argument(
            "--participant-sd",
            type=float,
            default=0.0,
            metavar="S",
            help='Spread of the bots\' bias toward "real", on the logit scale (default 0).',
        )
        parser.add_argument(
            "--image-sd",
            type=float,
            default=0.0,
            metavar="S",
            help="Spread of how convincing each image is, on the logit scale (default 0).",
        )
        parser.add_argument(
            "--cohort",
            choices=Participant.Cohort.values,
            default=Participant.Cohort.LINK,
            help="How the bots join: a plain link (default), the poster's QR code, a kiosk, or Prolific's or "
            "MTurk's query string.",
        )

    def handle(self, slug, n, seed, p_real, participant_sd, image_sd, cohort, **options):
        study = study_or_error(slug)
        if study.status != Study.Status.OPEN:
            raise CommandError(f"study {slug!r} is {study.status}; open it before simulating participants")
        if n < 1:
            raise CommandError("--n must be at least 1")
        if participant_sd < 0 or image_sd < 0:
            raise CommandError("--participant-sd and --image-sd must be zero or more")
        p_real = parse_p_real(p_real, [REAL, *study.model_names])
        try:
            labels = bots.rehearse(
                study, n, p_real, seed=seed, participant_sd=participant_sd, image_sd=image_sd, cohort=cohort
            )
        except bots.BotError as error:
            raise CommandError(str(error)) from None
        self.print_summary(study, labels, p_real, cohort)

    def print_summary(self, study, labels, p_real, cohort):
        rows = (
            Trial.objects.filter(participant__study=study, participant__label__in=labels, kind=Trial.Kind.SCORED)
            .values("stimulus__source", "participant__group")
            .annotate(votes=Count("pk"), judged_real=Count("pk", filter=Q(answer=REAL)))
            .order_by("stimulus__source", "participant__group")
        )
        self.stdout.write(
            f"{len(labels)} bots took study {study.slug!r} as cohort {cohort} ({labels[0]} to {labels[-1]})."
        )
        self.stdout.write(f"{'source':<20} {'group':<10} {'votes':>6} {'judged real':>12} {'p-real':>7}")
        for row in rows:
            source = row["stimulus__source"]
            share = row["judged_real"] / row["votes"]
            self.stdout.write(
                f"{source:<20} {row['participant__group']:<10} {row['votes']:>6} {share:>12.3f} {p_real[source]:>7.2f}"
            )
        self.stdout.write(
            "Bots are left out of the report, dashboard and exports unless asked for (--include-bots); "
            f"remove them with: python manage.py purge_bots {study.slug}"
        )

"""Rehearse a study with bots that take it through the real participant pages, as oTree's bots do.

Each bot has its own django.test.Client (its own session cookie, marked server-side as a bot's, so the join
makes a participant of kind "bot": left out of reports, exports and the balance of people's assignments
unless asked for, and removed with purge_bots): it opens the join URL with a participant_label (bot-0001, ...),
consents, opens the trial page, then for every trial loads the image and
votes the way participant.js does (the JSON reply names the next trial), and finally reads its finish page.
A bot answers "real" with probability --p-real SOURCE=P for an image of that source, so a researcher can
see what the report shows for known fooling rates before the poster session. Real people and images differ:
--participant-sd S gives each bot, and --image-sd S each image, its own offset drawn from N(0, S) on the
logit scale, so that p = expit(mu + bot offset + image offset), with mu set so that the average of p over
bots and images is P (turing.simulation.logit_mean): P is then the rate the report estimates, and a dry run
shows the interval widths a real study would have.
"""

import json
import math
import random
import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.test import Client
from django.urls import resolve, reverse
from scipy import special

from turing import simulation
from turing.management.study_options import study_or_error
from turing.models import CATCH, GENERATED, REAL, Study, Trial
from turing.views import BOT_SESSION_KEY

TRIAL_DATA = re.compile(r'<script id="trial-data" type="application/json">(.*?)</script>', re.DOTALL)
JOIN_KEY = re.compile(r'name="join_key" value="([^"]+)"')
# Bots take about 1.5 s per image, spread like human response times (log-normal).
RESPONSE_MS_MEDIAN, RESPONSE_MS_SIGMA = 1500, 0.5


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


def bot_host():
    """A host name that the running settings accept, not only the test settings.

    Outside pytest, ALLOWED_HOSTS lacks the test Client's default "testserver".
    """
    names = [host.lstrip(".") for host in settings.ALLOWED_HOSTS if "*" not in host]
    return names[0] if names else "localhost"


class Bot:
    def __init__(self, study, label, logit_means, rng, offset=0.0, image_offsets=None):
        self.study, self.label, self.logit_means, self.rng = study, label, logit_means, rng
        self.offset, self.image_offsets = offset, image_offsets or {}
        self.client = Client(HTTP_HOST=bot_host())
        session = self.client.session
        session[BOT_SESSION_KEY] = True
        session.save()

    def request(self, method, url, data=None, expected=(200,), accept="text/html"):
        # Over HTTPS, because production settings redirect plain HTTP there.
        response = getattr(self.client, method)(url, data, secure=True, headers={"accept": accept})
        if response.status_code not in expected:
            raise CommandError(
                f"{self.label}: {method.upper()} {url} answered {response.status_code}; the study cannot be taken"
            )
        return response

    def run(self):
        join_url = reverse("turing:join", args=[self.study.slug])
        trial_url = reverse("turing:trial", args=[self.study.slug])
        page = self.request("get", join_url, {"participant_label": self.label})
        join_key = JOIN_KEY.search(page.content.decode()).group(1)
        consent = {"consent": "on", "participant_label": self.label, "join_key": join_key}
        if self.study.ask_expertise:
            consent["expertise"] = self.rng.choice(["yes", "no", ""])
        self.request("post", join_url, consent, expected=(302,))
        page = self.request("get", trial_url)
        trial = json.loads(TRIAL_DATA.search(page.content.decode()).group(1))
        # From here on as participant.js does it: each vote's JSON reply names the next trial.
        while trial:
            trial = self.vote(trial)
        self.request("get", reverse("turing:finish", args=[self.study.slug]))

    def vote(self, trial):
        """Look at the trial's image, answer, and return the next trial (None after the last)."""
        self.request("get", trial["image_url"])
        # The bot may look up what a human could only see: the image URL is the trial's own token.
        source, stimulus = Trial.objects.values_list("stimulus__source", "stimulus").get(
            image_token=resolve(trial["image_url"]).kwargs["token"])
        logit = self.logit_means[source] + self.offset + self.image_offsets.get(stimulus, 0.0)
        answer = REAL if self.rng.random() < special.expit(logit) else GENERATED
        response_ms = round(self.rng.lognormvariate(math.log(RESPONSE_MS_MEDIAN), RESPONSE_MS_SIGMA))
        reply = self.request(
            "post", trial["vote_url"], {"answer": answer, "response_ms": response_ms}, accept="application/json"
        )
        return reply.json()["next"]


class Command(BaseCommand):
    help = "Take an open study with N bots through the real participant pages and print their votes per source."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--n", type=int, default=40, help="Number of bots (default 40).")
        parser.add_argument("--seed", type=int, help="Seed for the bots' answers (default: random).")
        parser.add_argument(
            "--p-real", nargs="+", action="extend", default=[], metavar="SOURCE=P",
            help='Probability of answering "real" for images of SOURCE ("real", a model name, or "catch" for '
                 'attention checks); default 0.5, catch 0.',
        )
        parser.add_argument("--participant-sd", type=float, default=0.0, metavar="S",
                            help="Spread of the bots' bias toward \"real\", on the logit scale (default 0).")
        parser.add_argument("--image-sd", type=float, default=0.0, metavar="S",
                            help="Spread of how convincing each image is, on the logit scale (default 0).")

    def handle(self, slug, n, seed, p_real, participant_sd, image_sd, **options):
        study = study_or_error(slug)
        if study.status != Study.Status.OPEN:
            raise CommandError(f"study {slug!r} is {study.status}; open it before simulating participants")
        if n < 1:
            raise CommandError("--n must be at least 1")
        if participant_sd < 0 or image_sd < 0:
            raise CommandError("--participant-sd and --image-sd must be zero or more")
        p_real = parse_p_real(p_real, [REAL, *study.model_names])
        rng = random.Random(seed)

        # Over people too: a bot joining with a label someone already has would resume that participant.
        numbers = [int(label[4:]) for label in study.participants.values_list("label", flat=True)
                   if re.fullmatch(r"bot-\d+", label)]
        first = max(numbers, default=0) + 1
        labels = [f"bot-{number:04d}" for number in range(first, first + n)]
        # Offsets come from their own generator, so that without spreads the answers are those of before.
        offsets = random.Random(None if seed is None else f"{seed}:offsets")
        stimuli = study.stimuli.order_by("pk").values_list("pk", flat=True)
        image_offsets = {pk: offsets.gauss(0.0, image_sd) for pk in stimuli}
        # P is the rate over all people and images, what the report estimates; where they differ, a typical
        # bot and image answer "real" less often than P says when P > 0.5 (simulation.logit_mean).
        spread = math.hypot(participant_sd, image_sd)
        logit_means = {source: simulation.logit_mean(p, spread) if 0 < p < 1 else special.logit(p)
                       for source, p in p_real.items()}
        for label in labels:
            Bot(study, label, logit_means, rng, offsets.gauss(0.0, participant_sd), image_offsets).run()
        self.print_summary(study, labels, p_real)

    def print_summary(self, study, labels, p_real):
        rows = (
            Trial.objects.filter(participant__study=study, participant__label__in=labels, kind=Trial.Kind.SCORED)
            .values("stimulus__source", "participant__group")
            .annotate(votes=Count("pk"), judged_real=Count("pk", filter=Q(answer=REAL)))
            .order_by("stimulus__source", "participant__group")
        )
        self.stdout.write(f"{len(labels)} bots took study {study.slug!r} ({labels[0]} to {labels[-1]}).")
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

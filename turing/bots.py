"""Bots that take a study through the real participant pages, as oTree's bots do (simulate_participants).

Each bot has its own django.test.Client (its own session cookie, marked server-side as a bot's, so the join
makes a participant of kind "bot": left out of reports, exports and the balance of people's assignments
unless asked for, and removed with purge_bots). It opens the join URL with a participant_label (bot-0001, ...),
consents, opens the trial page, then for every trial loads the image and votes the way participant.js does
(the JSON reply names the next trial), and finally reads its finish page. The study's protocol
(turing.protocols) turns a bot's judgement into the button it presses: real/generated, or the side of a
2afc pair. A bot's answers do not depend on the exposure: under hype-time its staircase wanders.
"""

import json
import math
import random
import re

from django.conf import settings
from django.test import Client
from django.urls import resolve, reverse
from scipy import special

from turing import simulation
from turing.models import Trial
from turing.protocols import protocol_of
from turing.views import BOT_SESSION_KEY

TRIAL_DATA = re.compile(r'<script id="trial-data" type="application/json">(.*?)</script>', re.DOTALL)
JOIN_KEY = re.compile(r'name="join_key" value="([^"]+)"')
# Bots take about 1.5 s per image, spread like human response times (log-normal).
RESPONSE_MS_MEDIAN, RESPONSE_MS_SIGMA = 1500, 0.5


class BotError(RuntimeError):
    """A page answered a bot with an unexpected status: the study cannot be taken as it stands."""


def rehearse(study, n, p_real, *, seed=None, participant_sd=0.0, image_sd=0.0) -> list[str]:
    """Take the study with n new bots; returns their labels. p_real: {source: P(answer "real")}, P being the
    rate over all bots and images; participant_sd and image_sd spread bots and images on the logit scale
    (see simulate_participants)."""
    rng = random.Random(seed)

    # Over people too: a bot joining with a label someone already has would resume that participant.
    numbers = [
        int(label[4:])
        for label in study.participants.values_list("label", flat=True)
        if re.fullmatch(r"bot-\d+", label)
    ]
    first = max(numbers, default=0) + 1
    labels = [f"bot-{number:04d}" for number in range(first, first + n)]
    # Offsets come from their own generator, so that without spreads the answers are those of before.
    offsets = random.Random(None if seed is None else f"{seed}:offsets")
    stimuli = study.stimuli.order_by("pk").values_list("pk", flat=True)
    image_offsets = {pk: offsets.gauss(0.0, image_sd) for pk in stimuli}
    # P is the rate over all people and images, what the report estimates; where they differ, a typical
    # bot and image answer "real" less often than P says when P > 0.5 (simulation.logit_mean).
    spread = math.hypot(participant_sd, image_sd)
    logit_means = {
        source: simulation.logit_mean(p, spread) if 0 < p < 1 else special.logit(p) for source, p in p_real.items()
    }
    for label in labels:
        Bot(study, label, logit_means, rng, offsets.gauss(0.0, participant_sd), image_offsets).run()
    return labels


def bot_host():
    """A host name that the running settings accept, not only the test settings.

    Outside pytest, ALLOWED_HOSTS lacks the test Client's default "testserver".
    """
    names = [host.lstrip(".") for host in settings.ALLOWED_HOSTS if "*" not in host]
    return names[0] if names else "localhost"


class Bot:
    """One simulated participant with its own session (marked as a bot's) taking the study page by page."""

    def __init__(self, study, label, logit_means, rng, offset=0.0, image_offsets=None):
        self.study, self.label, self.logit_means, self.rng = study, label, logit_means, rng
        self.offset, self.image_offsets = offset, image_offsets or {}
        self.protocol = protocol_of(study)
        self.client = Client(HTTP_HOST=bot_host())
        session = self.client.session
        session[BOT_SESSION_KEY] = True
        session.save()

    def request(self, method, url, data=None, expected=(200,), accept="text/html"):
        # Over HTTPS, because production settings redirect plain HTTP there.
        response = getattr(self.client, method)(url, data, secure=True, headers={"accept": accept})
        if response.status_code not in expected:
            raise BotError(
                f"{self.label}: {method.upper()} {url} answered {response.status_code}; the study cannot be taken"
            )
        return response

    def run(self):
        join_url = reverse("turing:join", args=[self.study.slug])
        page = self.request("get", join_url, {"participant_label": self.label})
        join_key = JOIN_KEY.search(page.content.decode()).group(1)
        consent = {"consent": "on", "participant_label": self.label, "join_key": join_key}
        if self.study.ask_expertise:
            consent["expertise"] = self.rng.choice(["yes", "no", ""])
        self.request("post", join_url, consent, expected=(302,))
        trial = self.trial_page()
        # From here on as participant.js does it: each vote's JSON reply names the next trial.
        while trial:
            trial = self.vote(trial)
        self.request("get", reverse("turing:finish", args=[self.study.slug]))

    def vote(self, trial):
        """Look at the trial's images, answer, and return the next trial (None after the last).

        The bot judges the trial's stimulus (in a 2afc pair, the generated image) real with its source's
        probability, and presses the button the study's protocol gives that judgement."""
        for url in trial["image_urls"]:
            self.request("get", url)
        # The bot may look up what a human could only see: the first image URL is the trial's own token.
        shown = Trial.objects.select_related("stimulus").get(image_token=resolve(trial["image_url"]).kwargs["token"])
        logit = self.logit_means[shown.stimulus.source] + self.offset + self.image_offsets.get(shown.stimulus_id, 0.0)
        answer = self.protocol.posted_answer(shown, self.rng.random() < special.expit(logit))
        response_ms = round(self.rng.lognormvariate(math.log(RESPONSE_MS_MEDIAN), RESPONSE_MS_SIGMA))
        reply = self.request(
            "post", trial["vote_url"], {"answer": answer, "response_ms": response_ms}, accept="application/json"
        )
        reply = reply.json()
        if reply["feedback"] and reply["next"] and reply["next"]["exposure_ms"]:
            # As participant.js does: the trial page starts the next exposure's clock, not the feedback.
            return self.trial_page()
        return reply["next"]

    def trial_page(self):
        page = self.request("get", reverse("turing:trial", args=[self.study.slug]))
        return json.loads(TRIAL_DATA.search(page.content.decode()).group(1))

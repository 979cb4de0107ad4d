"""Bots that take a study through the real participant pages, as oTree's bots do (simulate_participants).

Each bot has its own django.test.Client (its own session cookie, marked server-side as a bot's, so the join
makes a participant of kind "bot": left out of reports, exports and the balance of people's assignments
unless asked for, and removed with purge_bots). It opens the join URL with a participant_label (bot-0001, ...),
consents, opens the trial page, then for every trial loads the image and votes the way participant.js does
(the JSON reply names the next trial), and finally reads its finish page.

A bot joins as one cohort (turing.participant.crowd), with that cohort's query string: a plain link, the poster's
``?via=poster``, a kiosk (it opens the kiosk link first), Prolific's PROLIFIC_PID, STUDY_ID and SESSION_ID, or an
MTurk ExternalQuestion's parameters, previewing the HIT and opening MTurk's framed page before it takes part and
checking that its finish page hands the assignment back to MTurk's sandbox.

The study's protocol (turing.protocols) turns a bot's judgement into the button it presses: real/generated,
or the side of a 2afc pair. A bot's answers do not depend on the exposure: under hype-time its staircase wanders.
"""

import json
import math
import random
import re

from django.conf import settings
from django.test import Client
from django.urls import resolve, reverse
from scipy import special

from turing.analysis import simulation
from turing.models import Participant, Trial, new_token
from turing.participant.crowd import MTURK_PREVIEW, MTURK_SUBMIT_PATH, TAB_PARAMETER, VIA_PARAMETER, VIA_POSTER
from turing.participant.views import BOT_SESSION_KEY
from turing.protocols import protocol_of
from turing.vocabulary import KIOSK, LINK, MTURK, POSTER, PROLIFIC

TRIAL_DATA = re.compile(r'<script id="trial-data" type="application/json">(.*?)</script>', re.DOTALL)
JOIN_KEY = re.compile(r'name="join_key" value="([^"]+)"')
# Bots take about 1.5 s per image, spread like human response times (log-normal).
RESPONSE_MS_MEDIAN, RESPONSE_MS_SIGMA = 1500, 0.5
# Where MTurk bots are told to submit: the sandbox, so that nothing a rehearsal leaves could reach a real HIT.
MTURK_SANDBOX = "https://workersandbox.mturk.com"


class BotError(RuntimeError):
    """A page answered a bot with an unexpected status: the study cannot be taken as it stands."""


def rehearse(study, n, p_real, *, seed=None, participant_sd=0.0, image_sd=0.0, cohort=LINK) -> list[str]:
    """Take the study with n new bots joining as ``cohort``; returns their labels. p_real: {source: P(answer
    "real")}, P being the rate over all bots and images; participant_sd and image_sd spread bots and images on
    the logit scale (see simulate_participants)."""
    rng = random.Random(seed)

    # Over people too: a bot joining with a label someone already has would resume that participant; and over
    # the study's series, whose other studies refuse a label that took part in one of them.
    taken = Participant.objects.filter(study__series=study.series) if study.series else study.participants
    numbers = [int(label[4:]) for label in taken.values_list("label", flat=True) if re.fullmatch(r"bot-\d+", label)]
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
        Bot(study, label, logit_means, rng, offsets.gauss(0.0, participant_sd), image_offsets, cohort).run()
    return labels


def bot_host():
    """A host name that the running settings accept, not only the test settings.

    Outside pytest, ALLOWED_HOSTS lacks the test Client's default "testserver".
    """
    names = [host.lstrip(".") for host in settings.ALLOWED_HOSTS if "*" not in host]
    return names[0] if names else "localhost"


class Bot:
    """One simulated participant with its own session (marked as a bot's) taking the study page by page."""

    def __init__(self, study, label, logit_means, rng, offset=0.0, image_offsets=None, cohort=LINK):
        self.study, self.label, self.logit_means, self.rng = study, label, logit_means, rng
        self.offset, self.image_offsets, self.cohort = offset, image_offsets or {}, cohort
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

    def join_query(self):
        """The join URL's query string for the bot's cohort, as the platform or poster would give it."""
        if self.cohort == PROLIFIC:
            return {"PROLIFIC_PID": self.label, "STUDY_ID": f"rehearsal-{self.study.slug}", "SESSION_ID": new_token()}
        if self.cohort == MTURK:
            hit = f"rehearsal-{self.study.slug}"
            return {"assignmentId": new_token(), "hitId": hit, "workerId": self.label, "turkSubmitTo": MTURK_SANDBOX}
        if self.cohort == POSTER:
            return {"participant_label": self.label, VIA_PARAMETER: VIA_POSTER}
        return {"participant_label": self.label}

    def open_mturk_frame(self, join_url, query):
        """What MTurk shows before the study: the preview, then the accepted HIT's framed page; neither may hold
        a consent form, since no form can be posted in MTurk's frame (turing.participant.crowd)."""
        for shown in ({"assignmentId": MTURK_PREVIEW, "hitId": query["hitId"]}, query):
            if JOIN_KEY.search(self.request("get", join_url, shown).content.decode()):
                raise BotError(f"{self.label}: the MTurk join page shows a consent form inside MTurk's frame")

    def run(self):
        join_url = reverse("turing:join", args=[self.study.slug])
        query = self.join_query()
        if self.cohort == KIOSK:
            self.request("get", reverse("turing:kiosk", args=[self.study.slug]), expected=(302,))
        if self.cohort == MTURK:
            self.open_mturk_frame(join_url, query)
            query[TAB_PARAMETER] = "1"
        page = self.request("get", join_url, query)
        join_key = JOIN_KEY.search(page.content.decode()).group(1)
        # The consent form carries the query's parameters as hidden fields.
        consent = {**query, "consent": "on", "participant_label": self.label, "join_key": join_key}
        if self.study.ask_expertise:
            consent["expertise"] = self.rng.choice(["yes", "no", ""])
        self.request("post", join_url, consent, expected=(302,))
        trial = self.trial_page()
        # From here on as participant.js does it: each vote's JSON reply names the next trial.
        done = None
        while trial:
            trial, done = self.vote(trial)
        self.finish(done)

    def finish(self, done):
        """Read the finish page, checking that the last vote led where the bot's platform expects."""
        finish_url = reverse("turing:finish", args=[self.study.slug])
        expected = finish_url
        if self.cohort in (LINK, POSTER, PROLIFIC):
            expected = self.study.completion_url or finish_url
        if done != expected:
            raise BotError(f"{self.label}: the last vote led to {done!r}, not to {expected!r}")
        page = self.request("get", finish_url).content.decode()
        if self.cohort == MTURK and f'action="{MTURK_SANDBOX}{MTURK_SUBMIT_PATH}"' not in page:
            raise BotError(f"{self.label}: the finish page does not submit the assignment to {MTURK_SANDBOX}")

    def vote(self, trial):
        """Look at the trial's images, answer, and return the next trial (None after the last) and where the
        reply sends the participant after their last answer (None before it).

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
            return self.trial_page(), reply["redirect"]
        return reply["next"], reply["redirect"]

    def trial_page(self):
        page = self.request("get", reverse("turing:trial", args=[self.study.slug]))
        return json.loads(TRIAL_DATA.search(page.content.decode()).group(1))

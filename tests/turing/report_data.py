"""A fixed vote set, small enough to count by hand, built directly with the ORM (no import, no views).

Models alpha and beta (gamma has a stimulus but no votes). Counts the tests rely on:
- treatment, real photos: 6 votes, 4 judged real (p1 1/2, p2 2/2, p3 1/2)
- control, real photos:   8 votes, 5 judged real (c1 3/4, c2 2/4)
- alpha: 6 votes, 3 judged real (p1 2/2, p2 1/2, p3 0/2); beta: 6 votes, 1 judged real (p2 1/2)
- 26 scored answered votes; p1's practice vote (first, on practice scene s0), p3's passed attention check
  (catch scene s7, between their third and fourth scored trial) and c2's unanswered trial are not votes.
Each participant's trials are numbered in one presentation order, practice first, as assignment numbers them.
"""

import datetime as dt
import io
import math

from django.core.files.base import ContentFile
from PIL import Image
from scipy.stats import norm

from turing.models import Participant, Pool, Stimulus, Study, Trial
from turing.vocabulary import CATCH

SCENES = ("s1", "s2", "s3", "s4", "s5", "s6")
TOTAL_VOTES = 26
PRACTICE_SCENE, CATCH_SCENE = "s0", "s7"
# Answered trials of every kind: the scored votes, p1's practice vote and p3's attention check.
ALL_ANSWERS = TOTAL_VOTES + 2
# key: (group, label, expertise, [(source, scene, answer), ...])
R, G = "real", "generated"
VOTES = {
    "p1": (
        "treatment",
        "p1",
        True,
        [
            ("real", "s1", R),
            ("real", "s2", G),
            ("alpha", "s3", R),
            ("alpha", "s4", R),
            ("beta", "s5", G),
            ("beta", "s6", G),
        ],
    ),
    "p2": (
        "treatment",
        "",
        False,
        [
            ("real", "s3", R),
            ("real", "s4", R),
            ("alpha", "s5", R),
            ("alpha", "s6", G),
            ("beta", "s1", R),
            ("beta", "s2", G),
        ],
    ),
    "p3": (
        "treatment",
        "p3",
        None,
        [
            ("real", "s5", R),
            ("real", "s6", G),
            ("alpha", "s1", G),
            ("alpha", "s2", G),
            ("beta", "s3", G),
            ("beta", "s4", G),
        ],
    ),
    "c1": ("control", "c1", None, [("real", "s1", R), ("real", "s2", R), ("real", "s3", G), ("real", "s4", R)]),
    "c2": ("control", "c2", None, [("real", "s1", G), ("real", "s2", G), ("real", "s3", R), ("real", "s4", R)]),
}
# key: (index among the participant's scored trials it comes before, kind, (source, scene), answer)
OTHER_TRIALS = {
    "p1": (0, Trial.Kind.PRACTICE, ("real", PRACTICE_SCENE), R),
    "p3": (3, Trial.Kind.CATCH, (CATCH, CATCH_SCENE), G),
}
START = dt.datetime(2025, 5, 1, 14, 0, tzinfo=dt.UTC)


def tiny_png():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (120, 90, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_vote_study(slug="votes", votes=VOTES, **study_fields):
    """The study above (or the same stimuli with other ``votes``, keyed and shaped as VOTES); returns
    (study, {key: Participant})."""
    study = Study.objects.create(
        slug=slug,
        title=f"Votes {slug}",
        control_fraction=0.4,
        seed=3,
        practice_trials=1,
        catch_trials=1,
        **study_fields,
    )
    png = tiny_png()

    def stimulus(scene, source, pool=Pool.SCORED):
        return Stimulus.objects.create(
            study=study, scene=scene, source=source, pool=pool, image=ContentFile(png, name="upload.png")
        )

    stimuli = {(source, scene): stimulus(scene, source) for scene in SCENES for source in ("real", "alpha", "beta")}
    stimuli["gamma", "s1"] = stimulus("s1", "gamma")
    stimuli["real", PRACTICE_SCENE] = stimulus(PRACTICE_SCENE, "real", Pool.PRACTICE)
    stimuli[CATCH, CATCH_SCENE] = stimulus(CATCH_SCENE, CATCH, Pool.CATCH)
    participants = {}
    for index, (key, (group, label, expertise, answers)) in enumerate(votes.items()):
        participant = Participant.objects.create(study=study, label=label, group=group, expertise=expertise)
        participants[key] = participant
        trials = [(Trial.Kind.SCORED, (source, scene), answer) for source, scene, answer in answers]
        if key in OTHER_TRIALS:
            before, kind, cell, answer = OTHER_TRIALS[key]
            trials.insert(before, (kind, cell, answer))
        for position, (kind, cell, answer) in enumerate(trials, start=1):
            Trial.objects.create(
                participant=participant,
                kind=kind,
                position=position,
                stimulus=stimuli[cell],
                answer=answer,
                response_ms=1000 + 10 * position,
                answered_at=START + dt.timedelta(minutes=index, seconds=position),
            )
    if "c2" in participants:
        Trial.objects.create(participant=participants["c2"], position=5, stimulus=stimuli["real", "s5"])
    return study, participants


def wilson_by_formula(k, n, confidence=0.95):
    """The Wilson score interval written out: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def d_prime_by_formula(hits, n_signal, false_alarms, n_noise):
    """d' with the log-linear correction: z((h + .5) / (n + 1)) - z((f + .5) / (m + 1))."""
    return norm.ppf((hits + 0.5) / (n_signal + 1)) - norm.ppf((false_alarms + 0.5) / (n_noise + 1))

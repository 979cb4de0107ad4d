"""Study protocols: what a trial shows, how trials are assigned, how an answer is scored, what a bot answers.

A protocol is one module in this package that subclasses Protocol and registers an instance with
register_protocol; Study.protocol names it. Adding one touches no other module: the views, the assignment
(turing.participant.enrollment), the report and the bots ask the study's protocol through this interface.

Every protocol stores an answer as what the trial's stimulus was judged: "real" or "generated". For a
single image that is the participant's button; for a pair (2afc) it is whether they picked the generated
image as the real one. So a model's fooling rate is the share of its trials answered "real" under every
protocol, and the report's statistics need no per-protocol branch.

Protocols act on the model instances they are handed and import no model at run time (only for their type
hints): turing.models asks them to check a study's settings (Study.clean), so they depend on it only one way.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import random
from collections import defaultdict
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from turing.vocabulary import ANSWER_CHOICES, GENERATED, REAL

if TYPE_CHECKING:
    from turing.models import Stimulus, Study, Trial

_REGISTRY: dict[str, Protocol] = {}


class Protocol:
    """The behaviour of Study.protocol = name. The defaults are the single-image protocol's."""

    name = ""
    label = ""
    # What a trial page is rendered with, and the join page's instructions (None: the single-image ones).
    trial_template = "turing/trial.html"
    join_template: str | None = None
    # A stylesheet of the protocol's own (a static path), for its join, trial and feedback pages.
    stylesheet: str | None = None
    # report_sections reads the study's long votes table (a second read of every vote: only when it does).
    reports_from_votes = False
    # The values the vote form accepts (the buttons' values), with labels.
    answer_choices = list(ANSWER_CHOICES)
    # The answer buttons come in an order drawn per participant (Participant.button_order); trial.html shows them so.
    draws_button_order = True
    # A trial shows a real photo and a colorization of one scene side by side (the audit compares their files).
    shows_pairs = False
    # A model's score is the share of its images judged real, which turing.report.leaderboard pools over studies.
    scores_by_rate = True

    def clean_study(self, study: Study) -> None:
        """Refuse (ValidationError by field) or complete a study's settings for this protocol."""

    def reports_hype_infinity(self, study: Study) -> bool:
        """Whether the report gives HYPE∞ per model (Zhou et al. 2019): the mean of the error rates on a model's
        images and on the treatment group's real photos, each judged on its own, with no exposure the protocol
        adapts."""
        return self.real_fraction(study) > 0

    def exposure_ms(self, study: Study, trials: list[Trial], trial: Trial) -> int | None:
        """How long trial's image is shown, in ms (None: no limit); trials: the participant's, in order, with
        the answers given so far."""
        return study.exposure_ms

    def real_fraction(self, study: Study) -> float:
        """Share of a treatment participant's scored trials whose stimulus is a real photo."""
        return study.real_fraction

    def models_for(self, models: list[str], stimuli: list[Stimulus], rng) -> list[str]:
        """The models a treatment participant's scored trials are spread over (stimuli: the scored pool, each
        with .times_shown)."""
        return models

    def scored_candidates(self, stimuli: list[Stimulus]) -> list[Stimulus]:
        """The scored-pool stimuli a scored trial may show."""
        return stimuli

    def pick_practice(self, stimuli: list[Stimulus], rng: random.Random) -> list[Stimulus]:
        """The practice trials' stimuli, from the practice pool: one per practice scene, in random order, about
        half real and half generated."""
        by_scene: defaultdict[str, dict[str, Stimulus]] = defaultdict(dict)
        for stimulus in stimuli:
            by_scene[stimulus.scene][stimulus.source] = stimulus
        scenes = sorted(by_scene)
        rng.shuffle(scenes)
        n_generated = len(scenes) // 2 + (len(scenes) % 2 and rng.random() < 0.5)
        wants_generated = [True] * n_generated + [False] * (len(scenes) - n_generated)
        rng.shuffle(wants_generated)
        practice = []
        for scene, generated in zip(scenes, wants_generated):
            models = sorted(source for source in by_scene[scene] if source != REAL)
            source = rng.choice(models) if generated and models else REAL
            practice.append(by_scene[scene][source])
        return practice

    def prepare_trials(self, trials: list[Trial], stimuli: list[Stimulus], rng: random.Random) -> None:
        """Fill in what this protocol stores on new trials beyond kind, position and stimulus (before insert)."""

    def images(self, trial: Trial) -> list[Stimulus]:
        """The stimuli a trial shows, in screen order (left to right); the first is served at image_token."""
        return [trial.stimulus]

    def image_tokens(self, trial: Trial) -> list[str]:
        return [trial.image_token]

    def stored_answer(self, trial: Trial, posted: str) -> str:
        """The answer to store (REAL or GENERATED: what trial.stimulus was judged) for a posted button value."""
        return posted

    def posted_answer(self, trial: Trial, judged_real: bool) -> str:
        """The button a participant presses who judges trial.stimulus real (judged_real) or not: for bots."""
        return REAL if judged_real else GENERATED

    def truth(self, trial: Trial) -> str:
        """Practice feedback: what the right answer was, as text (escaped when shown) or as safe HTML."""
        truth = "a real photograph" if trial.stimulus.is_real else "generated by a computer"
        return f"That image was {truth}."

    def trial_data(self, trial: Trial) -> dict:
        """Extra entries of a trial's page data (participant.js reads them)."""
        return {}

    def report_sections(self, votes) -> list:
        """The report's sections of this protocol alone (turing.sections.Section), shown before the rates,
        from the study's scored votes (turing.report.data.votes_frame)."""
        return []


def register_protocol(protocol: Protocol) -> Protocol:
    if protocol.name in _REGISTRY:
        raise ValueError(f"protocol {protocol.name!r} is registered twice")
    _REGISTRY[protocol.name] = protocol
    return protocol


@functools.cache
def _load() -> None:
    # Every module of this package registers its protocol on import; once per process, since protocol_of runs
    # on every participant request.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def protocol_names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get_protocol(name: str) -> Protocol:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValidationError({"protocol": f"unknown protocol {name!r}"}) from None


def protocol_of(study: Study) -> Protocol:
    return get_protocol(study.protocol)

"""Simulated studies: votes drawn from a model in which people and images differ, for the power planner and
the calibration benchmark. Plain numpy and pandas, no Django.

The model (logit scale): participant i answers "real" for image j of source s with probability
expit(mu_s + a_i + b_j), a_i ~ N(0, participant_sd), b_j ~ N(0, image_sd), every image (stimulus) its own
b_j. mu_s is set so that the population rate, the mean of that probability over people and images, is the
rate asked for: that average is what a study's rate estimates. Each participant judges distinct scenes
(a scene is never repeated), drawn at random, and sees each source on its own scenes, as in
turing.participant.enrollment: ``real_trials`` reals and ``trials_per_model`` images of every model.

Informative dropout (``dropout``): after each answered trial a participant leaves with probability
2 * dropout * expit(a_i), dropout itself for one with no lean (a_i = 0), more for one who leans to "real". Their
trials then come in a random order, so the trials they answered are a random part of their plan. The
population rate is still the mean over people (all who start) and images: what the per-person rate
estimates, where the per-vote rate drifts towards the people who stayed.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from turing.vocabulary import CONTROL, REAL, TREATMENT

# Gauss-Hermite nodes for E[expit(mu + sd * Z)], Z standard normal.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def population_rate(mu, sd):
    """E[expit(mu + sd * Z)] for Z ~ N(0, 1)."""
    return float(special.expit(mu + sd * _NODES) @ _WEIGHTS)


def logit_mean(rate, sd):
    """mu such that population_rate(mu, sd) == rate (0 < rate < 1)."""
    if not 0 < rate < 1:
        raise ValueError(f"a rate must lie strictly between 0 and 1, got {rate}")
    return optimize.brentq(lambda mu: population_rate(mu, sd) - rate, -40, 40, xtol=1e-12)


@dataclass(frozen=True)
class Design:
    """What a simulated study looks like. ``rates`` maps each source (REAL and the models) to its population
    rate of being judged real; ``control_participants`` see reals only."""

    participants: int
    scenes: int
    rates: dict
    trials_per_model: int
    real_trials: int = 0
    control_participants: int = 0
    participant_sd: float = 0.0
    image_sd: float = 0.0
    dropout: float = 0.0
    models: tuple = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(sorted(s for s in self.rates if s != REAL)))
        needed = self.real_trials + self.trials_per_model * len(self.models)
        if needed > self.scenes:
            raise ValueError(f"each participant needs {needed} distinct scenes and the design has {self.scenes}")
        if (self.real_trials or self.control_participants) and REAL not in self.rates:
            raise ValueError("real trials need a rate for the real images")
        if not 0 <= self.dropout <= 0.5:
            raise ValueError(
                f"dropout is a probability per trial of at most 0.5 (twice it must stay <= 1), got {self.dropout}"
            )


def simulate_votes(design, rng):
    """One simulated study's scored votes as a votes table (participant, group, source, scene, stimulus,
    answer, correct), in the long format that turing.analysis.statistics takes."""
    sd = np.hypot(design.participant_sd, design.image_sd)
    mu = {source: logit_mean(rate, sd) for source, rate in design.rates.items()}
    sources = list(design.rates)
    image_offset = rng.normal(0, design.image_sd, size=(len(sources), design.scenes))
    treatment_plan = [REAL] * design.real_trials + [m for m in design.models for _ in range(design.trials_per_model)]
    plans = [(TREATMENT, treatment_plan)] * design.participants + [
        (CONTROL, [REAL] * (design.real_trials + design.trials_per_model * len(design.models)))
    ] * design.control_participants
    n_trials = len(treatment_plan)
    n_people = len(plans)
    # Each participant's scenes: the first n_trials of a random permutation, without a Python loop.
    scenes = np.argsort(rng.random((n_people, design.scenes)), axis=1)[:, :n_trials]
    source_codes = np.array([[sources.index(s) for s in plan] for _, plan in plans])
    participant_offset = rng.normal(0, design.participant_sd, size=n_people)
    logits = (
        np.array([mu[s] for s in sources])[source_codes]
        + participant_offset[:, None]
        + image_offset[source_codes, scenes]
    )
    judged_real = rng.random(logits.shape) < special.expit(logits)
    answered = np.full(n_people, n_trials)
    if design.dropout:
        # Drawn after the votes, so that a design without dropout draws the same studies as before it existed.
        order = np.argsort(rng.random((n_people, n_trials)), axis=1)
        source_codes, scenes, judged_real = (
            np.take_along_axis(trials, order, axis=1) for trials in (source_codes, scenes, judged_real)
        )
        leaving = 2 * design.dropout * special.expit(participant_offset)
        answered = np.minimum(n_trials, rng.geometric(leaving))
    kept = (np.arange(n_trials) < answered[:, None]).ravel()
    source = np.array(sources)[source_codes].ravel()[kept]
    judged_real = judged_real.ravel()[kept]
    return pd.DataFrame(
        {
            "participant": np.repeat(np.arange(n_people), answered),
            "group": np.repeat([group for group, _ in plans], answered),
            "source": source,
            "scene": scenes.ravel()[kept],
            "stimulus": (source_codes.ravel() * design.scenes + scenes.ravel())[kept],
            "answer": np.where(judged_real, REAL, "generated"),
            "correct": judged_real == (source == REAL),
        }
    )

"""Simulated studies: votes drawn from a model in which people and images differ, for the power planner and
the calibration benchmark. Plain numpy and pandas, no Django.

The model (logit scale): participant i answers "real" for image j of source s, showing scene c, with
probability expit(mu_s + a_i + b_j + g_c +- k_i), where
- a_i ~ N(0, participant_sd) is a response bias: the person leans to "real" on every image;
- b_j ~ N(0, image_sd) is the image's own convincingness, every image (stimulus) its own b_j;
- g_c ~ N(0, scene_sd) is the scene's, shared by its real photo and all its colorizations (a dull, grey scene
  passes as a photo whichever version is shown);
- k_i ~ N(0, skill_sd) is a skill, not a bias: added on real photos and subtracted on generated images, so a
  skilled person answers "real" more often on reals and less often on fakes (their d' is higher), where a
  bias moves both the same way.
mu_s is set so that the population rate, the mean of that probability over people and images, is the
rate asked for: that average is what a study's rate estimates. Each participant judges distinct scenes
(a scene is never repeated), drawn at random, and sees each source on its own scenes, as in
turing.participant.enrollment: ``real_trials`` reals and ``trials_per_model`` images of every model.

Two-alternative forced choice (``pairs``, turing.protocols.two_afc): each trial shows a model's image beside
its scene's real photo, and the vote is "real" when the colorization was picked. The probability above is
then that of picking it, plus +-(side_bias + e_i) where it is on the left (+) or the right (-), e_i ~
N(0, side_sd): a person who leans to the left image. As the protocol does, sides are balanced per participant
and model (half left, half right; an odd trial's side drawn at random), so a side bias adds noise but does not
move a rate; the population rate is the mean over both sides. The votes carry generated_side (left, right) as
the report's do.

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

from turing.vocabulary import CONTROL, LEFT, REAL, RIGHT, TREATMENT

# Gauss-Hermite nodes for E[expit(mu + sd * Z)], Z standard normal.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def population_rate(mu, sd, shifts=(0.0,)):
    """E[expit(mu + shift + sd * Z)] for Z ~ N(0, 1), averaged over ``shifts`` taken equally often."""
    shifts = np.asarray(shifts, dtype=float)
    return float((special.expit(mu + shifts[:, None] + sd * _NODES) @ _WEIGHTS).mean())


def logit_mean(rate, sd, shifts=(0.0,)):
    """mu such that population_rate(mu, sd, shifts) == rate (0 < rate < 1)."""
    if not 0 < rate < 1:
        raise ValueError(f"a rate must lie strictly between 0 and 1, got {rate}")
    return optimize.brentq(lambda mu: population_rate(mu, sd, shifts) - rate, -40, 40, xtol=1e-12)


@dataclass(frozen=True)
class Design:
    """What a simulated study looks like. ``rates`` maps each source (REAL and the models) to its population
    rate of being judged real; ``control_participants`` see reals only. The spreads are the module docstring's
    (logit scale); ``pairs`` makes it a 2AFC study, with ``side_bias`` and ``side_sd``."""

    participants: int
    scenes: int
    rates: dict
    trials_per_model: int
    real_trials: int = 0
    control_participants: int = 0
    participant_sd: float = 0.0
    image_sd: float = 0.0
    dropout: float = 0.0
    skill_sd: float = 0.0
    scene_sd: float = 0.0
    pairs: bool = False
    side_bias: float = 0.0
    side_sd: float = 0.0
    models: tuple = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(sorted(s for s in self.rates if s != REAL)))
        needed = self.real_trials + self.trials_per_model * len(self.models)
        if needed > self.scenes:
            raise ValueError(f"each participant needs {needed} distinct scenes and the design has {self.scenes}")
        if self.pairs and (REAL in self.rates or self.real_trials or self.control_participants):
            raise ValueError(
                "a 2AFC design (pairs) judges models' images, each beside its real photo: it takes no real rate, "
                "real trials or control participants"
            )
        if (self.real_trials or self.control_participants) and REAL not in self.rates:
            raise ValueError("real trials need a rate for the real images")
        if not 0 <= self.dropout <= 0.5:
            raise ValueError(
                f"dropout is a probability per trial of at most 0.5 (twice it must stay <= 1), got {self.dropout}"
            )
        if (self.side_bias or self.side_sd) and not self.pairs:
            raise ValueError("a side bias needs pairs: only a 2AFC trial shows two images side by side")

    @property
    def spread(self):
        """The sd of the sum of the random logit offsets one vote draws."""
        return float(np.linalg.norm([self.participant_sd, self.image_sd, self.scene_sd, self.skill_sd, self.side_sd]))

    @property
    def shifts(self):
        """The fixed logit shifts a vote gets, taken equally often: +-side_bias in a 2AFC design."""
        return (self.side_bias, -self.side_bias) if self.pairs else (0.0,)

    def logit_means(self):
        """mu_s per source, such that each source's population rate is the one asked for."""
        return {source: logit_mean(rate, self.spread, self.shifts) for source, rate in self.rates.items()}


def simulate_votes(design, rng):
    """One simulated study's scored votes as a votes table (participant, group, source, scene, stimulus,
    answer, correct), in the long format that turing.analysis.statistics takes."""
    mu = design.logit_means()
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
    # Drawn only when asked for, so that a design without them draws the same studies as before they existed.
    if design.scene_sd:
        logits += rng.normal(0, design.scene_sd, size=design.scenes)[scenes]
    if design.skill_sd:
        towards_truth = np.array([1 if source == REAL else -1 for source in sources])[source_codes]
        logits += towards_truth * rng.normal(0, design.skill_sd, size=n_people)[:, None]
    side = _generated_sides(design, n_people, rng) if design.pairs else None
    if side is not None:
        logits += side * (design.side_bias + rng.normal(0, design.side_sd, size=n_people)[:, None])
    judged_real = rng.random(logits.shape) < special.expit(logits)
    answered = np.full(n_people, n_trials)
    if design.dropout:
        # Drawn after the votes, so that a design without dropout draws the same studies as before it existed.
        order = np.argsort(rng.random((n_people, n_trials)), axis=1)
        source_codes, scenes, judged_real = (
            np.take_along_axis(trials, order, axis=1) for trials in (source_codes, scenes, judged_real)
        )
        if side is not None:
            side = np.take_along_axis(side, order, axis=1)
        leaving = 2 * design.dropout * special.expit(participant_offset)
        answered = np.minimum(n_trials, rng.geometric(leaving))
    kept = (np.arange(n_trials) < answered[:, None]).ravel()
    source = np.array(sources)[source_codes].ravel()[kept]
    judged_real = judged_real.ravel()[kept]
    votes = pd.DataFrame(
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
    if side is not None:
        votes["generated_side"] = np.where(side.ravel()[kept] > 0, LEFT, RIGHT)
    return votes


def _generated_sides(design, n_people, rng):
    """+1 where the generated image is on the left, -1 on the right, per participant and trial (the treatment
    plan: each model's trials in a block): half of each model's trials on each side, an odd one's side drawn."""
    per_model = design.trials_per_model
    block = np.where(np.arange(per_model) % 2 == 0, 1, -1)
    sides = np.tile(block, (n_people, len(design.models)))
    if per_model % 2:
        sides[:, per_model - 1 :: per_model] = rng.choice([-1, 1], size=(n_people, len(design.models)))
    return sides

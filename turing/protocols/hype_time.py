"""HYPE-time (Zhou et al. 2019, "HYPE: A Benchmark for Human eYe Perceptual Evaluation of Generative Models",
NeurIPS; stanfordhci.github.io/gen-eval): single images, real or generated, each shown for an exposure that
adapts to the participant, followed by a noise mask so that the image cannot linger on the retina.

The staircase, per participant (what is used, and where it comes from):
- exposures within 100-1000 ms, starting at 500 ms, shorter after correct answers and longer after an
  error (the project's notes on the paper, /work/shared/references/human-evaluation.md);
- shorter after THREE correct answers in a row, longer after ONE error: the paper's 3-up/1-down staircase
  as we recall it (unverified against the paper). A transformed up-down staircase converges where
  P(three right in a row) = 1/2, about 79% correct (Levitt 1971, "Transformed up-down methods in
  psychoacoustics", JASA 49(2)); a 1-up/1-down rule would converge at 50% correct, which in a real-or-
  generated task is guessing, and would drive every exposure to the floor. CORRECT_IN_A_ROW changes it;
- a step of STEP_MS (an assumption: the notes give no step size);
- only scored trials move the staircase; practice is shown at the start exposure, and attention checks at
  the current exposure without moving it.

Each treatment participant judges one model's images and real photos, as each of the paper's evaluators
judged one model: the model the fewest scored trials have shown so far. A participant's threshold is the
mean exposure asked over the second half of their scored trials, where the staircase has converged; the
model's HYPE-time score is the mean threshold of its participants, in ms: the longer, the longer people need
to tell the model's images from real photos. Its 95% interval counts the participants sampled (the paper
bootstraps over evaluators; here turing.analysis.crossed's closed-form variance of the same resampling, with t
quantiles); the images enter each threshold through the staircase and are not resampled apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from turing.analysis import crossed
from turing.protocols import Protocol, register_protocol
from turing.vocabulary import REAL, SCORED

if TYPE_CHECKING:
    from turing.models import Stimulus, Study, Trial
from turing.sections import CI, NUM, Column, Mark, Section

START_MS, MIN_MS, MAX_MS = 500, 100, 1000
STEP_MS = 50
CORRECT_IN_A_ROW = 3
# Fewest scored trials a participant needs for their threshold to mean anything: the staircase must be able to
# travel from the start to the floor within the first half, which takes CORRECT_IN_A_ROW correct answers per
# step (8 steps, 24 answers; 48 trials). With fewer the threshold leans towards START_MS whatever people can
# see. Measured (30 simulated participants, Weibull psychometric functions, true thresholds at the 79% point
# ~ N(mu, 60 ms), 200 studies per row; coverage of mu by the 95% interval): 20 trials, mu = 200 ms: score
# +92 ms off, coverage 0.00; mu = 700 ms: -81 ms, 0.00; mu = 350: 0.12. 40 trials: 0.85 / 0.47 (mu 200 / 700).
# 60 trials: 0.94 / 0.92; 100 trials: 0.93-0.96 for mu 200-700. So the interval is withheld below this.
MIN_TRIALS = 2 * CORRECT_IN_A_ROW * (START_MS - MIN_MS) // STEP_MS


def staircase(correct: list[bool]) -> int:
    """The exposure after these answers (True: correct), in order."""
    exposure, streak = START_MS, 0
    for right in correct:
        if right:
            streak += 1
            if streak == CORRECT_IN_A_ROW:
                exposure, streak = max(exposure - STEP_MS, MIN_MS), 0
        else:
            exposure, streak = min(exposure + STEP_MS, MAX_MS), 0
    return exposure


class HypeTime(Protocol):
    name = "hype-time"
    label = "HYPE-time (Zhou et al. 2019): real or generated, adaptive exposure with a noise mask"
    join_template = "turing/protocols/join_hype_time.html"
    reports_from_votes = True
    # Its score is an exposure threshold; its rates pool every exposure the staircase set.
    scores_by_rate = False

    def reports_hype_infinity(self, study: Study) -> bool:
        # HYPE∞ is HYPE-time's counterpart without a time limit, which the staircase's exposures are not.
        return False

    def clean_study(self, study: Study) -> None:
        if study.control_fraction:
            raise ValidationError(
                {"control_fraction": "a hype-time study has no control group: each staircase runs over one model"}
            )
        if study.exposure_ms is not None:
            raise ValidationError(
                {"exposure_ms": f"a hype-time study sets each exposure itself ({MIN_MS}-{MAX_MS} ms); leave it empty"}
            )

    def exposure_ms(self, study: Study, trials: list[Trial], trial: Trial) -> int | None:
        if trial.practice:
            return START_MS
        before = [t for t in trials if t.position < trial.position and t.kind == SCORED and t.answer]
        return staircase([bool(t.correct) for t in before])

    def models_for(self, models: list[str], stimuli: list[Stimulus], rng) -> list[str]:
        if not models:
            return models
        shown = {model: 0 for model in models}
        for stimulus in stimuli:
            if stimulus.source in shown:
                shown[stimulus.source] += stimulus.times_shown  # type: ignore[attr-defined]  # from ViewCounts
        fewest = min(shown.values())
        return [rng.choice([model for model in models if shown[model] == fewest])]

    def trial_data(self, trial: Trial) -> dict:
        return {"mask": True}

    def report_sections(self, votes) -> list[Section]:
        """Each model's HYPE-time with its interval, or why it has none (hype_time_table)."""
        return [
            Section(
                "HYPE-time per model",
                name="protocol-hype-time",
                columns=[
                    Column("Model"),
                    Column("Participants", NUM),
                    Column("HYPE-time (ms)", NUM),
                    Column("95% interval (ms)", CI),
                    Column("Same answer to every image", NUM),
                ],
                rows=[
                    [
                        row.model,
                        row.participants,
                        Mark("strong", f"{row.hype_time_ms:.0f}"),
                        _interval(row),
                        row.one_answer,
                    ]
                    for row in hype_time_table(votes).itertuples()
                ],
                empty="No staircase has run yet.",
                notes=[
                    format_html(
                        "Each participant judged one model's images and real photos, each image shown for an exposure "
                        "that a staircase set ({}–{} ms, from {} ms; {} ms shorter after {} correct answers in "
                        "a row, {} ms longer after an error, converging near 79% correct), with a noise mask after it "
                        "(Zhou et al. 2019). A participant's threshold is the mean exposure over the second half of "
                        "their scored trials; a model's HYPE-time is the mean threshold of its participants: "
                        "<strong>the longer, the longer people needed to tell its images from real photos</strong>. "
                        "The interval is over participants (t quantiles, turing.analysis.crossed); the images enter "
                        "each threshold through the staircase and are not resampled on their own. The fooling rates "
                        "below pool all exposures. A participant who gave the same answer to every image is wrong on "
                        "every real photo (or every generated one), so their staircase climbs towards {} ms whatever "
                        "they saw, as for a model that fools them completely, and one who always answered "
                        '"generated" passes every attention check: their count is in the last column.',
                        MIN_MS,
                        MAX_MS,
                        START_MS,
                        STEP_MS,
                        CORRECT_IN_A_ROW,
                        STEP_MS,
                        MAX_MS,
                    )
                ],
            )
        ]


def _interval(row) -> str:
    if row.short:
        return (
            f"withheld: {row.short} participants had under {MIN_TRIALS} scored trials, too few for the staircase to "
            f"settle (the score leans towards {START_MS} ms)"
        )
    if np.isnan(row.ci_low):
        return "needs two participants"
    return f"{row.ci_low:.0f} – {row.ci_high:.0f}"


def participant_thresholds(votes: pd.DataFrame) -> pd.DataFrame:
    """One row per treatment participant with an exposure on record: participant, model (the generated source
    they judged), trials, threshold_ms (mean asked exposure over the second half of their scored trials),
    one_answer (they gave the same answer to every scored image)."""
    scored = votes[(votes["kind"] == SCORED) & votes["exposure_ms"].notna()]
    rows = []
    for participant, own in scored.sort_values("position").groupby("participant", sort=True):
        models = sorted(set(own["source"]) - {REAL})
        if len(models) != 1:
            continue
        second_half = own["exposure_ms"].to_numpy(dtype=float)[len(own) // 2 :]
        rows.append(
            {
                "participant": participant,
                "model": models[0],
                "trials": len(own),
                "threshold_ms": second_half.mean(),
                # Frames of exposures alone (no answers) have no such participant.
                "one_answer": "answer" in own and own["answer"].nunique() == 1,
            }
        )
    return pd.DataFrame(rows, columns=["participant", "model", "trials", "threshold_ms", "one_answer"])


def hype_time_table(votes: pd.DataFrame) -> pd.DataFrame:
    """Per model: participants, HYPE-time (their mean threshold, ms), its 95% interval (ci_low, ci_high; NaN with
    fewer than two participants, or when any participant had fewer than MIN_TRIALS scored trials), short (how
    many participants had fewer than MIN_TRIALS: their staircase cannot have settled, see MIN_TRIALS) and
    one_answer: how many of the participants gave the same answer to every image. Such a participant is wrong on
    every real photo (or every generated image), so their staircase climbs to MAX_MS whatever they saw, like
    someone the model fools completely, and one who always answers "generated" passes every attention check;
    the report names their count beside the score."""
    thresholds = participant_thresholds(votes)
    columns = ["model", "participants", "hype_time_ms", "ci_low", "ci_high", "short", "one_answer"]
    if thresholds.empty:
        return pd.DataFrame(columns=columns)
    model_code, models = pd.factorize(thresholds["model"], sort=True)
    counts = np.bincount(model_code, minlength=len(models))
    means = np.bincount(model_code, weights=thresholds["threshold_ms"], minlength=len(models)) / counts
    influence = (thresholds["threshold_ms"].to_numpy() - means[model_code]) / counts[model_code]
    # Participants are the one sampled factor, each giving one threshold.
    squares = np.bincount(model_code, weights=influence**2, minlength=len(models))
    variance, df = crossed.one_factor_variance(squares, counts)
    low, high = crossed.wald_interval(means, variance, df)
    short = np.bincount(model_code, weights=thresholds["trials"] < MIN_TRIALS, minlength=len(models)).astype(int)
    few = (counts < 2) | (short > 0)
    return pd.DataFrame(
        {
            "model": list(models),
            "participants": counts,
            "hype_time_ms": means,
            "ci_low": np.where(few, np.nan, low),
            "ci_high": np.where(few, np.nan, high),
            "short": short,
            "one_answer": np.bincount(
                model_code, weights=thresholds["one_answer"].astype(float), minlength=len(models)
            ).astype(int),
        }
    )[columns]


register_protocol(HypeTime())

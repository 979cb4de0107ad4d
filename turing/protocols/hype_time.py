"""HYPE-time (Zhou et al. 2019, "HYPE: A Benchmark for Human eYe Perceptual Evaluation of Generative Models",
NeurIPS; stanfordhci.github.io/gen-eval): single images, real or generated, each shown for an exposure that
adapts to the participant, followed by a noise mask so that the image cannot linger on the retina.

The staircase (turing.analysis.staircase, with what was and was not checked against the paper): 100-1000 ms
from 500 ms, 50 ms shorter after three correct answers in a row, 50 ms longer after an error, converging near
79.4% correct. Only scored trials move it; practice is shown at the start exposure, and attention checks at the
current exposure without moving it.

Each treatment participant judges one model's images and real photos, as each of the paper's evaluators
judged one model: the model the fewest scored trials have shown so far. The score (turing.analysis.
exposure_thresholds): a participant's threshold is their exposure at 79.4% correct, a Weibull psychometric
function fitted to all their scored trials (turing.analysis.psychometric); a model's HYPE-time is the mean
threshold of its participants, in ms: the longer, the longer people need to tell the model's images from real
photos. Its 95% interval counts the participants and the images (turing.analysis.crossed). Beside it, the
paper's own statistic: the mean over participants of the exposure each was shown most often (modal_ms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from turing.analysis.exposure_thresholds import MIN_TRIALS, hype_time_table
from turing.analysis.staircase import (
    CORRECT_IN_A_ROW,
    MAX_MS,
    MIN_MS,
    START_MS,
    STEP_MS,
    TARGET_ACCURACY,
    staircase,
)
from turing.protocols import Protocol, register_protocol
from turing.vocabulary import SCORED

if TYPE_CHECKING:
    from turing.models import Stimulus, Study, Trial
from turing.sections import CI, MUTED, NUM, Column, Mark, Section


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
        """Each model's HYPE-time with its interval, or why it has none, and the paper's modal exposure beside it
        (hype_time_table)."""
        return [
            Section(
                "HYPE-time per model",
                name="protocol-hype-time",
                columns=[
                    Column("Model"),
                    Column("Participants", NUM),
                    Column("HYPE-time (ms)", NUM),
                    Column("95% interval (ms)", CI),
                    Column("Modal exposure (ms, the paper's)", f"{NUM} {MUTED}"),
                    Column("Same answer to every image", NUM),
                ],
                rows=[
                    [
                        row.model,
                        row.participants,
                        Mark("strong", f"{row.hype_time_ms:.0f}"),
                        _interval(row),
                        f"{row.modal_ms:.0f}",
                        row.one_answer,
                    ]
                    for row in hype_time_table(votes).itertuples()
                ],
                empty="No staircase has run yet.",
                notes=[
                    format_html(
                        "Each participant judged one model's images and real photos, each shown for an exposure that "
                        "a staircase set ({}–{} ms, from {} ms; {} ms shorter after {} correct answers in a row, {} ms "
                        "longer after an error), with a noise mask after it (Zhou et al. 2019). A participant's "
                        "threshold is the exposure at which they answer {} of the images correctly, where the "
                        "staircase converges: a Weibull psychometric function fitted to all their scored trials, a "
                        "model's participants fitted together (turing.analysis.psychometric); a threshold beyond the "
                        "exposures shown counts as the nearest one. A model's HYPE-time is the mean threshold of its "
                        "participants: <strong>the longer, the longer people needed to tell its images from real "
                        "photos</strong>. The interval counts the participants and the images (turing.analysis."
                        "crossed). The modal exposure is the paper's statistic, the mean over participants of the "
                        "exposure each was shown most often, for comparison with published numbers; it depends on "
                        "the staircase's start and steps and is not a threshold at a stated accuracy. The fooling "
                        "rates below pool all exposures. A participant who gave the same answer to every image is "
                        "wrong on every real photo (or every generated one), so their staircase climbs towards {} ms "
                        "whatever they saw, as for a model that fools them completely, and one who always answered "
                        '"generated" passes every attention check: their count is in the last column.',
                        MIN_MS,
                        MAX_MS,
                        START_MS,
                        STEP_MS,
                        CORRECT_IN_A_ROW,
                        STEP_MS,
                        f"{TARGET_ACCURACY:.0%}",
                        MAX_MS,
                    )
                ],
            )
        ]


def _interval(row) -> str:
    if row.short:
        return f"withheld: {row.short} participants had under {MIN_TRIALS} scored trials (see below)"
    if np.isnan(row.ci_low):
        return "needs two participants"
    return f"{row.ci_low:.0f} – {row.ci_high:.0f}"


register_protocol(HypeTime())

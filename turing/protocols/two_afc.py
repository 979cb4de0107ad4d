"""Two-alternative forced choice, the colorization Turing test of Zhang, Isola & Efros 2016 ("Colorful Image
Colorization", ECCV, section 4.1; arXiv 1603.08511).

A trial shows the real photo and one model's colorization of the same scene side by side (stacked on a
phone held upright), left or right at random, for 1 s by default; then both are hidden and the participant
answers at leisure "Which one is the real photograph?". Practice pairs, with feedback, come from the
practice pool. The fooling rate is the share of pairs where the colorization was picked: 50% means people
cannot tell them apart.

Each trial's stimulus is the generated image and paired_stimulus the real photo; generated_side says where
the generated one was. The sides are balanced per participant and model (half left, half right, the odd
ones balanced among themselves, separately for practice and the rest), so that a side bias cannot raise or
lower a fooling rate.
The stored answer is what the colorization was judged: "real" when it was picked, so the report's
statistics are those of the single protocol with a model's trials (no real-photo rows; no control group,
which would have no colorizations to see, and no catch trials, whose scenes keep no real photo to pair).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from turing.protocols import Protocol, register_protocol
from turing.vocabulary import GENERATED, LEFT, REAL, RIGHT, SIDE_CHOICES

if TYPE_CHECKING:
    from turing.models import Stimulus, Study, Trial
from turing.sections import NUM, Column, Section
from turing.templatetags.pair_sides import side_words
from turing.templatetags.staff_format import percent

DEFAULT_EXPOSURE_MS = 1000


# What each side of a pair is called where the images stand beside each other, and where they are stacked (a
# phone held upright: two_afc.css).
class TwoAFC(Protocol):
    name = "2afc"
    label = "Two-alternative forced choice (Zhang et al. 2016): which one is the real photograph?"
    trial_template = "turing/protocols/trial_2afc.html"
    join_template = "turing/protocols/join_2afc.html"
    stylesheet = "turing/two_afc.css"
    reports_from_votes = True
    answer_choices = list(SIDE_CHOICES)
    # The buttons name the sides of the pair, left to right: their order is the images', balanced per trial.
    draws_button_order = False
    shows_pairs = True

    def clean_study(self, study: Study) -> None:
        errors = {}
        if study.control_fraction:
            errors["control_fraction"] = "a 2afc study has no control group: every pair shows a real photo"
        if study.catch_trials:
            errors["catch_trials"] = "a 2afc study has no attention checks yet: catch scenes keep no real photo to pair"
        if errors:
            raise ValidationError(errors)
        if study.exposure_ms is None:
            study.exposure_ms = DEFAULT_EXPOSURE_MS

    def real_fraction(self, study: Study) -> float:
        return 0.0

    def scored_candidates(self, stimuli: list[Stimulus]) -> list[Stimulus]:
        return [stimulus for stimulus in stimuli if not stimulus.is_real]

    def pick_practice(self, stimuli: list[Stimulus], rng: random.Random) -> list[Stimulus]:
        """One pair per practice scene, its model drawn at random."""
        models: dict[str, list[Stimulus]] = {}
        for stimulus in stimuli:
            if not stimulus.is_real:
                models.setdefault(stimulus.scene, []).append(stimulus)
        scenes = sorted(models)
        rng.shuffle(scenes)
        return [rng.choice(sorted(models[scene], key=lambda s: s.source)) for scene in scenes]

    def prepare_trials(self, trials: list[Trial], stimuli: list[Stimulus], rng: random.Random) -> None:
        reals = {stimulus.scene: stimulus for stimulus in stimuli if stimulus.is_real}
        for practice in (True, False):
            # Balanced within each model, not only over the participant's trials: balanced over all of them, a
            # participant who always picks the left image could still raise one model's rate and lower another's
            # (4 pairs of each of two models: 3 left of one model and 1 of the other in half the orders). Each
            # model's odd pair takes a side from a balanced list of its own, so the whole stays balanced too.
            by_model: dict[str, list[Trial]] = {}
            for trial in trials:
                if trial.practice == practice:
                    by_model.setdefault(trial.stimulus.source, []).append(trial)
            odd = [model for model in sorted(by_model) if len(by_model[model]) % 2]
            spare = [LEFT, RIGHT] * (len(odd) // 2) + ([rng.choice([LEFT, RIGHT])] if len(odd) % 2 else [])
            rng.shuffle(spare)
            spare_side = dict(zip(odd, spare))
            for model in sorted(by_model):
                group = by_model[model]
                sides = [LEFT, RIGHT] * (len(group) // 2) + ([spare_side[model]] if model in spare_side else [])
                rng.shuffle(sides)
                for trial, side in zip(group, sides):
                    trial.pair_with(reals[trial.stimulus.scene], side)

    def images(self, trial: Trial) -> list[Stimulus]:
        real = trial.paired_stimulus
        assert real is not None, "prepare_trials pairs every 2afc trial"
        return [trial.stimulus, real] if trial.generated_side == LEFT else [real, trial.stimulus]

    def image_tokens(self, trial: Trial) -> list[str]:
        assert trial.second_image_token is not None, "prepare_trials gives every 2afc trial a second token"
        return [trial.image_token, trial.second_image_token]

    def stored_answer(self, trial: Trial, posted: str) -> str:
        # The participant names the side they think is real.
        return REAL if posted == trial.generated_side else GENERATED

    def posted_answer(self, trial: Trial, judged_real: bool) -> str:
        other = RIGHT if trial.generated_side == LEFT else LEFT
        return trial.generated_side if judged_real else other

    def truth(self, trial: Trial) -> str:
        real_side = RIGHT if trial.generated_side == LEFT else LEFT
        return format_html("The real photograph was the {} one.", side_words(real_side))

    def trial_data(self, trial: Trial) -> dict:
        return {"keys": {"ArrowLeft": LEFT, "ArrowRight": RIGHT}}

    def report_sections(self, votes) -> list[Section]:
        """What a fooling rate means here, and the rate by side: a side bias shows as different rates on the left
        and on the right."""
        sides = votes[votes["generated_side"] != ""]
        by_side = sides.groupby("generated_side")["answer"].agg(votes="size", picked=lambda a: (a == REAL).sum())
        return [
            Section(
                "Two-alternative forced choice",
                name="protocol-2afc",
                lead=[
                    mark_safe(
                        "Each trial showed a model's colorization beside the real photo of the same scene. A model's "
                        "<em>fooling rate</em> below is the share of its pairs in which the colorization was picked "
                        "as the real photograph (Zhang et al. 2016): <strong>50% means people could not tell them "
                        "apart</strong>, and below 50% they could. The table of rates has no <code>real</code> rows: "
                        "every trial showed one. HYPE∞, d′ and the criterion need real photos judged on their own and "
                        "are not computed here."
                    )
                ],
                columns=[
                    Column("Colorization on the"),
                    Column("Pairs", NUM),
                    Column("Colorization picked (per vote)", NUM),
                ],
                rows=[[side, int(row.votes), percent(row.picked / row.votes)] for side, row in by_side.iterrows()],
                notes=[
                    mark_safe(
                        "Sides are balanced per participant and model, so a leaning towards one side moves these two "
                        "rates apart without moving the models' rates."
                    )
                ]
                if len(by_side)
                else [],
            )
        ]


register_protocol(TwoAFC())

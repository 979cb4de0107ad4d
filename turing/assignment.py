"""Which group a participant joins and which stimuli they judge, fixed and stored when they start.

Groups: permuted blocks. Participant k (0-based, in join order) falls in block k // size; each block holds
exactly round(size * control_fraction) control slots, shuffled with a generator seeded by the study's seed
and the block number. So the control share is exact after every full block and random within one.

Scored trials (treatment): round(n * real_fraction) real stimuli, the rest spread evenly over the models
(each model gets the same count, a remainder of one extra trial going to models drawn at random), at most
one stimulus per scene, in shuffled order. Control participants get n real stimuli. n is the study's
trials_per_participant, or the number of scenes when a study has fewer: a scene is never repeated. Within
each source the least-shown stimuli (Stimulus.times_assigned) are taken first, ties broken at random; all
sources are placed on scenes together, as one assignment problem (see pick_least_shown), so that no
source is left only the scenes the others did not want. A source without enough scenes of its own (a model
missing some scenes) leaves its remaining trials to the least-shown stimuli of other sources.

Practice trials (practice=True, not scored, times_assigned untouched): study.practice_trials stimuli, about
half real and half generated for both groups, from scenes that are not among the participant's scored
trials. A participant gets fewer practice trials when not enough such scenes are left, rather than
practising on a scored photo.

Randomness comes from random.Random seeded with (study.seed, participant ordinal), so the same seed and the
same order of joins give the same assignments.
"""

import random
from collections import defaultdict

import numpy as np
from django.db import transaction
from django.db.models import F
from scipy.optimize import linear_sum_assignment

from turing.models import REAL, Participant, Stimulus, Study, Trial

# Block sizes searched for the group blocks: small blocks keep the control share right even in a
# 20-person poster session; larger ones are needed for shares like 0.01.
MIN_BLOCK, MAX_BLOCK = 4, 100
BLOCK_SHARE_TOLERANCE = 0.02  # relative to the requested share
# Far above any sum of view-count costs: a source is placed on a scene it lacks only when unavoidable.
MISSING_SCENE_COST = 1e9

TREATMENT = Participant.Group.TREATMENT.value
CONTROL = Participant.Group.CONTROL.value


def group_block(control_fraction: float) -> tuple[int, int]:
    """(block size, control slots per block): the smallest block from MIN_BLOCK up whose control share
    round(size * f) / size is within 2% of f (MAX_BLOCK if none is): 0.25 -> (4, 1), 1/3 -> (6, 2),
    0.3 -> (10, 3), 0.15 -> (20, 3), 0.05 -> (20, 1)."""
    for size in range(MIN_BLOCK, MAX_BLOCK + 1):
        controls = round(size * control_fraction)
        if abs(controls / size - control_fraction) <= BLOCK_SHARE_TOLERANCE * control_fraction:
            return size, controls
    return MAX_BLOCK, round(MAX_BLOCK * control_fraction)


def assign_group(study: Study, ordinal: int | None = None) -> str:
    """"treatment" or "control" for the study's participant number ordinal (0-based, join order).

    ordinal defaults to the number of participants already in the study, i.e. the one about to join;
    call it inside the transaction that creates the participant (see enroll_participant).
    """
    if ordinal is None:
        ordinal = study.participants.count()
    size, controls = group_block(study.control_fraction)
    block, slot = divmod(ordinal, size)
    groups = [CONTROL] * controls + [TREATMENT] * (size - controls)
    random.Random(f"{study.seed}:block:{block}").shuffle(groups)
    return groups[slot]


def enroll_participant(study: Study, **participant_fields) -> Participant:
    """Create a participant in the next group slot and store all their trials, as one transaction."""
    with transaction.atomic():
        # Locking the study row serializes concurrent joins, so no two participants share a group
        # slot and each sees the times_assigned counts left by the one before.
        locked = Study.objects.select_for_update().get(pk=study.pk)
        participant = Participant.objects.create(study=locked, group=assign_group(locked), **participant_fields)
        assign_trials(participant)
    return participant


def assign_trials(participant: Participant) -> list[Trial]:
    """Create and return the participant's practice and scored trials (practice first, by position).

    Returns the existing trials unchanged if the participant already has some.
    """
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=participant.study_id)
        existing = list(participant.trials.select_related("stimulus"))
        if existing:
            return existing
        ordinal = study.participants.filter(pk__lt=participant.pk).count()
        rng = random.Random(f"{study.seed}:participant:{ordinal}")
        stimuli = list(study.stimuli.order_by("scene", "source"))
        n_scored = min(study.trials_per_participant, len({stimulus.scene for stimulus in stimuli}))
        if participant.group == CONTROL:
            quotas = {REAL: n_scored}
        else:
            quotas = treatment_quotas(n_scored, study.real_fraction, study.model_names, rng)
        scored = pick_least_shown(stimuli, quotas, rng)
        rng.shuffle(scored)
        practice = pick_practice(stimuli, study.practice_trials, {stimulus.scene for stimulus in scored}, rng)

        trials = [
            Trial(participant=participant, practice=True, position=position, stimulus=stimulus)
            for position, stimulus in enumerate(practice, start=1)
        ] + [
            Trial(participant=participant, practice=False, position=position, stimulus=stimulus)
            for position, stimulus in enumerate(scored, start=1)
        ]
        Trial.objects.bulk_create(trials)
        Stimulus.objects.filter(pk__in=[stimulus.pk for stimulus in scored]).update(
            times_assigned=F("times_assigned") + 1
        )
    return trials


def treatment_quotas(n: int, real_fraction: float, models: list[str], rng: random.Random) -> dict[str, int]:
    """Scored trials per source: round(n * real_fraction) real, the rest split evenly over models."""
    if not models:
        return {REAL: n}
    n_real = round(n * real_fraction)
    each, remainder = divmod(n - n_real, len(models))
    extra = set(rng.sample(models, remainder))
    return {REAL: n_real} | {model: each + (model in extra) for model in models}


def pick_least_shown(stimuli: list[Stimulus], quotas: dict[str, int], rng: random.Random) -> list[Stimulus]:
    """quotas[source] stimuli per source, at most one per scene, as few views above each source's least-shown
    stimulus as the one-per-scene rule allows.

    An assignment problem (scipy.optimize.linear_sum_assignment) of trial slots to scenes: placing a slot of
    source s on scene c shows s's stimulus of c and costs (its times_assigned - s's fewest) squared, so two
    stimuli one view above the minimum are preferred to one stimulus two views above. Random tie-breaks add
    less than one in total, so they never outweigh a view. A source lacking a scene may still be placed on
    it, at a prohibitive cost, showing the scene's cheapest stimulus of any source instead.
    """
    fewest = {}
    for stimulus in stimuli:
        fewest[stimulus.source] = min(fewest.get(stimulus.source, stimulus.times_assigned), stimulus.times_assigned)
    slots = [source for source in sorted(quotas) for _ in range(quotas[source])]
    tie_scale = 1.0 / (len(slots) + 1)
    cost = {
        stimulus.pk: (stimulus.times_assigned - fewest[stimulus.source]) ** 2 + tie_scale * rng.random()
        for stimulus in stimuli
    }
    by_cell = {(stimulus.source, stimulus.scene): stimulus for stimulus in stimuli}
    cheapest = {}
    for stimulus in stimuli:
        if stimulus.scene not in cheapest or cost[stimulus.pk] < cost[cheapest[stimulus.scene].pk]:
            cheapest[stimulus.scene] = stimulus
    scenes = sorted(cheapest)

    shown = {source: [by_cell.get((source, scene), cheapest[scene]) for scene in scenes] for source in quotas}
    costs = {
        source: [cost[s.pk] + (0.0 if s.source == source else MISSING_SCENE_COST) for s in shown[source]]
        for source in quotas
    }
    matrix = np.array([costs[source] for source in slots], dtype=float).reshape(len(slots), len(scenes))
    rows, columns = linear_sum_assignment(matrix)
    return [shown[slots[row]][column] for row, column in zip(rows, columns)]


def pick_practice(stimuli: list[Stimulus], count: int, excluded_scenes: set, rng: random.Random) -> list[Stimulus]:
    """Up to count stimuli from scenes outside excluded_scenes, about half real and half generated."""
    by_scene = defaultdict(dict)
    for stimulus in stimuli:
        if stimulus.scene not in excluded_scenes:
            by_scene[stimulus.scene][stimulus.source] = stimulus
    scenes = sorted(by_scene)
    rng.shuffle(scenes)
    scenes = scenes[:count]
    n_generated = len(scenes) // 2 + (len(scenes) % 2 and rng.random() < 0.5)
    wants_generated = [True] * n_generated + [False] * (len(scenes) - n_generated)
    rng.shuffle(wants_generated)
    practice = []
    for scene, generated in zip(scenes, wants_generated):
        models = sorted(source for source in by_scene[scene] if source != REAL)
        source = rng.choice(models) if generated and models else REAL
        practice.append(by_scene[scene][source])
    return practice

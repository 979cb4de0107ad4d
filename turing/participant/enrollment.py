"""Which group a participant joins and which stimuli they judge, fixed and stored when they start.

Everything here is derived from the trials and participants in the database, never from counters kept
beside them, so deleting participants (a test run, a withdrawn consent) leaves the balance right.
Persons and rehearsal bots are balanced separately: bots never move a person's group or image counts.

Groups: permuted blocks, derived from the participants there are. With block size s and c control slots
per block (group_block), n participants of a kind, and the last k = n mod s of them forming the current
block with m controls, the next one is a control with probability (c' - m) / (s - k): drawing the block's
slots one by one without replacement, which is a uniformly shuffled block when nobody is deleted. c' is c,
plus one while the participants before the current block have fewer controls than their blocks' quota (a
deletion took some), minus one while they have more: a deletion is repaid one control per block, so the
share returns to the target without ever sending a long run of joins into one group, which would confound
group with the time people joined.

Button order: the order of the two answer buttons (turing.vocabulary.BUTTON_ORDERS) is drawn per participant,
so that someone who favours the first (left, or top) button does not favour one answer. Each group of each kind
is balanced on its own, so that treatment against control compares like with like: the next participant gets
the order fewer of their group have, on a tie the order fewer of their kind have, and on a tie of both a
seeded coin toss. Like the groups, it is counted from the participants there are, so deletions are repaid.
Protocols whose buttons keep their own order (2afc: the sides) get none.

Scored trials (treatment): round(n * real_fraction) real stimuli, the rest spread evenly over the models
(each model gets the same count, a remainder of one extra trial going to models drawn at random), at most
one stimulus per scene, from the scored pool only. Control participants get n real stimuli. n is the
study's trials_per_participant, or the number of scored scenes when a study has fewer: a scene is never
repeated. Within each source the least-shown stimuli (scored trials of participants of the same kind)
are taken first, ties broken at random; all sources are placed on scenes together, as one assignment
problem (see pick_least_shown), so that no source is left only the scenes the others did not want. A
source without enough scenes of its own (a model missing some scenes) leaves its remaining trials to the
least-shown stimuli of other sources.

Practice trials: one per practice-pool scene, about half real and half generated, for both groups; they
come first and are the only trials with feedback. Catch trials: the study's catch_trials catch-pool
stimuli (obviously wrong colorizations, one per catch scene), the least-shown ones (catch trials of
participants of the same kind) with ties broken at random, mixed at random positions among the scored
trials. The import reserves CATCH_POOL_FACTOR (5) catch scenes per check (turing.models.catch_scenes_needed),
so handing them out least-shown first keeps every check image within one view of the others: after n joins
none has reached more than ceil(n / 5) participants, so throwaway joins find no image common to everybody's
checks. Deleting participants can leave an image above a fifth of those left until later joins even it out.
Catch scenes are never scored, so no participant meets a catch scene twice, nor its photo among their scored
trials.

The study's protocol (turing.protocols) may narrow this: which scored stimuli a trial can show (2afc: the
generated ones, each paired with its scene's real photo), the real share, the models a participant's
trials spread over (hype-time: one), the practice stimuli, and what else a new trial stores.

Randomness comes from random.Random seeded with the study's seed, the participant's kind and ordinal, so
the same seed and the same order of joins give the same assignments.
"""

import random
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from scipy.optimize import linear_sum_assignment

from turing.models import Participant, Pool, Stimulus, Study, Trial, model_names
from turing.participant.crowd import SeriesConflict, series_conflict, timed_out
from turing.protocols import protocol_of
from turing.vocabulary import BUTTON_ORDERS, CATCH, CONTROL, PERSON, REAL, TREATMENT

# Block sizes searched for the group blocks: small blocks keep the control share right even in a
# 20-person poster session; larger ones are needed for shares like 0.01.
MIN_BLOCK, MAX_BLOCK = 4, 100
BLOCK_SHARE_TOLERANCE = 0.02  # relative to the requested share
# Far above any sum of view-count costs: a source is placed on a scene it lacks only when unavoidable.
MISSING_SCENE_COST = 1e9
# The trials whose stimuli are handed out least-shown first: practice stimuli are shown to everyone.
BALANCED_KINDS = (Trial.Kind.SCORED, Trial.Kind.CATCH)


class StudyFull(Exception):
    """The study reached max_participants; nobody else may join."""


def group_block(control_fraction: float) -> tuple[int, int]:
    """(block size, control slots per block): the smallest block from MIN_BLOCK up whose control share
    round(size * f) / size is within 2% of f (MAX_BLOCK if none is): 0.25 -> (4, 1), 1/3 -> (6, 2),
    0.3 -> (10, 3), 0.15 -> (20, 3), 0.05 -> (20, 1)."""
    for size in range(MIN_BLOCK, MAX_BLOCK + 1):
        controls = round(size * control_fraction)
        if abs(controls / size - control_fraction) <= BLOCK_SHARE_TOLERANCE * control_fraction:
            return size, controls
    return MAX_BLOCK, round(MAX_BLOCK * control_fraction)


def next_group(study: Study, kind: str = PERSON) -> str:
    """ "treatment" or "control" for the next participant of this kind, from the participants there are now.

    Call it inside the transaction that creates the participant (see enroll_participant).
    """
    members = study.participants.filter(kind=kind)
    n = members.count()
    size, controls = group_block(study.control_fraction)
    in_block = n % size
    block_controls = list(members.order_by("-pk").values_list("group", flat=True)[:in_block]).count(CONTROL)
    controls_before = members.filter(group=CONTROL).count() - block_controls
    deviation = (n - in_block) // size * controls - controls_before
    owed = min(max(controls + (deviation > 0) - (deviation < 0) - block_controls, 0), size - in_block)
    rng = random.Random(f"{study.seed}:{kind}:group:{n}:{controls_before + block_controls}")
    return CONTROL if rng.random() * (size - in_block) < owed else TREATMENT


def next_button_order(study: Study, kind: str, group: str) -> str:
    """REAL_FIRST or GENERATED_FIRST for the next participant of this kind and group, from the participants there
    are now. Call it inside the transaction that creates the participant (see enroll_participant)."""
    rows = (
        study.participants.filter(kind=kind, button_order__in=BUTTON_ORDERS)
        .order_by()
        .values("button_order", "group")
        .annotate(n=Count("pk"))
        .values_list("button_order", "group", "n")
    )
    in_group: Counter[str] = Counter()
    in_kind: Counter[str] = Counter()
    for order, their_group, n in rows:
        in_kind[order] += n
        if their_group == group:
            in_group[order] += n
    rng = random.Random(f"{study.seed}:{kind}:button-order:{in_kind.total()}")
    return min(BUTTON_ORDERS, key=lambda order: (in_group[order], in_kind[order], rng.random()))


def existing_participant(study: Study, *, label: str = "", join_key: str | None = None) -> Participant | None:
    """The participant who already joined with this label or this join form, if any."""
    match = Q()
    if label:
        match |= Q(label=label)
    if join_key:
        match |= Q(join_key=join_key)
    return study.participants.filter(match).order_by("pk").first() if match else None


def is_full(study: Study) -> bool:
    """Whether the study has its max_participants people (bots do not count, nor do participants past the time
    limit: a crowd platform gives a returned or timed-out participant's place to someone else, and the report
    leaves them out, so counting them would close the study short of the people it can use)."""
    return study.max_participants is not None and (
        study.participants.filter(kind=PERSON).exclude(timed_out(study)).count() >= study.max_participants
    )


def accepting_joins(study: Study) -> bool:
    """Whether anyone may join now: the study is open and has stimuli (a study made in the admin has none until
    create_study or build_study fills it)."""
    return study.status == Study.Status.OPEN and study.stimuli.exists()


def check_admission(study: Study, label: str, kind: str, *, capacity: bool = True) -> None:
    """Raise SeriesConflict when label took part in another study of the study's series, and (capacity) StudyFull
    when a person would find the study full. enroll_participant checks the capacity again under the lock; this
    says it before anyone reads the instructions."""
    other = series_conflict(study, label, kind)
    if other is not None:
        raise SeriesConflict(other)
    if capacity and kind == PERSON and is_full(study):
        raise StudyFull(study.slug)


def enroll_participant(
    study: Study, *, kind: str = PERSON, label: str = "", join_key: str | None = None, **participant_fields
) -> Participant:
    """A new participant in the next group slot with all their trials, as one transaction that also bumps the
    study's data_version; or the one who already joined with this label or join form (a double-submitted Start,
    a crowdworker opening the link again), unchanged.

    Joins are serialized by a lock on the study row, held only for the short part that must see the joins
    before it: the group slot, the views added since the counts were read, and the inserts. Counting every
    trial's views, the part that grows with the study, is done before the lock.

    Raises StudyFull when the study has max_participants persons already.
    """
    counted = ViewCounts.read(study, kind)
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            found = existing_participant(locked, label=label, join_key=join_key)
            if found is not None:
                return found
            if kind == PERSON and is_full(locked):
                raise StudyFull(study.slug)
            group = next_group(locked, kind)
            participant = Participant.objects.create(
                study=locked,
                kind=kind,
                label=label,
                join_key=join_key,
                group=group,
                button_order=next_button_order(locked, kind, group) if protocol_of(locked).draws_button_order else "",
                **participant_fields,
            )
            create_trials(locked, participant, counted.up_to_date())
            Study.objects.filter(pk=locked.pk).data_changed()
    except IntegrityError:
        # Databases without row locks for select_for_update (SQLite) can still let a twin join through to
        # the unique constraints on label and join form: that twin is the participant we want.
        found = existing_participant(study, label=label, join_key=join_key)
        if found is None:
            raise
        return found
    return participant


def create_trials(study: Study, participant: Participant, stimuli: list[Stimulus]) -> list[Trial]:
    """Pick and create the participant's trials from the study's stimuli (each with .times_shown, up to date).

    Call it holding the lock on the study row, so that no other join's trials land meanwhile.
    """
    ordinal = study.participants.filter(kind=participant.kind, pk__lt=participant.pk).count()
    rng = random.Random(f"{study.seed}:{participant.kind}:participant:{ordinal}")
    pools = defaultdict(list)
    for stimulus in stimuli:
        pools[stimulus.pool].append(stimulus)
    scored_pool = pools[Pool.SCORED]
    n_scored = scored_trials(study, len({stimulus.scene for stimulus in scored_pool}))
    protocol = protocol_of(study)
    candidates = protocol.scored_candidates(scored_pool)
    if participant.group == CONTROL:
        quotas = {REAL: n_scored}
    else:
        # From the stimuli in hand: no query while the study is locked.
        models = protocol.models_for(model_names(s.source for s in stimuli), candidates, rng)
        quotas = treatment_quotas(n_scored, protocol.real_fraction(study), models, rng)
    main = [(Trial.Kind.SCORED, stimulus) for stimulus in pick_least_shown(candidates, quotas, rng)]
    checks = {CATCH: catch_trials(study, len(pools[Pool.CATCH]))}
    main += [(Trial.Kind.CATCH, stimulus) for stimulus in pick_least_shown(pools[Pool.CATCH], checks, rng)]
    rng.shuffle(main)
    practice = [(Trial.Kind.PRACTICE, stimulus) for stimulus in protocol.pick_practice(pools[Pool.PRACTICE], rng)]
    trials = [
        Trial(participant=participant, kind=kind, position=position, stimulus=stimulus)
        for position, (kind, stimulus) in enumerate(practice + main, start=1)
    ]
    protocol.prepare_trials(trials, stimuli, rng)
    Trial.objects.bulk_create(trials)
    return trials


class ViewCounts:
    """The study's stimuli by (scene, source), each with .times_shown: its scored or catch trials
    (BALANCED_KINDS) among participants of one kind, as read at one moment, with the id of the newest trial
    counted.

    All of a study's trials are created under the lock on its study row, so a trial with a higher id than
    the newest counted is exactly a trial created since: up_to_date() adds those, a few rows, where a
    recount would read every trial of the study.
    """

    # Stimulus rows annotated with .times_shown, which django-stubs cannot type: list[Any].
    def __init__(self, study: Study, kind: str, stimuli: list[Any], newest: int):
        self.study, self.kind, self.stimuli, self.newest = study, kind, stimuli, newest

    @classmethod
    def read(cls, study: Study, kind: str) -> "ViewCounts":
        counted = Q(trials__kind__in=BALANCED_KINDS, trials__participant__kind=kind)
        # One statement, so that the counts and the newest id come from the same state of the database.
        stimuli = list(
            study.stimuli.annotate(
                times_shown=Count("trials", filter=counted), newest=Max("trials", filter=counted)
            ).order_by("scene", "source")
        )
        return cls(study, kind, stimuli, max((stimulus.newest or 0 for stimulus in stimuli), default=0))

    def up_to_date(self) -> list[Any]:
        """The stimuli with the views added since read(); call it holding the lock on the study row."""
        added = dict(
            Trial.objects.filter(
                participant__study=self.study, participant__kind=self.kind, kind__in=BALANCED_KINDS, pk__gt=self.newest
            )
            .values("stimulus")
            .annotate(n=Count("pk"))
            .values_list("stimulus", "n")
        )
        for stimulus in self.stimuli:
            stimulus.times_shown += added.get(stimulus.pk, 0)
        return self.stimuli


def treatment_quotas(n: int, real_fraction: float, models: list[str], rng: random.Random) -> dict[str, int]:
    """Scored trials per source: round(n * real_fraction) real, the rest split evenly over models."""
    if not models:
        return {REAL: n}
    n_real = round(n * real_fraction)
    each, remainder = divmod(n - n_real, len(models))
    extra = set(rng.sample(models, remainder))
    return {REAL: n_real} | {model: each + (model in extra) for model in models}


def pick_least_shown(stimuli: list[Any], quotas: dict[str, int], rng: random.Random) -> list[Any]:
    """quotas[source] stimuli per source, at most one per scene, as few views above each source's least-shown
    stimulus as the one-per-scene rule allows (views: each stimulus's .times_shown).

    An assignment problem (scipy.optimize.linear_sum_assignment) of trial slots to scenes: placing a slot of
    source s on scene c shows s's stimulus of c and costs (its times_shown - s's fewest) squared, so two
    stimuli one view above the minimum are preferred to one stimulus two views above. Random tie-breaks add
    less than one in total, so they never outweigh a view. A source lacking a scene may still be placed on
    it, at a prohibitive cost, showing the scene's cheapest stimulus of any source instead.
    """
    fewest: dict[str, int] = {}
    for stimulus in stimuli:
        fewest[stimulus.source] = min(fewest.get(stimulus.source, stimulus.times_shown), stimulus.times_shown)
    slots = [source for source in sorted(quotas) for _ in range(quotas[source])]
    tie_scale = 1.0 / (len(slots) + 1)
    cost = {
        stimulus.pk: (stimulus.times_shown - fewest[stimulus.source]) ** 2 + tie_scale * rng.random()
        for stimulus in stimuli
    }
    by_cell = {(stimulus.source, stimulus.scene): stimulus for stimulus in stimuli}
    cheapest: dict[str, Any] = {}
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


def scored_trials(study: Study, scored_scenes: int) -> int:
    """Scored trials per participant: trials_per_participant, or fewer when fewer scenes can be scored (a scene
    is never shown twice)."""
    return min(study.trials_per_participant, scored_scenes)


def catch_trials(study: Study, catch_scenes: int) -> int:
    """Attention checks per participant: the study's catch_trials, or fewer when it has fewer catch scenes (a
    scene is never shown twice)."""
    return min(study.catch_trials, catch_scenes)


def pool_scenes(study: Study) -> dict[str, int]:
    """Number of scenes in each pool (practice scenes are each one practice trial, catch scenes one check)."""
    counts = study.stimuli.values("pool").annotate(n=Count("scene", distinct=True)).values_list("pool", "n")
    return {pool: 0 for pool in Pool.values} | dict(counts)


def trial_counts(study: Study, scenes: dict[str, int] | None = None) -> tuple[int, int, int]:
    """(practice, scored, catch) trials each new participant gets, from the study's pools (``scenes``: its
    pool_scenes, if already counted)."""
    scenes = pool_scenes(study) if scenes is None else scenes
    return scenes[Pool.PRACTICE], scored_trials(study, scenes[Pool.SCORED]), catch_trials(study, scenes[Pool.CATCH])

from collections import Counter

import pytest

from turing.assignment import CONTROL, TREATMENT, assign_group, assign_trials, enroll_participant, group_block
from turing.models import REAL, Participant, Stimulus, Trial

MODELS = ("perceptual", "koalarization")


def enroll(study, n):
    return [enroll_participant(study) for _ in range(n)]


def scored(participant):
    return list(participant.trials.filter(practice=False).select_related("stimulus").order_by("position"))


def practice(participant):
    return list(participant.trials.filter(practice=True).select_related("stimulus").order_by("position"))


def signature(participants):
    """Everything assignment decided, comparable across two studies built from the same images."""
    return [
        (p.group, [(t.stimulus.scene, t.stimulus.source) for t in practice(p)],
         [(t.stimulus.scene, t.stimulus.source) for t in scored(p)])
        for p in participants
    ]


@pytest.mark.parametrize("trials, real_fraction, n_participants", [(20, 0.5, 200), (15, 0.4, 120)])
def test_treatment_shares_one_scene_each_and_balanced_views(build_study, trials, real_fraction, n_participants):
    study = build_study(scenes=40, trials_per_participant=trials, real_fraction=real_fraction, practice_trials=0)
    participants = enroll(study, n_participants)

    n_real = round(trials * real_fraction)
    model_totals = Counter()
    for participant in participants:
        assert participant.group == TREATMENT
        trials_ = scored(participant)
        assert [t.position for t in trials_] == list(range(1, trials + 1))
        sources = Counter(t.stimulus.source for t in trials_)
        assert sources[REAL] == n_real
        assert sorted(sources) == sorted([REAL, *MODELS])
        per_model = [sources[model] for model in MODELS]
        assert sum(per_model) == trials - n_real and max(per_model) - min(per_model) <= 1
        model_totals.update({model: sources[model] for model in MODELS})
        assert len({t.stimulus.scene for t in trials_}) == trials

    # Least-shown first keeps every stimulus of a source within a couple of views of the others.
    for source in [REAL, *MODELS]:
        shown = list(study.stimuli.filter(source=source).values_list("times_assigned", flat=True))
        assert max(shown) - min(shown) <= 2, (source, sorted(shown))
    # times_assigned counts exactly the scored trials that show the stimulus.
    counted = Counter(Trial.objects.filter(practice=False).values_list("stimulus", flat=True))
    assert all(stimulus.times_assigned == counted[stimulus.pk] for stimulus in study.stimuli.all())
    # The odd generated trial goes to a model at random, so neither model is always favoured.
    assert abs(model_totals["perceptual"] - model_totals["koalarization"]) < 0.2 * sum(model_totals.values())


def test_order_within_a_participant_is_shuffled(build_study):
    study = build_study(scenes=20, trials_per_participant=10, practice_trials=0)
    orders = {tuple(t.stimulus.source == REAL for t in scored(p)) for p in enroll(study, 20)}
    assert len(orders) > 5


@pytest.mark.parametrize(
    "fraction, block",
    [(0.0, (4, 0)), (0.25, (4, 1)), (0.5, (4, 2)), (1.0, (4, 4)), (0.2, (5, 1)), (0.1, (10, 1)), (1 / 3, (6, 2)),
     (0.3, (10, 3)), (0.15, (20, 3)), (0.05, (20, 1))],
)
def test_group_block_holds_the_control_share(fraction, block):
    assert group_block(fraction) == block


def test_groups_are_balanced_in_every_block_and_shuffled_between_blocks(build_study):
    study = build_study(scenes=4, control_fraction=0.3, seed=3)
    groups = [assign_group(study, ordinal) for ordinal in range(1000)]
    blocks = [groups[start:start + 10] for start in range(0, 1000, 10)]
    assert all(block.count(CONTROL) == 3 for block in blocks)
    assert len({tuple(block) for block in blocks}) > 20


def test_control_participants_see_only_real_and_share_is_as_configured(build_study):
    study = build_study(scenes=30, trials_per_participant=12, control_fraction=0.25, practice_trials=2, seed=11)
    participants = enroll(study, 200)

    groups = [p.group for p in participants]
    assert groups.count(CONTROL) == 50
    assert all(groups[start:start + 4].count(CONTROL) == 1 for start in range(0, 200, 4))
    for participant in participants:
        trials = scored(participant)
        assert len(trials) == 12 and len({t.stimulus.scene for t in trials}) == 12
        reals = sum(t.stimulus.source == REAL for t in trials)
        assert reals == (12 if participant.group == CONTROL else 6)
    # Practice is not scored, so control participants practise on both kinds as well.
    control_practice = Counter(
        t.stimulus.source == REAL for p in participants if p.group == CONTROL for t in practice(p)
    )
    assert control_practice[True] > 0 and control_practice[False] > 0


def test_practice_trials_avoid_the_scored_scenes_and_mix_real_and_generated(build_study):
    study = build_study(scenes=12, trials_per_participant=8, practice_trials=3)
    participants = enroll(study, 30)

    practice_real = Counter()
    for participant in participants:
        trials = practice(participant)
        assert [t.position for t in trials] == [1, 2, 3]
        assert all(t.practice for t in trials)
        scored_scenes = {t.stimulus.scene for t in scored(participant)}
        practice_scenes = [t.stimulus.scene for t in trials]
        assert len(set(practice_scenes)) == 3 and not scored_scenes & set(practice_scenes)
        reals = sum(t.stimulus.source == REAL for t in trials)
        assert reals in (1, 2)
        practice_real[reals] += 1
    assert practice_real[1] and practice_real[2]
    # Practice views are not counted as judgements.
    assert sum(study.stimuli.values_list("times_assigned", flat=True)) == 30 * 8


def test_practice_is_shortened_rather_than_reusing_a_scored_scene(build_study):
    study = build_study(scenes=10, trials_per_participant=8, practice_trials=5)
    participant = enroll_participant(study)
    assert len(practice(participant)) == 2
    assert not {t.stimulus.scene for t in practice(participant)} & {t.stimulus.scene for t in scored(participant)}


def test_too_few_scenes_uses_every_scene_once(build_study):
    study = build_study(scenes=5, trials_per_participant=20, real_fraction=0.6, practice_trials=3)
    for participant in enroll(study, 10):
        trials = scored(participant)
        assert sorted(t.stimulus.scene for t in trials) == [f"scene{i:02d}" for i in range(5)]
        assert sum(t.stimulus.source == REAL for t in trials) == 3
        assert practice(participant) == []


def test_a_model_missing_scenes_still_gives_full_unique_trials(build_study):
    missing = [f"scene{i:02d}" for i in range(8)]
    study = build_study(scenes=10, trials_per_participant=8, real_fraction=0.25, practice_trials=0,
                        missing={"koalarization": missing})
    for participant in enroll(study, 20):
        trials = scored(participant)
        assert len(trials) == 8 and len({t.stimulus.scene for t in trials}) == 8


def test_same_seed_same_assignments_different_seed_different(build_study):
    options = {"scenes": 16, "trials_per_participant": 6, "practice_trials": 2, "control_fraction": 0.25}
    first = signature(enroll(build_study("first", seed=5, **options), 24))
    again = signature(enroll(build_study("again", seed=5, **options), 24))
    other = signature(enroll(build_study("other", seed=6, **options), 24))
    assert first == again
    assert first != other


def test_assign_trials_twice_keeps_the_first_assignment(small_study):
    participant = enroll_participant(small_study)
    before = [(t.pk, t.stimulus_id) for t in participant.trials.all()]
    counts = dict(small_study.stimuli.values_list("pk", "times_assigned"))

    again = assign_trials(participant)

    assert [(t.pk, t.stimulus_id) for t in again] == before
    assert dict(small_study.stimuli.values_list("pk", "times_assigned")) == counts


def test_assign_trials_for_a_participant_created_elsewhere(small_study):
    participant = Participant.objects.create(study=small_study, group=CONTROL)
    trials = assign_trials(participant)
    assert [t.practice for t in trials] == [True, True, False, False, False, False]
    assert all(t.stimulus.source == REAL for t in trials if not t.practice)
    assert Stimulus.objects.filter(times_assigned=1).count() == 4

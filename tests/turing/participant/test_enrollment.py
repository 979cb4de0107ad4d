import math
from collections import Counter

import pytest

from turing.models import Participant, Pool, Stimulus, Study, Trial
from turing.participant.enrollment import ViewCounts, create_trials, enroll_participant, group_block
from turing.stimuli.importing import StudyImportError
from turing.vocabulary import BOT, CATCH, CONTROL, GENERATED_FIRST, PERSON, REAL, REAL_FIRST, TREATMENT

MODELS = ("perceptual", "koalarization")


def enroll(study, n, **fields):
    return [enroll_participant(study, **fields) for _ in range(n)]


def trials_of(participant, kind):
    return list(participant.trials.filter(kind=kind).select_related("stimulus").order_by("position"))


def scored(participant):
    return trials_of(participant, Trial.Kind.SCORED)


def practice(participant):
    return trials_of(participant, Trial.Kind.PRACTICE)


def views(study):
    """Scored trials per stimulus of the study, counted from the trials there are now (0 for none)."""
    scored_trials = Trial.objects.filter(kind=Trial.Kind.SCORED, stimulus__study=study)
    shown = Counter(scored_trials.values_list("stimulus", flat=True))
    return {stimulus.pk: shown[stimulus.pk] for stimulus in study.stimuli.all()}


def signature(participants):
    """Everything assignment decided, comparable across two studies built from the same images."""
    return [
        (p.group, [(t.kind, t.position, t.stimulus.scene, t.stimulus.source) for t in p.trials.order_by("position")])
        for p in participants
    ]


# Enough people for every stimulus to be shown several times (40 scenes, 3 sources, half the scenes each).
@pytest.mark.parametrize("trials, real_fraction, n_participants", [(20, 0.5, 80), (15, 0.4, 48)])
def test_treatment_shares_one_scene_each_and_balanced_views(build_study, trials, real_fraction, n_participants):
    study = build_study(scenes=40, trials_per_participant=trials, real_fraction=real_fraction)
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
    shown = views(study)
    for source in [REAL, *MODELS]:
        counts = [shown[pk] for pk in study.stimuli.filter(source=source).values_list("pk", flat=True)]
        assert max(counts) - min(counts) <= 2, (source, sorted(counts))
    # The odd generated trial goes to a model at random, so neither model is always favoured.
    assert abs(model_totals["perceptual"] - model_totals["koalarization"]) < 0.2 * sum(model_totals.values())


def test_order_within_a_participant_is_shuffled(build_study):
    study = build_study(scenes=20, trials_per_participant=10)
    orders = {tuple(t.stimulus.source == REAL for t in scored(p)) for p in enroll(study, 20)}
    assert len(orders) > 5


@pytest.mark.parametrize(
    "fraction, block",
    [
        (0.0, (4, 0)),
        (0.25, (4, 1)),
        (0.5, (4, 2)),
        (1.0, (4, 4)),
        (0.2, (5, 1)),
        (0.1, (10, 1)),
        (1 / 3, (6, 2)),
        (0.3, (10, 3)),
        (0.15, (20, 3)),
        (0.05, (20, 1)),
    ],
)
def test_group_block_holds_the_control_share(fraction, block):
    assert group_block(fraction) == block


def test_groups_are_balanced_in_every_block_and_shuffled_between_blocks(build_study):
    study = build_study(scenes=2, trials_per_participant=1, control_fraction=0.3, seed=3)
    groups = [p.group for p in enroll(study, 300)]
    blocks = [groups[start : start + 10] for start in range(0, 300, 10)]

    assert all(block.count(CONTROL) == 3 for block in blocks)
    assert len({tuple(block) for block in blocks}) > 20
    # Every slot of a block is sometimes a control: the block is shuffled, not filled from one end.
    assert all(any(block[slot] == CONTROL for block in blocks) for slot in range(10))


def test_button_orders_are_balanced_in_each_group_and_drawn_afresh_in_each_pair(build_study):
    study = build_study(scenes=4, trials_per_participant=1, control_fraction=0.25, seed=3)
    participants = enroll(study, 40)
    enroll(study, 3, kind=BOT)  # bots are balanced among themselves, apart from the people

    orders = Counter((p.group, p.button_order) for p in participants)
    assert orders == {
        (TREATMENT, REAL_FIRST): 15,
        (TREATMENT, GENERATED_FIRST): 15,
        (CONTROL, REAL_FIRST): 5,
        (CONTROL, GENERATED_FIRST): 5,
    }
    # Balanced at every moment, not only at the end: a session cut short leaves each group balanced too.
    for group in (TREATMENT, CONTROL):
        sequence = [p.button_order for p in participants if p.group == group]
        assert all(abs(sequence[:n].count(REAL_FIRST) * 2 - n) <= 1 for n in range(len(sequence)))
        # Which order comes first in a pair is drawn: not a fixed alternation someone could learn.
        assert len({sequence[start] for start in range(0, len(sequence), 2)}) == 2


def test_deleted_participants_button_orders_are_repaid(build_study):
    study = build_study(scenes=4, trials_per_participant=1, seed=3)
    participants = enroll(study, 8)
    study.participants.filter(pk__in=[p.pk for p in participants if p.button_order == REAL_FIRST][:2]).delete()
    assert [p.button_order for p in enroll(study, 2)] == [REAL_FIRST, REAL_FIRST]


def test_2afc_participants_get_no_button_order(build_study):
    study = build_study(scenes=4, trials_per_participant=1, protocol="2afc")
    assert [p.button_order for p in enroll(study, 2)] == ["", ""]


def test_control_participants_see_only_real_and_share_is_as_configured(build_study):
    study = build_study(scenes=30, trials_per_participant=12, control_fraction=0.25, practice_trials=2, seed=11)
    participants = enroll(study, 80)

    groups = [p.group for p in participants]
    assert groups.count(CONTROL) == 20
    assert all(groups[start : start + 4].count(CONTROL) == 1 for start in range(0, 80, 4))
    for participant in participants:
        trials = scored(participant)
        assert [t.position for t in trials] == list(range(3, 15))
        assert len({t.stimulus.scene for t in trials}) == 12
        reals = sum(t.stimulus.source == REAL for t in trials)
        assert reals == (12 if participant.group == CONTROL else 6)
    # Practice is not scored, so control participants practise on both kinds as well.
    control_practice = Counter(
        t.stimulus.source == REAL for p in participants if p.group == CONTROL for t in practice(p)
    )
    assert control_practice[True] > 0 and control_practice[False] > 0


def test_practice_comes_from_the_reserved_scenes_and_mixes_real_and_generated(build_study):
    study = build_study(scenes=12, trials_per_participant=8, practice_trials=3)
    practice_scenes = set(study.stimuli.filter(pool=Pool.PRACTICE).values_list("scene", flat=True))
    assert len(practice_scenes) == 3
    assert set(study.manifest["import"]["practice_scenes"]) == practice_scenes
    participants = enroll(study, 30)

    practice_real = Counter()
    for participant in participants:
        trials = practice(participant)
        assert [t.position for t in trials] == [1, 2, 3]
        assert all(t.practice for t in trials)
        # Every participant practises once on each reserved scene, and nowhere else.
        assert {t.stimulus.scene for t in trials} == practice_scenes
        assert [t.position for t in scored(participant)] == list(range(4, 12))
        reals = sum(t.stimulus.source == REAL for t in trials)
        assert reals in (1, 2)
        practice_real[reals] += 1
    assert practice_real[1] and practice_real[2]
    # Feedback on a practice image must say nothing about any scored one: no one is scored on a practice scene.
    scored_trials = Trial.objects.filter(kind=Trial.Kind.SCORED, participant__study=study)
    assert scored_trials.count() == 30 * 8
    assert not scored_trials.filter(stimulus__scene__in=practice_scenes).exists()
    assert set(scored_trials.values_list("stimulus__pool", flat=True)) == {Pool.SCORED}


def catch_sets(participants):
    """Each participant's attention-check stimuli, as a set of ids."""
    return [set(p.trials.filter(kind=Trial.Kind.CATCH).values_list("stimulus", flat=True)) for p in participants]


def test_catch_trials_are_two_of_the_ten_checks_at_shuffled_scored_positions(build_study):
    study = build_study(scenes=18, trials_per_participant=6, practice_trials=2, catch_trials=2)
    catch = list(study.stimuli.filter(pool=Pool.CATCH))
    # Five catch scenes per check, one stimulus each.
    assert len(catch) == 10 and {stimulus.source for stimulus in catch} == {CATCH}
    catch_scenes = {stimulus.scene for stimulus in catch}
    participants = enroll(study, 30)

    catch_positions = []
    for participant in participants:
        trials = list(participant.trials.select_related("stimulus").order_by("position"))
        assert [t.position for t in trials] == list(range(1, 11))
        assert [t.kind for t in trials[:2]] == [Trial.Kind.PRACTICE] * 2
        later = trials[2:]
        assert Counter(t.kind for t in later) == {Trial.Kind.SCORED: 6, Trial.Kind.CATCH: 2}
        assert len({t.stimulus.scene for t in later if t.kind == Trial.Kind.CATCH}) == 2
        assert not catch_scenes & {t.stimulus.scene for t in trials if t.kind != Trial.Kind.CATCH}
        catch_positions.append(tuple(t.position for t in later if t.kind == Trial.Kind.CATCH))
    # 30 participants x 2 checks over 10 images, least shown first: each image exactly 6 times.
    assert Counter(stimulus for checks in catch_sets(participants) for stimulus in checks) == {
        stimulus.pk: 6 for stimulus in catch
    }
    # An attention check that always came first (or at a fixed place) would be easy to spot.
    assert len(set(catch_positions)) > 5
    assert not all(3 in positions for positions in catch_positions)


def test_throwaway_joins_cannot_learn_the_attention_checks(build_study):
    study = build_study(scenes=14, trials_per_participant=4, practice_trials=1, catch_trials=2)
    # Four throwaway joins, then the attack's guesses at the checks: the images all four were shown as checks,
    # and more generously every image any of them was shown as one.
    throwaway = catch_sets(enroll(study, 4))
    common, seen = set.intersection(*throwaway), set.union(*throwaway)
    (new,) = catch_sets(enroll(study, 1))

    assert len(new) == 2
    assert len(new & common) <= 1 and len(new & seen) <= 1


def test_no_catch_image_reaches_more_than_a_fifth_of_the_participants(build_study):
    study = build_study(scenes=16, trials_per_participant=4, catch_trials=2, control_fraction=0.2, seed=3)
    shown = Counter()
    for n in range(1, 51):
        (checks,) = catch_sets(enroll(study, 1))
        assert len(checks) == 2
        shown.update(checks)
        # A fifth, rounded up: the first participant's checks have reached all one of them.
        assert max(shown.values()) <= math.ceil(n / 5)
    assert max(shown.values()) <= 50 // 5 and len(shown) == 10


def test_import_refuses_when_practice_and_catch_leave_no_scene_to_score(build_study):
    with pytest.raises(StudyImportError, match="5 per attention check.*at least 14 scenes are needed"):
        build_study("none-left", scenes=13, practice_trials=3, catch_trials=2)
    assert not Study.objects.filter(slug="none-left").exists()
    assert not Stimulus.objects.exists()


def test_too_few_scored_scenes_uses_every_scored_scene_once(build_study):
    study = build_study(scenes=8, trials_per_participant=20, real_fraction=0.6, practice_trials=3)
    scored_scenes = sorted(set(study.stimuli.filter(pool=Pool.SCORED).values_list("scene", flat=True)))
    assert len(scored_scenes) == 5
    for participant in enroll(study, 10):
        trials = scored(participant)
        assert sorted(t.stimulus.scene for t in trials) == scored_scenes
        assert sum(t.stimulus.source == REAL for t in trials) == 3
        assert len(practice(participant)) == 3


def test_a_single_scored_scene_is_enough(build_study):
    study = build_study(scenes=13, trials_per_participant=20, practice_trials=2, catch_trials=2)
    participant = enroll_participant(study)
    assert Counter(participant.trials.values_list("kind", flat=True)) == {
        Trial.Kind.PRACTICE: 2,
        Trial.Kind.SCORED: 1,
        Trial.Kind.CATCH: 2,
    }


def test_a_model_missing_scenes_still_gives_full_unique_trials(build_study):
    missing = [f"scene{i:02d}" for i in range(8)]
    study = build_study(scenes=10, trials_per_participant=8, real_fraction=0.25, missing={"koalarization": missing})
    for participant in enroll(study, 20):
        trials = scored(participant)
        assert len(trials) == 8 and len({t.stimulus.scene for t in trials}) == 8


def test_same_seed_same_assignments_different_seed_different(build_study):
    options = {
        "scenes": 16,
        "trials_per_participant": 6,
        "practice_trials": 2,
        "catch_trials": 1,
        "control_fraction": 0.25,
    }
    first = signature(enroll(build_study("first", seed=5, **options), 24))
    again = signature(enroll(build_study("again", seed=5, **options), 24))
    other = signature(enroll(build_study("other", seed=6, **options), 24))
    assert first == again
    assert first != other


def test_counts_read_before_other_joins_catch_up_with_them(build_study):
    # What a join does when others land between its count of views (before the lock) and its picks.
    study = build_study(scenes=12, trials_per_participant=6, control_fraction=0.25)
    early = ViewCounts.read(study, PERSON)
    enroll(study, 5)
    enroll(study, 2, kind=Participant.Kind.BOT)  # another kind's views are not this kind's

    caught_up = {stimulus.pk: stimulus.times_shown for stimulus in early.up_to_date()}

    assert caught_up == {stimulus.pk: stimulus.times_shown for stimulus in ViewCounts.read(study, PERSON).stimuli}
    assert sum(caught_up.values()) == 5 * 6


def test_a_control_participant_sees_practice_first_then_real_photos_only(small_study):
    participant = Participant.objects.create(study=small_study, group=CONTROL)
    trials = create_trials(small_study, participant, ViewCounts.read(small_study, PERSON).stimuli)
    assert [(t.kind, t.position) for t in trials] == [(Trial.Kind.PRACTICE, 1), (Trial.Kind.PRACTICE, 2)] + [
        (Trial.Kind.SCORED, position) for position in range(3, 7)
    ]
    assert all(t.stimulus.source == REAL for t in trials if not t.practice)
    assert sorted(views(small_study).values()).count(1) == 4


# Counts that survive deletion: groups and balance come from the participants and trials there are now.


def controls(study):
    return study.participants.filter(group=CONTROL).count()


@pytest.mark.parametrize(
    "deleted",
    [
        pytest.param(lambda people: [p for p in people if p.group == CONTROL][:6], id="six-controls"),
        pytest.param(lambda people: [p for p in people if p.group == CONTROL], id="every-control"),
        pytest.param(lambda people: people[:10], id="first-ten"),
        pytest.param(lambda people: [p for p in people if p.group == TREATMENT][:6], id="six-treatments"),
    ],
)
def test_control_share_returns_to_the_target_after_deletions_one_control_per_block(build_study, deleted):
    study = build_study(scenes=4, trials_per_participant=2, control_fraction=0.25, seed=2)
    people = enroll(study, 40)
    assert controls(study) == 10
    Participant.objects.filter(pk__in=[p.pk for p in deleted(people)]).delete()
    left = study.participants.count()
    block_end = -(-left // 4) * 4
    enroll(study, block_end - left)

    later = [p.group for p in enroll(study, 80)]
    # A deletion is repaid at most one control per block of four: no long run of joins into one group,
    # which would tie the group to the time people joined.
    assert all(later[start : start + 4].count(CONTROL) in (0, 1, 2) for start in range(0, 80, 4))
    assert max(len(run) for run in "".join(g[0] for g in later).split("t")) <= 4
    # And the share is back on target: a quarter at every block end once repaid.
    total = study.participants.count()
    assert total % 4 == 0 and controls(study) == total // 4
    again = [p.group for p in enroll(study, 20)]
    assert all(again[start : start + 4].count(CONTROL) == 1 for start in range(0, 20, 4))


@pytest.mark.parametrize("control_fraction, trials", [(0.0, 4), (1.0, 2)])
def test_after_a_deletion_the_next_participant_gets_the_stimuli_now_least_shown(build_study, control_fraction, trials):
    # One model, four scenes: two participants between them see every stimulus their group can see once.
    study = build_study(
        scenes=4,
        models=("perceptual",),
        trials_per_participant=trials,
        real_fraction=0.5,
        control_fraction=control_fraction,
    )
    first, second = enroll(study, 2)
    first_stimuli = {t.stimulus_id for t in scored(first)}
    assert not first_stimuli & {t.stimulus_id for t in scored(second)}

    first.delete()
    after = enroll_participant(study)

    # A count kept beside the trials would still say every stimulus was shown once; the trials say that
    # the deleted participant's stimuli are the ones nobody has judged now.
    assert {t.stimulus_id for t in scored(after)} == first_stimuli
    assert max(views(study).values()) == 1


def test_bots_move_neither_the_persons_groups_nor_their_stimuli(build_study):
    options = {
        "scenes": 16,
        "trials_per_participant": 6,
        "practice_trials": 2,
        "catch_trials": 1,
        "control_fraction": 0.25,
        "seed": 5,
    }
    alone = signature(enroll(build_study("persons", **options), 24))

    mixed = build_study("mixed", **options)
    persons = []
    for index in range(24):
        enroll(mixed, index % 3, kind=BOT)
        persons.append(enroll_participant(mixed))
    bots = list(mixed.participants.filter(kind=BOT))

    assert len(bots) == 24
    assert signature(persons) == alone
    # Bots get blocks of their own.
    assert [p.group for p in bots].count(CONTROL) == 6

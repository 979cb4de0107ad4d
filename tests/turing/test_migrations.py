"""The migrations on a database that the first version filled: every vote survives with its meaning."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from turing.models import Participant, Study, Trial

BEFORE = [("turing", "0001_initial")]


def newest():
    # The data is read back through the current models, so every later migration must have run too.
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_the_first_version(transactional_db):
    yield migrate(BEFORE)
    # Whatever happened, the rest of the suite gets the newest schema.
    migrate(newest())


def test_old_votes_keep_their_kind_order_and_people(back_to_the_first_version):
    old = back_to_the_first_version
    OldStudy, OldStimulus, OldParticipant, OldTrial = (
        old.get_model("turing", name) for name in ("Study", "Stimulus", "Participant", "Trial")
    )
    study = OldStudy.objects.create(slug="v1", title="First version", practice_trials=1)
    stimuli = [
        OldStimulus.objects.create(
            study=study, scene=f"s{i}", source="real", image=f"stimuli/s{i}.png", width=4, height=4
        )
        for i in range(3)
    ]
    for label in ["alice", "alice", "bot-0001", "bot-hunter", ""]:
        person = OldParticipant.objects.create(study=study, label=label)
        OldTrial.objects.create(participant=person, practice=True, position=1, stimulus=stimuli[0], answer="real")
        OldTrial.objects.create(participant=person, practice=False, position=1, stimulus=stimuli[1], answer="generated")
        OldTrial.objects.create(participant=person, practice=False, position=2, stimulus=stimuli[2])

    migrate(newest())

    study = Study.objects.get(slug="v1")
    assert study.created_before_pools
    out = io.StringIO()
    call_command("study_report", "v1", stdout=out)
    people = list(Participant.objects.filter(study=study).order_by("pk"))
    # Each answered a practice and a scored trial before the counter existed: the report cache counts them.
    assert {p.answer_count for p in people} == {2}
    assert [(p.label, p.kind) for p in people] == [
        ("alice", "person"),
        ("alice (duplicate 2)", "person"),
        ("bot-0001", "bot"),
        ("bot-hunter", "person"),
        ("", "person"),
    ]
    for person in people:
        trials = list(person.trials.order_by("position").values_list("kind", "position", "stimulus__scene", "answer"))
        assert trials == [("practice", 1, "s0", "real"), ("scored", 2, "s1", "generated"), ("scored", 3, "s2", "")]
    tokens = list(Trial.objects.values_list("image_token", flat=True))
    assert len(set(tokens)) == len(tokens) == 15 and all(len(token) == 22 for token in tokens)


@pytest.fixture
def before_protocols(transactional_db):
    yield migrate([("turing", "0009_crowd_platforms_cohorts_series")])
    migrate(newest())


def test_trials_shown_under_an_exposure_limit_keep_it_when_the_limit_moves_onto_the_trial(before_protocols):
    old = before_protocols
    OldStudy, OldStimulus, OldParticipant, OldTrial = (
        old.get_model("turing", name) for name in ("Study", "Stimulus", "Participant", "Trial")
    )
    flash = OldStudy.objects.create(slug="flash", title="Timed", exposure_ms=800)
    stimulus = OldStimulus.objects.create(
        study=flash, scene="s", source="real", image="stimuli/s.png", width=4, height=4
    )
    person = OldParticipant.objects.create(study=flash)
    OldTrial.objects.create(participant=person, position=1, stimulus=stimulus, shown_at="2026-01-01T00:00:00Z")
    OldTrial.objects.create(participant=person, position=2, stimulus=stimulus)

    migrate(newest())

    exposures = list(Trial.objects.order_by("position").values_list("exposure_ms", flat=True))
    assert exposures == [800, None], "the shown trial keeps its limit; the unshown one gets it when shown"

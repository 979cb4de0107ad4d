"""The README's demo, end to end on CPU with its smallest settings: photos -> two runs -> study -> bots -> report."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from colorization.split import read_split
from turing.models import Participant, Study
from turing.report.cache import study_summary
from turing.report.data import Selection
from turing.stimuli.audit import audit_study
from turing.vocabulary import REAL

# 4 crops of each photo hold out 12 crops: the demo's 2 practice scenes and the 5 catch scenes of its one attention
# check leave 5 to score.
SMALLEST = dict(steps=2, image_size=32, width=0.125, crops_per_photo=4, n_scenes=12, trials=6, backbones="none")


def run_demo(workdir, **options):
    out = StringIO()
    call_command("demo", no_serve=True, workdir=workdir, stdout=out, **SMALLEST, **options)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_demo_builds_a_study_that_bots_can_take_and_a_rerun_reuses_everything(tmp_path):
    # On a port of its own (another demo on 8000), every address it prints names that port.
    first = run_demo(tmp_path, port=8123)

    study = Study.objects.get(slug="demo")
    assert study.model_names == ["koalarization", "perceptual"]
    assert study.control_fraction > 0
    assert study.stimuli.values("scene").distinct().count() == SMALLEST["n_scenes"]
    assert audit_study(study) == []
    for model in ("perceptual", "koalarization"):
        assert (tmp_path / "runs" / model / "last.pt").exists()
    assert "/s/demo/" in first and "/staff/demo/report/" in first
    assert "runs on port 8123):" in first and ":8123/s/demo/" in first and ":8000" not in first
    assert "python manage.py serve --study demo --port 8123 " in first
    assert get_user_model().objects.get(username="admin").is_staff
    # Split by photo: no held-out crop comes from a photo the models trained on.
    split = read_split(tmp_path / "split")
    held, trained = ({path.stem.rsplit("-", 1)[0] for path in side} for side in (split.heldout, split.train))
    assert held and trained and not held & trained

    second = run_demo(tmp_path)
    assert second.count("reusing") == 3, second

    # A demo killed during training picks the run up from its last checkpoint instead of refusing it.
    (tmp_path / "runs" / "koalarization" / "done").unlink()
    third = run_demo(tmp_path)
    assert "resuming the interrupted run" in third and (tmp_path / "runs" / "koalarization" / "done").exists()
    assert Study.objects.filter(slug="demo").count() == 1

    # Two practice scenes and the five catch scenes of one attention check are reserved from the 12: 5 are scored.
    assert study.stimuli.filter(pool="practice", source=REAL).count() == 2
    assert study.stimuli.filter(pool="catch").count() == 5
    n_scored = SMALLEST["n_scenes"] - 2 - 5

    call_command("simulate_participants", "demo", n=12, seed=3, stdout=StringIO())
    assert Participant.objects.filter(study=study, kind="bot", finished_at__isnull=False).count() == 12
    # Rehearsal: the bots are not data unless asked for.
    assert study_summary(study)["votes"].sum() == 0
    summary = study_summary(study, selection=Selection(include_bots=True))
    rows = set(zip(summary["source"], summary["group"]))
    assert {("real", "treatment"), ("real", "control")} <= rows
    assert {("perceptual", "treatment"), ("koalarization", "treatment")} <= rows
    assert summary["votes"].sum() == 12 * n_scored

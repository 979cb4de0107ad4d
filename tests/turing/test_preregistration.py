import hashlib
import json

import pytest
from django.core.management import CommandError
from django.urls import reverse
from django.utils import timezone

from tests.turing.conftest import run_command
from tests.turing.page_ids import dangling_describedby
from turing import preregistration
from turing.models import Preregistration, PreregistrationChanged, Stimulus, Study, StudyLocked
from turing.report.data import Selection
from turing.vocabulary import TRIAL_KINDS

pytestmark = pytest.mark.django_db


def freeze_votes(study, **plan):
    plan = {"target_participants": 2, "primary_analysis": "model_comparison", **plan}
    return preregistration.freeze(study, preregistration.build_plan(study, **plan))


def finish(participants, keys):
    for key in keys:
        participants[key].finished_at = timezone.now()
        participants[key].save(update_fields=["finished_at"])


def test_the_hash_depends_on_the_values_not_on_key_order():
    plan = {"target_participants": 40, "exclusions": {"rehearsal_bots": True, "failed_attention_checks": False}}
    reordered = {"exclusions": {"failed_attention_checks": False, "rehearsal_bots": True}, "target_participants": 40}
    assert preregistration.plan_sha256(plan) == preregistration.plan_sha256(reordered)
    assert preregistration.canonical_json(plan) == (
        b'{"exclusions":{"failed_attention_checks":false,"rehearsal_bots":true},"target_participants":40}'
    )
    assert preregistration.plan_sha256({**plan, "target_participants": 41}) != preregistration.plan_sha256(plan)
    excluding = {**plan, "exclusions": {"rehearsal_bots": True, "failed_attention_checks": True}}
    assert preregistration.plan_sha256(excluding) != preregistration.plan_sha256(plan)
    # Not ASCII-escaped: the hash is of UTF-8 text, as the download is.
    assert preregistration.canonical_json({"title": "Farbe – échte"}) == '{"title":"Farbe – échte"}'.encode()


def test_a_study_plan_hashes_its_design_and_every_image(vote_study):
    study, _ = vote_study
    plan = preregistration.build_plan(study, target_participants=30, primary_analysis="fooling_rate")
    design = plan["design"]
    assert {name: design[name] for name in Study.DESIGN_FIELDS} == {
        name: getattr(study, name) for name in Study.DESIGN_FIELDS
    }
    assert len(design["stimuli"]) == study.stimuli.count()
    alpha = next(row for row in design["stimuli"] if row["scene"] == "s3" and row["source"] == "alpha")
    stimulus = study.stimuli.get(scene="s3", source="alpha")
    assert alpha == {
        "scene": "s3",
        "source": "alpha",
        "pool": "scored",
        "sha256": hashlib.sha256(stimulus.image.read()).hexdigest(),
    }
    # The same study planned again gives the same hash; another target or exposure gives another.
    again = preregistration.build_plan(study, target_participants=30, primary_analysis="fooling_rate")
    assert preregistration.plan_sha256(again) == preregistration.plan_sha256(plan)
    other_target = preregistration.build_plan(study, target_participants=31, primary_analysis="fooling_rate")
    assert preregistration.plan_sha256(other_target) != preregistration.plan_sha256(plan)
    study.exposure_ms = 1000
    exposed = preregistration.build_plan(study, target_participants=30, primary_analysis="fooling_rate")
    assert preregistration.plan_sha256(exposed) != preregistration.plan_sha256(plan)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"target_participants": 0}, "target_participants: expected a whole number of at least 1, got 0"),
        ({"target_participants": None}, "target_participants: give the planned number"),
        ({"primary_analysis": "median"}, "primary_analysis: 'median' is not one of the report's statistics"),
        ({"primary_models": ["alpha", "delta"]}, "primary_models: delta not in study 'votes'"),
        ({"primary_models": ["alpha"]}, "a model comparison needs at least two models"),
        ({"primary_rate": "median"}, "primary_rate: 'median' is not one of the report's rates"),
        ({"power_analysis": [1, 2]}, "power_analysis: expected the JSON object plan_study --json prints"),
    ],
)
def test_a_plan_the_study_cannot_have_is_refused_naming_the_setting(vote_study, changes, problem):
    study, _ = vote_study
    plan = {"target_participants": 20, "primary_analysis": "model_comparison", **changes}
    with pytest.raises(preregistration.PlanError, match=problem):
        preregistration.build_plan(study, **plan)


def test_the_power_planners_answer_is_the_target_unless_one_is_given(vote_study):
    study, _ = vote_study
    power = {"participants_needed": 36, "reached": True, "plan": {"baseline": 0.3, "difference": 0.1}}
    plan = preregistration.build_plan(
        study, target_participants=None, primary_analysis="fooling_rate", power_analysis=power
    )
    assert plan["target_participants"] == 36 and plan["power_analysis"] == power


def test_a_plan_is_frozen_once_and_never_changed(vote_study):
    study, _ = vote_study
    registration = freeze_votes(study, target_participants=12)
    assert registration.sha256 == hashlib.sha256(registration.canonical.encode()).hexdigest()
    assert Study.objects.get(pk=study.pk).target_participants == 12
    with pytest.raises(preregistration.PlanError, match="already frozen .* cannot be changed or replaced"):
        freeze_votes(study, target_participants=13)
    registration.canonical = registration.canonical.replace("12", "13")
    with pytest.raises(PreregistrationChanged, match="is frozen .* cannot be changed"):
        registration.save()
    assert Preregistration.objects.get(study=study).plan["target_participants"] == 12


def test_freezing_locks_the_design_before_anyone_joins(small_study):
    freeze_votes(small_study, primary_analysis="fooling_rate")
    small_study.trials_per_participant = 6
    with pytest.raises(StudyLocked, match="was frozen with its preregistered plan"):
        small_study.save()
    small_study.refresh_from_db()
    small_study.title = "Renamed"
    small_study.save()


def test_a_study_analysed_as_planned_has_no_departures(vote_study):
    study, participants = vote_study
    freeze_votes(study, target_participants=2)
    finish(participants, ["p1", "p2"])
    frozen = preregistration.status(study, Selection())
    assert frozen["departures"] == [] and frozen["primary_rate"] == "per person"


def test_a_plan_whose_primary_rate_is_per_vote_departs_from_the_report(vote_study):
    # The report shows the per-person rate first: a plan that named the per-vote one is analysed otherwise.
    study, participants = vote_study
    freeze_votes(study, target_participants=2, primary_rate="per vote")
    finish(participants, ["p1", "p2"])
    assert preregistration.status(study, Selection())["departures"] == [
        "the report's primary rate (shown first) is per person; the plan's is per vote (shown second in the summary)"
    ]


def test_every_analysis_option_off_the_plan_is_a_departure(vote_study):
    study, participants = vote_study
    freeze_votes(study, target_participants=2)
    finish(participants, ["p1", "p2", "p3"])
    found = preregistration.status(
        study, Selection(include_bots=True, exclude_failed_checks=True, kinds=TRIAL_KINDS, cohort="poster")
    )
    assert found["departures"] == [
        "rehearsal bots are counted; the plan leaves them out",
        "participants who failed an attention check are left out; the plan keeps them",
        "trials analysed: practice, scored, catch; the plan analyses scored",
        "only the poster cohort is analysed; the plan analyses every participant",
        "3 participant(s) finished and kept by the plan's exclusions; the plan's target is 2 (exceeded: more data "
        "than planned)",
    ]


def test_a_plan_that_excludes_failed_checks_departs_when_they_are_kept(vote_study):
    study, participants = vote_study
    freeze_votes(study, target_participants=3, exclude_failed_checks=True)
    finish(participants, ["p1"])
    assert preregistration.status(study, Selection())["departures"] == [
        "participants who failed an attention check are kept; the plan leaves them out",
        "1 participant(s) finished and kept by the plan's exclusions; the plan's target is 3 (not reached)",
    ]
    assert "participants who failed" not in " ".join(
        preregistration.status(study, Selection(exclude_failed_checks=True))["departures"]
    )


def test_stimuli_and_a_target_changed_after_freezing_are_departures(vote_study):
    study, participants = vote_study
    freeze_votes(study, target_participants=2)
    finish(participants, ["p1", "p2"])
    Stimulus.objects.filter(study=study, source="gamma").delete()
    Study.objects.filter(pk=study.pk).update(target_participants=50)
    study.refresh_from_db()
    assert preregistration.status(study, Selection())["departures"] == [
        "1 planned stimulus/stimuli gone: s1 [gamma, scored]",
        "the study's target is now 50; the plan froze 2",
    ]


def test_a_time_limit_changed_after_freezing_is_a_departure(vote_study):
    # The time limit decides who is left out as timed out, and stays editable after people joined: shortening it
    # after seeing the data would drop participants with no word in the departures.
    study, participants = vote_study
    Study.objects.filter(pk=study.pk).update(time_limit_minutes=60)
    study.refresh_from_db()
    freeze_votes(study, target_participants=2)
    finish(participants, ["p1", "p2"])
    assert preregistration.registration_of(study).plan["exclusions"]["time_limit_minutes"] == 60
    assert preregistration.status(study, Selection())["departures"] == []
    Study.objects.filter(pk=study.pk).update(time_limit_minutes=None)
    study.refresh_from_db()
    assert preregistration.status(study, Selection())["departures"] == [
        "the time limit is none, the plan froze 60 minutes: it decides who is left out as returned or timed out"
    ]


def test_report_shows_the_hash_and_marks_departures_next_to_the_numbers(staff_client, vote_study):
    study, participants = vote_study
    registration = freeze_votes(study, target_participants=2)
    finish(participants, ["p1", "p2"])
    url = reverse("staff:report", args=[study.slug])
    page = staff_client.get(url).content.decode()
    numbers = page.index("<h2>Judged real, per source</h2>")
    assert page.index(registration.sha256) > numbers and page.index("Analysed as planned.") > numbers
    assert "Departs from the frozen plan" not in page
    page = staff_client.get(url, {"bots": "1"}).content.decode()
    start = page.index('<div class="preregistration"')
    block = page[start : page.index("</div>", start)]
    assert "Departs from the frozen plan" in block and "rehearsal bots are counted; the plan leaves them out" in block


def test_a_report_of_a_study_without_a_plan_says_nothing_of_one(staff_client, vote_study):
    page = staff_client.get(reverse("staff:report", args=["votes"])).content.decode()
    assert 'class="preregistration"' not in page


def test_poster_shows_the_hash(staff_client, vote_study):
    study, _ = vote_study
    poster = reverse("staff:poster", args=[study.slug])
    assert "Preregistered" not in staff_client.get(poster).content.decode()
    registration = freeze_votes(study)
    assert f"plan sha256 <code>{registration.sha256}</code>" in staff_client.get(poster).content.decode()


def test_the_download_is_the_hashed_bytes(staff_client, vote_study):
    study, _ = vote_study
    url = reverse("staff:preregistration_json", args=[study.slug])
    assert staff_client.get(url).status_code == 404
    registration = freeze_votes(study)
    download = staff_client.get(url)
    assert download["Content-Type"] == "application/json"
    assert hashlib.sha256(download.content).hexdigest() == registration.sha256
    # Reformatted by anyone, it hashes the same once made canonical again.
    pretty = json.dumps(json.loads(download.content), indent=2)
    assert preregistration.plan_sha256(json.loads(pretty)) == registration.sha256


def test_staff_freeze_a_plan_once_from_the_page(staff_client, vote_study):
    study, _ = vote_study
    url = reverse("staff:preregistration", args=[study.slug])
    assert "Freeze the plan</button>" in staff_client.get(url).content.decode()
    refused = staff_client.post(url, {"target_participants": 10, "primary_analysis": "treatment_vs_control_x"})
    assert refused.status_code == 200 and not Preregistration.objects.exists()
    response = staff_client.post(
        url,
        {
            "target_participants": 10,
            "primary_analysis": "model_comparison",
            "primary_models": ["alpha", "beta"],
            "primary_rate": "per vote",
            "exclude_failed_checks": "on",
            "power_analysis": '{"participants_needed": 10}',
        },
        follow=True,
    )
    registration = Preregistration.objects.get(study=study)
    assert registration.frozen_by == "researcher"
    plan = registration.plan
    assert plan["primary_analysis"]["models"] == ["alpha", "beta"] and plan["primary_rate"] == "per vote"
    assert plan["exclusions"]["failed_attention_checks"] is True
    assert plan["power_analysis"] == {"participants_needed": 10}
    page = response.content.decode()
    assert f"Plan frozen: sha256 {registration.sha256}." in page and "Freeze the plan</button>" not in page
    again = staff_client.post(url, {"target_participants": 11, "primary_analysis": "fooling_rate"}, follow=True)
    assert "already frozen" in again.content.decode()
    assert Preregistration.objects.get(study=study).sha256 == registration.sha256


def test_the_freeze_forms_descriptions_and_errors_are_elements_of_its_page(staff_client, vote_study):
    study, _ = vote_study
    url = reverse("staff:preregistration", args=[study.slug])
    for response in (
        staff_client.get(url),
        # Every field of the form wrong or missing: each then names its error list too.
        staff_client.post(url, {"target_participants": 0, "primary_analysis": "x", "power_analysis": "{"}),
    ):
        page = response.content.decode()
        missing, described = dangling_describedby(page)
        assert missing == [] and described >= 3, page
    assert 'aria-describedby="id_target_participants_helptext id_target_participants_error"' in page
    assert 'id="id_target_participants_error"' in page and 'id="id_target_participants_helptext"' in page


@pytest.mark.parametrize("protocol", ["2afc", "hype-time"])
def test_a_study_whose_report_gives_no_hype_infinity_cannot_plan_on_it(build_study, staff_client, protocol):
    study = build_study("no-hype", scenes=6, protocol=protocol)
    with pytest.raises(preregistration.PlanError, match=rf"primary_analysis: .*\({protocol}\) gives no HYPE-infinity"):
        preregistration.build_plan(study, target_participants=10, primary_analysis="hype_infinity")
    page = staff_client.get(reverse("staff:preregistration", args=[study.slug])).content.decode()
    assert 'value="fooling_rate"' in page
    assert 'value="hype_infinity"' not in page and 'value="treatment_vs_control"' not in page


def test_freeze_study_command_from_a_plan_file_and_options(vote_study, tmp_path):
    study, _ = vote_study
    power_file = tmp_path / "power.json"
    power_file.write_text(json.dumps({"participants_needed": 36, "reached": True}))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"primary_analysis": "fooling_rate", "exclude_failed_checks": True}))
    output = run_command("freeze_study", "votes", "--plan", str(plan_file), "--power-json", str(power_file))
    registration = Preregistration.objects.get(study=study)
    assert f"sha256 {registration.sha256}" in output and "target: 36 participants" in output
    assert "primary rate: per person" in output and registration.plan["primary_rate"] == "per person"
    assert registration.plan["exclusions"]["failed_attention_checks"] is True
    with pytest.raises(CommandError, match="already frozen"):
        run_command("freeze_study", "votes", "--target", "40", "--primary-analysis", "fooling_rate")
    out = tmp_path / "frozen.json"
    assert "plan verified" in run_command("freeze_study", "votes", "--verify", "--out", str(out))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == registration.sha256


def test_freeze_study_verify_finds_a_changed_image(vote_study):
    study, _ = vote_study
    run_command("freeze_study", "votes", "--target", "5", "--primary-analysis", "fooling_rate")
    stimulus = study.stimuli.get(scene="s2", source="beta")
    with open(stimulus.image.path, "ab") as image:
        image.write(b"\0")
    with pytest.raises(CommandError, match=r"1 image file\(s\) changed since freezing: s2 \[beta, scored\]"):
        run_command("freeze_study", "votes", "--verify")


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "--plan .*plan.json: not valid UTF-8 JSON"),
        ('{"primary_analysis": "fooling_rate", "target": 3}', "plan.json: unknown key target"),
        ('{"target_participants": 3}', "plan.json: primary_analysis is missing"),
    ],
)
def test_freeze_study_names_the_file_and_the_problem(vote_study, tmp_path, content, problem):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(content)
    with pytest.raises(CommandError, match=problem):
        run_command("freeze_study", "votes", "--plan", str(plan_file))
    assert not Preregistration.objects.exists()


def test_study_report_prints_the_hash_and_the_departures(vote_study):
    study, participants = vote_study
    registration = freeze_votes(study, target_participants=2)
    finish(participants, ["p1", "p2"])
    output = run_command("study_report", "votes")
    assert f"Preregistered plan sha256 {registration.sha256}" in output and "Analysed as planned." in output
    output = run_command("study_report", "votes", "--include-bots", "--exclude-failed-checks")
    assert "DEPARTS FROM THE PLAN: rehearsal bots are counted; the plan leaves them out" in output
    assert "DEPARTS FROM THE PLAN: participants who failed an attention check are left out" in output


def test_a_power_analysis_that_found_no_answer_gives_no_target(vote_study):
    study, _ = vote_study
    with pytest.raises(preregistration.PlanError, match="participants_needed is empty"):
        preregistration.build_plan(
            study,
            target_participants=None,
            primary_analysis="fooling_rate",
            power_analysis={"participants_needed": None, "reached": False},
        )

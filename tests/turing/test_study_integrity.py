"""Issue 9 end to end, through the real views and commands: practice feedback keys no scored image, rehearsal
bots stay out of results until asked for, attention checks can exclude participants, a luminance mismatch is
refused or stated, and the exports hold data a spreadsheet cannot misread."""

import csv
import hashlib
import io
from collections import Counter

import pandas as pd
import pytest
from django.core.management import CommandError
from django.test import Client
from django.urls import reverse
from PIL import Image

from tests.turing.conftest import run_command
from tests.turing.participant_steps import answer_all, current_trial, join, right_answer
from turing.models import Participant, Pool, Study, Trial
from turing.report.data import Selection, attention_summary, votes_frame
from turing.vocabulary import CATCH, GENERATED, REAL

pytestmark = pytest.mark.django_db

JSON = {"accept": "application/json"}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shown_image(client, data) -> str:
    """Digest of the image a trial page shows, fetched as the participant's browser fetches it."""
    response = client.get(data["image_url"])
    assert response.status_code == 200
    return digest(b"".join(response.streaming_content))


def stored_digests(study, pool):
    digests = set()
    for stimulus in study.stimuli.filter(pool=pool):
        with stimulus.image.open("rb") as file:
            digests.add(digest(file.read()))
    return digests


# Point 1: practice feedback is no answer key.


def test_practice_feedback_keys_no_scored_image(build_study):
    study = build_study("leak", scenes=12, practice_trials=3, trials_per_participant=6, seed=11)
    # Thirty throwaway participants, each from its own address (the join limit is per address), answer
    # only their practice trials and write down what the feedback says about each image they saw.
    key = {}
    for number in range(30):
        attacker = Client(REMOTE_ADDR=f"198.51.100.{number + 1}")
        join(attacker, study)
        while (data := current_trial(attacker, study)[0])["practice"]:
            image = shown_image(attacker, data)
            reply = attacker.post(data["vote_url"], {"answer": REAL}, headers=JSON).json()
            key[image] = reply["feedback"]["truth"]
    # The attack works: the key tells real from generated for every image it holds.
    assert len(set(key.values())) == 2

    newcomer = Client(REMOTE_ADDR="203.0.113.1")
    join(newcomer, study)
    scored_images = []
    while (step := current_trial(newcomer, study)) != (None, None):
        data, trial = step
        if not data["practice"]:
            scored_images.append(shown_image(newcomer, data))
        newcomer.post(data["vote_url"], {"answer": right_answer(trial)})
    assert len(scored_images) == 6
    assert not set(scored_images) & set(key)
    # Nor could more attackers do better: the key can only ever hold practice images.
    assert set(key) <= stored_digests(study, Pool.PRACTICE)
    assert not stored_digests(study, Pool.PRACTICE) & stored_digests(study, Pool.SCORED)


# Point 3: rehearsal bots.


def take_part(study, address, choose=right_answer):
    """A person joins from their own address and answers every trial; returns the Participant."""
    client = Client(REMOTE_ADDR=address)
    participant = join(client, study)
    answer_all(client, study, choose)
    return participant


def what_people_saw(study):
    """Each person's group and trials, by content (scene, source, kind) rather than by database id."""
    return [
        (
            person.group,
            [
                (t.stimulus.scene, t.stimulus.source, t.kind, t.position)
                for t in person.trials.select_related("stimulus")
            ],
        )
        for person in study.participants.filter(kind=Participant.Kind.PERSON).order_by("pk")
    ]


def csv_frame(response):
    return pd.read_csv(io.BytesIO(response.getvalue()))


def test_bots_are_left_out_unless_asked_for_and_purged_alone(build_study, staff_client):
    options = dict(scenes=8, trials_per_participant=4, practice_trials=1, control_fraction=0.5, seed=3)
    study = build_study("rehearsed", **options)
    run_command("simulate_participants", "rehearsed", n=5, seed=1)
    people = [take_part(study, "192.0.2.1"), take_part(study, "192.0.2.2")]
    # Bots never move a person's group or images: people see what they would have without the rehearsal.
    twin = build_study("unrehearsed", **options)
    for address in ("192.0.2.3", "192.0.2.4"):
        take_part(twin, address)
    assert what_people_saw(study) == what_people_saw(twin)

    people_votes, all_votes = 2 * 4, 7 * 4
    report = staff_client.get(reverse("staff:report", args=["rehearsed"]))
    assert (report.context["total_votes"], report.context["participation"]["started"]) == (people_votes, 2)
    assert "5 rehearsal bots left out" in report.content.decode()
    with_bots = staff_client.get(reverse("staff:report", args=["rehearsed"]), {"bots": "1"})
    assert (with_bots.context["total_votes"], with_bots.context["participation"]["started"]) == (all_votes, 7)

    dashboard = staff_client.get(reverse("staff:dashboard", args=["rehearsed"])).content.decode()
    assert 'id="participants">2<' in dashboard and f'id="total-votes">{people_votes}<' in dashboard

    summary_url = reverse("staff:export_summary", args=["rehearsed"])
    assert csv_frame(staff_client.get(summary_url))["votes"].sum() == people_votes
    assert csv_frame(staff_client.get(summary_url, {"bots": "1"}))["votes"].sum() == all_votes

    votes_url = reverse("staff:export_votes", args=["rehearsed"])
    votes = csv_frame(staff_client.get(votes_url))
    assert len(votes) == people_votes and set(votes["participant_kind"]) == {"person"}
    assert set(votes["participant"]) == {person.pk for person in people}
    votes = csv_frame(staff_client.get(votes_url, {"bots": "1"}))
    assert votes["participant_kind"].value_counts().to_dict() == {"bot": 5 * 4, "person": people_votes}

    assert f"{people_votes} votes" in run_command("study_report", "rehearsed")
    assert f"{all_votes} votes" in run_command("study_report", "rehearsed", "--include-bots")

    before = list(Trial.objects.filter(participant__in=people).values_list("pk", "answer", "answered_at"))
    # Every bot answered one practice and four scored trials.
    assert run_command("purge_bots", "rehearsed") == "Deleted 5 bots and their 25 answers from 'rehearsed'.\n"
    assert set(study.participants.values_list("pk", flat=True)) == {person.pk for person in people}
    assert list(Trial.objects.filter(participant__study=study).values_list("pk", "answer", "answered_at")) == before
    assert twin.participants.count() == 2
    with_bots = staff_client.get(reverse("staff:report", args=["rehearsed"]), {"bots": "1"})
    assert with_bots.context["total_votes"] == people_votes


# Point 8: attention checks.


def fail_checks(how_many):
    """Answer right, except "real" on the first how_many attention checks (obviously wrong colorizations)."""
    failed = []

    def choose(trial):
        if trial.kind == Trial.Kind.CATCH and len(failed) < how_many:
            failed.append(trial)
            return REAL
        return right_answer(trial)

    return choose


def always(answer):
    return lambda trial: answer


def test_participants_who_fail_an_attention_check_can_be_left_out(build_study, staff_client, tmp_path):
    study = build_study("attentive", scenes=15, trials_per_participant=4, practice_trials=1, catch_trials=2, seed=6)
    passing = [take_part(study, "192.0.2.1"), take_part(study, "192.0.2.2", always(GENERATED))]
    failing = [take_part(study, "192.0.2.3", fail_checks(1)), take_part(study, "192.0.2.4", always(REAL))]
    assert Counter(Trial.objects.filter(kind=Trial.Kind.CATCH).values_list("participant", flat=True)) == dict.fromkeys(
        [p.pk for p in passing + failing], 2
    )

    assert attention_summary(study) == {
        "checked": 4,
        "failed": 2,
        "excluded": 0,
        "exclude_failed_checks": False,
        "unchecked": 0,
    }
    assert attention_summary(study, Selection(exclude_failed_checks=True))["excluded"] == 2

    # The summary without them, counted here straight from the passing participants' scored trials.
    expected = Counter()
    for trial in Trial.objects.filter(participant__in=passing, kind=Trial.Kind.SCORED).select_related(
        "stimulus", "participant"
    ):
        cell = (trial.stimulus.source, trial.participant.group)
        expected[cell + ("votes",)] += 1
        expected[cell + ("judged_real",)] += trial.answer == REAL

    def counts(summary):
        summary = summary[summary["votes"] > 0]
        return Counter(
            {
                (source, group, column): row[column]
                for column in ("votes", "judged_real")
                for (source, group), row in summary.set_index(["source", "group"]).iterrows()
            }
        )

    target = tmp_path / "summary.csv"
    output = run_command("study_report", "attentive", "--exclude-failed-checks", "--csv", str(target))
    assert "Attention checks: 2 of 4 participants who answered one called an obviously wrong colorization real." in (
        " ".join(output.split())
    )
    assert "Everything below is computed without those participants (2)." in " ".join(output.split())
    assert "8 votes" in output
    assert counts(pd.read_csv(target)) == expected
    assert "16 votes" in run_command("study_report", "attentive")

    report = staff_client.get(reverse("staff:report", args=["attentive"]), {"exclude_failed": "1"})
    assert report.context["total_votes"] == 8 and counts(report.context["summary_frame"]) == expected
    assert {row["participant"] for row in report.context["participant_accuracy"]} == {p.pk for p in passing}
    assert "Everything below is computed without those participants (2)." in " ".join(report.content.decode().split())
    assert staff_client.get(reverse("staff:report", args=["attentive"])).context["total_votes"] == 16
    exported = csv_frame(staff_client.get(reverse("staff:export_summary", args=["attentive"]), {"exclude_failed": "1"}))
    assert counts(exported) == expected


# Point 9: lightness.


def third_resolution(folder):
    """Rewrite a model folder as a model run at 1/3 of the resolution and upscaled afterwards would leave it."""
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as image:
            width, height = image.size
            image.resize((width // 3, height // 3)).resize((width, height)).save(path)


def create_study(slug, folders, *extra):
    return run_command(
        "create_study",
        slug,
        "--title",
        "Lightness",
        "--real",
        str(folders.real),
        *[f"--generated={name}={folder}" for name, folder in folders.generated.items()],
        "--size",
        "32",
        "--practice",
        "1",
        "--seed",
        "2",
        *extra,
    )


def test_a_model_folder_at_a_third_of_the_resolution_is_refused_or_stated(image_folders, staff_client):
    folders = image_folders(["cat", "dog", "owl", "yak"])
    third_resolution(folders.generated["perceptual"])

    with pytest.raises(CommandError) as refused:
        create_study("blurry", folders)
    for scene in ("cat", "dog", "owl", "yak"):
        assert f"perceptual/{scene} " in str(refused.value)
    assert "koalarization/" not in str(refused.value) and not Study.objects.exists()
    assert "less fine detail than the photo" in str(refused.value)
    assert "import with --allow-luminance-mismatch" in str(refused.value)

    create_study("blurry", folders, "--allow-luminance-mismatch")
    assert Study.objects.get(slug="blurry").luminance_mismatch_allowed
    page = " ".join(staff_client.get(reverse("staff:report", args=["blurry"])).content.decode().split())
    assert "imported with <code>--allow-luminance-mismatch</code>" in page
    assert "may differ from the real photos in lightness" in page
    # Which images differed is kept from the import, so the reader knows the model concerned.
    assert "At import, 4 images differed:" in page
    assert all(f"<td>perceptual/{scene} " in page for scene in ("cat", "dog", "owl", "yak"))
    assert "koalarization/" not in page
    assert "--allow-luminance-mismatch" in run_command("study_report", "blurry")

    clean = image_folders(["cat", "dog", "owl", "yak"], name="clean")
    create_study("sharp", clean)
    assert "allow-luminance-mismatch" not in staff_client.get(reverse("staff:report", args=["sharp"])).content.decode()


# Point 10: exports.


def test_summary_rows_are_a_source_and_a_group(build_study, staff_client):
    study = build_study("rows", scenes=9, trials_per_participant=4, control_fraction=0.5, catch_trials=1, seed=5)
    people = [take_part(study, f"192.0.2.{number}") for number in range(1, 7)]
    assert {person.group for person in people} == {"treatment", "control"}

    summary = csv_frame(staff_client.get(reverse("staff:export_summary", args=["rows"])))
    assert set(summary["source"]) == {REAL, *study.model_names} and CATCH not in set(summary["source"])
    assert set(summary["group"]) == {"treatment", "control"}
    assert set(summary.loc[summary["group"] == "control", "source"]) == {REAL}


def test_exported_votes_name_participants_by_id_and_trials_by_kind(build_study, tmp_path):
    study = build_study("kinds", scenes=10, trials_per_participant=4, practice_trials=1, catch_trials=1, seed=5)
    # Two people without labels, and one whose label a spreadsheet would run as a formula.
    unlabelled = [take_part(study, "192.0.2.1"), take_part(study, "192.0.2.2")]
    client = Client(REMOTE_ADDR="192.0.2.3")
    labelled = join(client, study, {"participant_label": '=HYPERLINK("x")'})
    answer_all(client, study)
    run_command("simulate_participants", "kinds", n=1, seed=1)

    run_command("export_votes", "kinds", str(tmp_path / "scored.csv"))
    run_command("export_votes", "kinds", str(tmp_path / "all.csv"), "--all", "--include-bots")
    scored, everything = pd.read_csv(tmp_path / "scored.csv"), pd.read_csv(tmp_path / "all.csv")
    assert {"participant", "label", "participant_kind", "kind"} <= set(scored.columns)
    assert set(scored["kind"]) == {"scored"} and set(scored["participant_kind"]) == {"person"}
    assert everything["kind"].value_counts().to_dict() == {"scored": 4 * 4, "practice": 4, "catch": 4}
    assert set(everything["participant_kind"]) == {"person", "bot"}

    with open(tmp_path / "scored.csv", newline="") as file:
        labels = {int(row["participant"]): row["label"] for row in csv.DictReader(file)}
    assert labels == {unlabelled[0].pk: "", unlabelled[1].pk: "", labelled.pk: '\'=HYPERLINK("x")'}
    # Empty labels are no identity: the two unlabelled people count as two.
    per_participant = votes_frame(study).groupby("participant").size()
    assert per_participant.to_dict() == {person.pk: 4 for person in [*unlabelled, labelled]}


def test_participants_who_stopped_before_any_check_are_counted_apart(build_study, staff_client):
    study = build_study("unchecked", scenes=14, trials_per_participant=4, catch_trials=2, seed=6)
    take_part(study, "192.0.2.1")
    client = Client(REMOTE_ADDR="192.0.2.2")
    quitter = join(client, study)
    # Their first trial is scored, whatever the shuffle drew: they answer it and stop before any check.
    first, scored = quitter.trials.get(position=1), quitter.trials.filter(kind=Trial.Kind.SCORED).first()
    if first != scored:
        Trial.objects.filter(pk=scored.pk).update(position=0)
        Trial.objects.filter(pk=first.pk).update(position=scored.position)
        Trial.objects.filter(pk=scored.pk).update(position=1)
    data, trial = current_trial(client, study)
    assert trial.kind == Trial.Kind.SCORED
    client.post(data["vote_url"], {"answer": right_answer(trial)})

    attention = attention_summary(study, Selection(exclude_failed_checks=True))
    assert (attention["checked"], attention["failed"], attention["unchecked"]) == (1, 0, 1)
    report = staff_client.get(reverse("staff:report", args=["unchecked"]), {"exclude_failed": "1"})
    assert "1 participant counted here answered none" in " ".join(report.content.decode().split())

import csv
import re

import pandas as pd
import pytest
from django.core.management import CommandError
from django.urls import reverse

from tests.turing.conftest import run_command
from tests.turing.report_data import ALL_ANSWERS, OTHER_TRIALS, TOTAL_VOTES, VOTES, make_vote_study
from turing.models import Participant, Stimulus, Study
from turing.report import data

pytestmark = pytest.mark.django_db


def test_study_report_prints_one_row_per_source(vote_study):
    output = run_command("study_report", "votes")
    assert f"{TOTAL_VOTES} votes" in output

    def line(source, group="treatment"):
        (found,) = [text for text in output.splitlines() if re.match(rf"{re.escape(source)}\s+{group}\s", text)]
        return found

    for source, share in (("real", "66.7%"), ("alpha", "50.0%"), ("beta", "16.7%")):
        assert share in line(source)
    assert "62.5%" in line("real (control)", "control")
    assert "18.8% – 81.2%" in line("alpha")  # Wilson interval of 3/6
    assert "25.0%" in line("beta")  # HYPE-infinity (1 + 2) / 12
    assert re.search(r"treatment\s+0\s+0\s+—", line("gamma"))


def test_study_report_csv_is_the_web_summary(vote_study, staff_client, tmp_path):
    target = tmp_path / "summary.csv"
    assert f"Wrote {target}" in run_command("study_report", "votes", "--csv", str(target))
    web = staff_client.get(reverse("staff:export_summary", args=["votes"])).content
    assert target.read_bytes() == web
    assert list(pd.read_csv(target).columns) == data.SUMMARY_COLUMNS


def test_export_votes_writes_the_web_export(vote_study, staff_client, tmp_path):
    target = tmp_path / "votes.csv"
    assert f"Wrote {TOTAL_VOTES} answers to {target}" in run_command("export_votes", "votes", str(target))
    assert target.read_bytes() == staff_client.get(reverse("staff:export_votes", args=["votes"])).getvalue()
    votes = pd.read_csv(target)
    assert list(votes.columns) == data.VOTE_COLUMNS and set(votes["kind"]) == {"scored"}

    everything = tmp_path / "all.csv"
    assert f"Wrote {ALL_ANSWERS} answers" in run_command("export_votes", "votes", str(everything), "--all")
    web = staff_client.get(reverse("staff:export_votes", args=["votes"]), {"all": "1"}).getvalue()
    assert everything.read_bytes() == web
    kinds = pd.read_csv(everything)["kind"].value_counts().to_dict()
    assert kinds == {"scored": TOTAL_VOTES, "practice": 1, "catch": 1}


# Labels come from the join URL, so anyone can choose one that a spreadsheet would run as a formula.
FORMULA_LABELS = {"p1": '=HYPERLINK("x")', "p3": "+1", "c1": "-1", "c2": "@SUM(1)"}


def test_exported_labels_cannot_run_as_formulas(tmp_path):
    study, participants = make_vote_study("formulas")
    for key, label in FORMULA_LABELS.items():
        Participant.objects.filter(pk=participants[key].pk).update(label=label)
    # One random image token in 64 starts with "-", which a spreadsheet takes for a formula: neutralised too.
    Stimulus.objects.filter(study=study, source="alpha", scene="s1").update(token="-startsWithAHyphen0000")
    target = tmp_path / "votes.csv"
    run_command("export_votes", "formulas", str(target), "--all")

    with open(target, newline="") as file:
        rows = list(csv.DictReader(file))
    label_of = {int(row["participant"]): row["label"] for row in rows}
    for key, label in FORMULA_LABELS.items():
        assert label_of[participants[key].pk] == "'" + label
    assert label_of[participants["p2"].pk] == ""
    # Only text is touched: ids, positions and times read back as the numbers they were.
    exported = pd.read_csv(target)
    original = data.votes_frame(study, data.Selection(kinds=("scored", "practice", "catch")))
    for column in ("participant", "position", "response_ms"):
        assert exported[column].tolist() == original[column].tolist()
    assert "'-startsWithAHyphen0000" in set(exported["stimulus"])
    assert exported["label"].str.startswith("'").sum() == sum(
        len(VOTES[key][3]) + (key in OTHER_TRIALS) for key in FORMULA_LABELS
    )


@pytest.mark.parametrize("command", [("study_report", "missing"), ("export_votes", "missing", "out.csv")])
def test_unknown_study_is_a_clear_error(db, command):
    with pytest.raises(CommandError, match="no study with slug 'missing'"):
        run_command(*command)


def test_unwritable_target_names_the_file(vote_study, tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "votes.csv"
    with pytest.raises(CommandError, match="votes.csv: cannot write"):
        run_command("export_votes", "votes", str(target))


def test_study_report_of_a_study_without_stimuli_or_votes():
    Study.objects.create(slug="empty", title="Empty")
    output = run_command("study_report", "empty")
    assert "0 votes" in output and "No votes yet." in output

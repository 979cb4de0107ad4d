"""turing.report.exports: the CSV downloads, the votes streamed from the database."""

import pandas as pd
import pytest

from tests.turing.report_data import TOTAL_VOTES
from turing.models import Participant, Stimulus, Trial
from turing.report import data, exports
from turing.vocabulary import GENERATED_FIRST, REAL, REAL_FIRST

pytestmark = pytest.mark.django_db


def test_csv_exports(vote_study, tmp_path):
    study, _ = vote_study
    assert exports.write_votes_csv(study, tmp_path / "votes.csv") == TOTAL_VOTES
    votes = pd.read_csv(tmp_path / "votes.csv")
    assert list(votes.columns) == data.VOTE_COLUMNS
    assert set(votes["answer"]) == {"real", "generated"} and set(votes["group"]) == {"treatment", "control"}
    exports.write_summary_csv(study, tmp_path / "summary.csv")
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns[:7]) == ["source", "group", "votes", "judged_real", "rate", "ci_low", "ci_high"]
    assert list(zip(summary["source"], summary["group"])) == [
        ("real", "treatment"),
        ("real", "control"),
        ("alpha", "treatment"),
        ("beta", "treatment"),
        ("gamma", "treatment"),
    ]
    assert (summary["rate"].dropna() == (summary["judged_real"] / summary["votes"]).dropna()).all()
    # The per-person rate comes last; everyone here judged as many images of each source, so it is the per-vote one.
    assert list(summary.columns[-3:]) == ["person_rate", "person_ci_low", "person_ci_high"]
    assert summary["person_rate"].dropna().tolist() == pytest.approx(summary["rate"].dropna().tolist())


def test_the_streamed_votes_export_reads_back_as_the_votes_table(vote_study, tmp_path):
    # The export is written by the database (exports.votes_csv), the table by pandas (data.votes_frame): the same
    # rows and values, every kind of trial, times and all.
    study, participants = vote_study
    Participant.objects.filter(pk=participants["p1"].pk).update(label="=1+1")
    Participant.objects.filter(pk=participants["c2"].pk).update(button_order=GENERATED_FIRST)
    # The browser's measurements: p1's first two votes, one on a 2.625x screen; the rest had no JavaScript.
    p1_trials = Trial.objects.filter(participant=participants["p1"]).order_by("position")
    Trial.objects.filter(pk=p1_trials[0].pk).update(image_css_width=294, image_css_height=294, device_pixel_ratio=2)
    Trial.objects.filter(pk=p1_trials[1].pk).update(image_css_width=157, image_css_height=157, device_pixel_ratio=2.625)
    every = data.Selection(kinds=("scored", "practice", "catch"))
    exports.write_votes_csv(study, tmp_path / "votes.csv", every)
    exported = pd.read_csv(tmp_path / "votes.csv", dtype=str, keep_default_na=False)
    assert set(zip(exported["label"], exported["button_order"])) == {
        ("'=1+1", REAL_FIRST),
        ("", REAL_FIRST),
        ("p3", REAL_FIRST),
        ("c1", REAL_FIRST),
        ("c2", GENERATED_FIRST),
    }
    measured = exported[exported["image_css_px"] != ""]
    assert measured[["position", "image_css_px"]].values.tolist() == [["1", "294x294"], ["2", "157x157"]]
    assert measured["device_pixel_ratio"].astype(float).tolist() == [2, 2.625]
    assert (exported.loc[exported["image_css_px"] == "", "device_pixel_ratio"] == "").all()
    exported["answered_at"] = pd.to_datetime(exported["answered_at"], utc=True, format="ISO8601")
    table = exports.neutralize_formulas(data.votes_frame(study, every))
    assert list(exported.columns) == data.VOTE_COLUMNS and len(exported) == len(table)

    def cells(column):
        # A ratio reads back as the number it is: SQLite writes 2.0 as "2.0", PostgreSQL as "2".
        number = column.name == "device_pixel_ratio"
        return ["" if pd.isna(value) or value == "" else float(value) if number else str(value) for value in column]

    for column in data.VOTE_COLUMNS:
        assert cells(exported[column]) == cells(table[column]), column


def test_stimulus_tokens_a_spreadsheet_would_run_are_neutralised_alike_in_every_export(vote_study, tmp_path):
    # Tokens are random and URL-safe: about one in 64 starts with "-"; "=" stands for any formula start.
    study, _ = vote_study
    # A generated image: the metrics are per generated image.
    stimulus = Trial.objects.filter(participant__study=study, kind="scored").exclude(stimulus__source=REAL)[0].stimulus
    Stimulus.objects.filter(pk=stimulus.pk).update(token="=1+2-abcdefghijklmnopq")
    exports.write_votes_csv(study, tmp_path / "votes.csv")
    exports.write_metrics_csv(study, tmp_path / "metrics.csv")
    votes = pd.read_csv(tmp_path / "votes.csv", dtype=str)
    metrics = pd.read_csv(tmp_path / "metrics.csv", dtype=str)
    assert "'=1+2-abcdefghijklmnopq" in set(votes["stimulus"]) & set(metrics["stimulus"])
    assert not votes["stimulus"].str.startswith(exports.FORMULA_STARTS).any()
    assert not metrics["stimulus"].str.startswith(exports.FORMULA_STARTS).any()
    # The exports still join on the token.
    assert set(votes.loc[votes["source"] != REAL, "stimulus"]) <= set(metrics["stimulus"])

"""The report says only what its study's protocol and design give: the staff page and study_report of a
single-image study with and without a control group, a 2afc study and a HYPE-time study; every rate says whether
it is per vote or per person, and every interval what it means."""

import re

import pytest
from django.urls import reverse

from tests.turing.conftest import run_command
from tests.turing.report_data import VOTES, make_vote_study
from turing.models import Study
from turing.report.data import Selection
from turing.report.document import build_report
from turing.report.html import table_rows
from turing.sections import CI, NUM, Column, Section

pytestmark = pytest.mark.django_db

# What the report says of a control group, of HYPE∞ and of real photos judged on their own.
CONTROL = ["real (control)", "control group", "Real photos: treatment against control", "Pooled over both groups"]
HYPE_INFINITY = ["HYPE∞ per vote", "HYPE∞ 95%", "HYPE∞ is, as Zhou"]
REAL_PHOTOS_ALONE = ["Signal detection", "False-alarm rate", "Real photos most often judged generated"]
INTERVAL = "plausible values for the rate among people and images like these"


def single_without_control():
    study, _ = make_vote_study("alone", votes={key: votes for key, votes in VOTES.items() if votes[0] == "treatment"})
    Study.objects.filter(pk=study.pk).update(control_fraction=0)
    return Study.objects.get(pk=study.pk)


def with_bots(build_study, protocol):
    study = build_study(protocol, scenes=12, trials_per_participant=8, practice_trials=1, protocol=protocol)
    run_command("simulate_participants", protocol, n=4, seed=3, p_real=["real=0.8", "perceptual=0.6"])
    return study


@pytest.fixture(params=["single with control", "single without control", "2afc", "hype-time"])
def report(request, build_study, staff_client):
    """(study, what of CONTROL, HYPE_INFINITY and REAL_PHOTOS_ALONE its report says, the staff page's HTML,
    study_report's text)."""
    if request.param == "single with control":
        study, _ = make_vote_study("votes")
    elif request.param == "single without control":
        study = single_without_control()
    else:
        study = with_bots(build_study, request.param)
    page = staff_client.get(reverse("staff:report", args=[study.slug]), {"bots": "1"}).content.decode()
    printed = run_command("study_report", study.slug, include_bots=True)
    # Both wrap their paragraphs: one space between words, as a reader sees them.
    page, printed = " ".join(page.split()), " ".join(printed.split())
    shown = {
        "single with control": CONTROL + HYPE_INFINITY + REAL_PHOTOS_ALONE,
        "single without control": HYPE_INFINITY + REAL_PHOTOS_ALONE,
        "2afc": [],
        "hype-time": REAL_PHOTOS_ALONE,
    }[request.param]
    return study, shown, page, printed


def rate_columns(sections):
    """The titles of the columns that hold a rate (not its interval, nor a count of votes)."""
    return [
        column.title
        for section in sections
        for column in section.columns
        if re.search(r"\b(rate|judged real|fools|picked)\b|HYPE∞", column.title, re.IGNORECASE)
        and CI not in column.style.split()
        and not column.title.startswith("Votes")
    ]


def test_a_report_says_what_its_protocol_and_design_give_and_nothing_else(report):
    study, shown, page, printed = report
    for text in CONTROL + HYPE_INFINITY + REAL_PHOTOS_ALONE:
        assert (text in page, text in printed) == (text in shown,) * 2, text
    for said in (page, printed):
        assert INTERVAL in said and "would lie" not in said and "other people judging other images" not in said
    titles = rate_columns(build_report(study, Selection(include_bots=True)))
    assert "Rate per person" in titles and "Rate per vote" in titles
    assert [title for title in titles if "per vote" not in title and "per person" not in title] == []


def test_an_interval_column_keeps_an_interval_on_one_line_and_lets_its_reasons_wrap():
    section = Section(
        "",
        columns=[Column("Model"), Column("Rate per vote", NUM), Column("95% interval", CI)],
        rows=[["alpha", "50.0%", "18.8% – 81.2%"], ["beta", "—", "withheld: 3 participants had too few trials"]],
    )
    alpha, beta = table_rows(section)
    assert '<td class="ci"><span class="interval">18.8% – 81.2%</span></td>' in alpha
    assert '<td class="ci">withheld: 3 participants had too few trials</td>' in beta

"""The staff report's layout in a real Chromium: wide tables scroll inside themselves on a phone, and a HYPE-time
report fits a 1280 px screen."""

import matplotlib
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from tests.turing.conftest import run_command
from tests.turing.participant_steps import answer_all, join
from tests.turing.report_data import TOTAL_VOTES
from tests.turing.staff.chart_text import drawn_text_px
from turing.models import Study
from turing.protocols.hype_time import HypeTime
from turing.report.cache import metric_tables
from turing.report.data import Selection
from turing.sections import NUM, Column
from turing.staff import charts, views

pytestmark = pytest.mark.browser

# The staff pages of a study (the rest are files, a fragment, or take no study).
STUDY_PAGES = ("dashboard", "report", "gallery", "poster", "manage", "preregistration")


def staff_page(chromium, live_server, width):
    """A page of a staff user's browser at ``width`` CSS px, logged in through Django's session (no login form)."""
    client = Client()
    client.force_login(get_user_model().objects.create_user(f"staff-{width}", is_staff=True))
    context = chromium.new_context(viewport={"width": width, "height": 800})
    session = client.cookies["sessionid"].value
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    return context.new_page()


def page_overflow(page):
    """How far the page reaches past the viewport's right edge, in CSS px (0: no horizontal page scroll)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


def tables_cut(page):
    """The report's tables wider than the space they are shown in, by section: each is scrolled inside its own
    box, not the page."""
    return page.evaluate(
        """() => [...document.querySelectorAll(".table-scroll")]
            .filter((box) => box.scrollWidth > box.clientWidth)
            .map((box) => box.closest("section").id || box.querySelector("table").className)"""
    )


def intervals_broken(page):
    """How many of the report's intervals ("low – high") are split over two lines."""
    return page.evaluate(
        """() => [...document.querySelectorAll(".interval")].filter((span) => span.getClientRects().length > 1)
            .length"""
    )


def test_wide_tables_scroll_inside_themselves_on_a_phone(chromium, live_server, vote_study):
    page = staff_page(chromium, live_server, 360)
    page.goto(live_server.url + reverse("staff:report", args=["votes"]))
    assert page.locator("table.summary").evaluate("(table) => table.offsetWidth") > 360, "a table wider than a phone"
    assert page_overflow(page) <= 0
    assert "summary" in tables_cut(page), "the summary scrolls in its own box"
    summary = page.locator("#summary .table-scroll")
    summary.evaluate("(box) => { box.scrollLeft = box.scrollWidth; }")
    assert summary.evaluate("(box) => box.scrollLeft") > 0
    assert page_overflow(page) <= 0
    assert page.locator("#summary .interval").count() > 0 and intervals_broken(page) == 0


def test_no_staff_page_scrolls_sideways_on_a_phone(chromium, live_server, vote_study):
    page = staff_page(chromium, live_server, 360)
    pages = [reverse(f"staff:{name}", args=["votes"]) for name in STUDY_PAGES]
    pages += [reverse(f"staff:{name}") for name in ("study_list", "plan", "leaderboard")]
    wide = {}
    for path in pages:
        page.goto(live_server.url + path)
        wide[path] = page_overflow(page)
    assert {path: overflow for path, overflow in wide.items() if overflow > 0} == {}


def test_the_dashboards_table_keeps_its_scroll_and_focus_through_an_update(
    chromium, live_server, vote_study, monkeypatch
):
    monkeypatch.setattr(views, "DASHBOARD_REFRESH_SECONDS", 1)
    page = staff_page(chromium, live_server, 360)
    page.goto(live_server.url + reverse("staff:dashboard", args=["votes"]))
    box = page.locator("#live .table-scroll")
    box.focus()
    box.evaluate("(box) => { box.scrollLeft = box.scrollWidth; }")
    left = box.evaluate("(box) => box.scrollLeft")
    assert left > 0, "the live table is wider than a phone"
    page.evaluate("window.sameDocument = true")
    participant = Client()
    join(participant, vote_study[0])
    answer_all(participant, vote_study[0])
    expect(page.locator("#total-votes")).not_to_have_text(str(TOTAL_VOTES), timeout=5000)
    assert page.evaluate("window.sameDocument") is True
    expect(box).to_be_focused()
    assert box.evaluate("(box) => box.scrollLeft") == left


@pytest.fixture
def hype_time_report(build_study):
    build_study("timed", scenes=16, trials_per_participant=12, practice_trials=1, protocol="hype-time", seed=5)
    run_command("simulate_participants", "timed", n=4, seed=2, p_real=["real=0.9", "perceptual=0.2"])
    return reverse("staff:report", args=["timed"]) + "?bots=1"


def smallest_scatter_text_px(study):
    """The smallest text of the report's metrics scatter, in pixels of its PNG."""
    tables = metric_tables(study, Selection(include_bots=True))
    with matplotlib.rc_context(charts.LITERAL_TEXT):
        figure = charts.metric_scatter_figure(tables["metric_images_frame"], tables["metric_correlations_frame"])
    return min(px for _, px in drawn_text_px(figure))


def test_a_hype_time_report_fits_1280_px(chromium, live_server, hype_time_report):
    page = staff_page(chromium, live_server, 1280)
    page.goto(live_server.url + hype_time_report)
    # Four bots with 12 trials each: the interval is withheld with its reason, the longest cell of the table.
    assert "withheld" in page.locator("#protocol-hype-time").inner_text()
    assert page_overflow(page) <= 0
    assert tables_cut(page) == []
    assert page.locator("#summary .interval").count() > 0 and intervals_broken(page) == 0


@pytest.mark.parametrize("width", [360, 1280])
def test_the_metrics_scatter_is_shown_at_its_own_size_with_text_of_10_px(
    chromium, live_server, hype_time_report, width
):
    page = staff_page(chromium, live_server, width)
    page.goto(live_server.url + hype_time_report)
    chart = page.locator("#metrics img.chart")
    expect(chart).to_have_js_property("complete", True)
    natural, shown = chart.evaluate("(image) => [image.naturalWidth, image.getBoundingClientRect().width]")
    assert natural > 0
    smallest = smallest_scatter_text_px(Study.objects.get(slug="timed")) * shown / natural
    assert smallest >= 10
    assert page_overflow(page) <= 0
    box = page.locator("#metrics .chart-scroll")
    fits = box.evaluate("(box) => box.scrollWidth <= box.clientWidth")
    # Whole on a laptop's screen; on a phone it scrolls sideways inside its box, as the tables do.
    assert fits == (width == 1280)


def test_a_hype_time_report_with_one_more_column_still_fits_1280_px(
    chromium, live_server, hype_time_report, monkeypatch
):
    own = HypeTime.report_sections

    def with_a_column(self, votes):
        sections = own(self, votes)
        for section in sections:
            section.columns.append(Column("One more column (ms)", NUM))
            for row in section.rows:
                row.append(1000)
        return sections

    # The live server runs in this process: its report draws the section with the extra column.
    monkeypatch.setattr(HypeTime, "report_sections", with_a_column)
    page = staff_page(chromium, live_server, 1280)
    page.goto(live_server.url + hype_time_report)
    assert page.locator("#protocol-hype-time th").last.inner_text() == "One more column (ms)"
    assert page_overflow(page) <= 0
    assert tables_cut(page) == []
    assert intervals_broken(page) == 0

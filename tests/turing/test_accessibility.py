"""Accessibility in a real Chromium: axe-core's WCAG 2.1 A/AA rules on every participant and staff page, and the
answer buttons measured on small screens at 200% text.

axe-core comes from the npm registry (package.json; `make browser` installs it into node_modules/).
"""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from tests.turing.conftest import LOOK_MS, PHONE, log_in_as_staff, start_study
from tests.turing.participant_steps import answer_all, join
from turing.models import Participant, Trial
from turing.staff import views
from turing.vocabulary import BUTTON_ORDERS, GENERATED, REAL, RIGHT

pytestmark = pytest.mark.browser

AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="session")
def axe_source():
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make browser` (npm ci) to install axe-core from package.json.")
    return AXE_SCRIPT.read_text()


def axe_violations(page, axe_source):
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now, one line per rule and element."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return result.violations.flatMap((rule) => rule.nodes.map((node) =>
                `${rule.id} (${rule.impact}): ${node.target.join(" ")}: ${node.failureSummary}`));
        }""",
        WCAG_21_AA,
    )


def contrast(first, second):
    """WCAG contrast ratio of two CSS colours as getComputedStyle gives them ("rgb(r, g, b)")."""

    def luminance(css):
        channels = [int(value) / 255 for value in re.findall(r"\d+", css)[:3]]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def style(locator, prop):
    return locator.evaluate(f"(element) => getComputedStyle(element).{prop}")


def submit_without_consent(page):
    """Start without ticking consent, past the browser's own check, to get the server's error."""
    page.locator("form.join").evaluate("(form) => { form.noValidate = true; }")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".errorlist")).to_be_visible()


def test_every_page_passes_axe_wcag_21_aa(chromium, live_server, build_study, django_user_model, axe_source):
    build_study("axe", scenes=8, size=64, trials_per_participant=2, practice_trials=2, seed=3, show_score=True)
    # The pages' Content-Security-Policy allows no inline script; axe is injected as one.
    page = chromium.new_context(viewport=PHONE, device_scale_factor=2, bypass_csp=True).new_page()
    found = {}

    def check(name):
        found[name] = axe_violations(page, axe_source)

    join_url = live_server.url + reverse("turing:join", args=["axe"])
    page.goto(join_url)
    check("join")
    submit_without_consent(page)
    check("join with an error")
    start_study(page, join_url)
    check("practice trial")
    page.wait_for_timeout(LOOK_MS)
    page.get_by_role("button", name="Real").click()
    expect(page.locator(".feedback")).to_be_visible()
    check("practice feedback")
    practice = Participant.objects.get(study__slug="axe").trials.get(position=1)
    page.goto(live_server.url + reverse("turing:feedback", args=["axe", practice.pk]))
    check("practice feedback page (without JavaScript)")
    page.goto(live_server.url + reverse("turing:trial", args=["axe"]))
    expect(page.locator(".stimulus img")).to_have_js_property("complete", True)
    page.wait_for_timeout(LOOK_MS)
    page.get_by_role("button", name="Generated").click()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".progress")).to_have_text("1 / 2")
    expect(page.locator(".stimulus img")).to_have_js_property("complete", True)
    check("scored trial")
    for _ in range(2):
        expect(page.locator(".stimulus img")).to_have_js_property("complete", True)
        page.wait_for_timeout(LOOK_MS)
        page.get_by_role("button", name="Real").click()
        page.wait_for_timeout(LOOK_MS)
    page.wait_for_url("**" + reverse("turing:finish", args=["axe"]))
    check("finish")

    log_in_as_staff(page, live_server, django_user_model, reverse("staff:study_list"))
    check("staff: study list")
    for name in ("dashboard", "report", "gallery", "poster", "manage", "preregistration"):
        page.goto(live_server.url + reverse(f"staff:{name}", args=["axe"]))
        check(f"staff: {name}")
    for name in ("plan", "leaderboard"):
        page.goto(live_server.url + reverse(f"staff:{name}"))
        check(f"staff: {name}")

    assert {name: lines for name, lines in found.items() if lines} == {}


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1280, "height": 800}], ids=["stacked", "side-by-side"])
def test_a_2afc_pair_and_its_feedback_pass_axe_and_name_the_sides_as_they_stand(
    chromium, live_server, build_study, axe_source, viewport
):
    build_study("pair", scenes=8, size=64, trials_per_participant=2, practice_trials=1, protocol="2afc")
    page = chromium.new_context(viewport=viewport, bypass_csp=True).new_page()
    join_url = live_server.url + reverse("turing:join", args=["pair"])
    page.goto(join_url)
    found = {"join": axe_violations(page, axe_source)}
    start_study(page, join_url)
    found["trial"] = axe_violations(page, axe_source)
    first, second = ("Top", "Bottom") if viewport == PHONE else ("Left", "Right")
    # The buttons' names are the words shown: the other layout's words are neither seen nor read.
    expect(page.get_by_role("button", name=first, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=second, exact=True)).to_be_visible()
    expect(page.get_by_role("group", name="Your answer")).to_contain_text("Which one is the real photograph?")
    page.wait_for_timeout(LOOK_MS)
    page.get_by_role("button", name=first, exact=True).click()
    # Read once the vote's reply is on the page: a query while the live server writes it finds SQLite's table
    # locked.
    expect(page.locator(".feedback .truth")).to_contain_text("The real photograph was the")
    practice = Trial.objects.get(participant__study__slug="pair", kind=Trial.Kind.PRACTICE)
    real = first if practice.generated_side == RIGHT else second
    expect(page.locator(".feedback .truth")).to_have_text(
        f"The real photograph was the {real.lower()} one.", use_inner_text=True
    )
    found["feedback"] = axe_violations(page, axe_source)
    assert {name: lines for name, lines in found.items() if lines} == {}


@pytest.mark.parametrize("text", ["100%", "200%"])
@pytest.mark.parametrize(
    "viewport", [(320, 568), (430, 932), (568, 320), (932, 430)], ids=["320", "430", "320-landscape", "430-landscape"]
)
def test_both_answer_buttons_are_the_same_size_and_fully_on_screen(chromium, live_server, build_study, viewport, text):
    width, height = viewport
    build_study("equal", scenes=6, size=256, trials_per_participant=2, practice_trials=0)
    page = chromium.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=2,
        has_touch=True,
        is_mobile=True,
        bypass_csp=True,  # for the style below
    ).new_page()
    start_study(page, live_server.url + reverse("turing:join", args=["equal"]))
    # Text at 200%, as a reader's font-size setting makes it: every size in rem or em doubles.
    page.add_style_tag(content=f"html {{ font-size: {text}; }}")
    # A touch screen gets no keyboard hints or switch, which would push the buttons down.
    for hint in page.locator(".keys").all():
        expect(hint).to_be_hidden()

    buttons = {answer: page.locator(f"button[value={answer}]") for answer in (REAL, GENERATED)}
    real, generated = (button.bounding_box() for button in buttons.values())
    assert (real["width"], real["height"]) == pytest.approx((generated["width"], generated["height"]), abs=0.5)
    assert page.evaluate("[window.scrollX, window.scrollY]") == [0, 0]
    for name, box in ((REAL, real), (GENERATED, generated)):
        # Both at once on screen without scrolling, each label inside its button.
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (name, box)
        assert buttons[name].evaluate("(button) => button.scrollWidth <= button.clientWidth"), name
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # One colour for both answers, its label readable on it (WCAG AA: 4.5:1).
    colours = {(style(button, "color"), style(button, "backgroundColor")) for button in buttons.values()}
    assert len(colours) == 1 and contrast(*colours.pop()) >= 4.5


def test_the_dashboard_updates_in_place_and_can_be_paused(
    page, live_server, build_study, django_user_model, monkeypatch
):
    monkeypatch.setattr(views, "DASHBOARD_REFRESH_SECONDS", 1)
    study = build_study("wall", scenes=6, size=32, trials_per_participant=2)
    log_in_as_staff(page, live_server, django_user_model, reverse("staff:dashboard", args=["wall"]))
    votes = page.locator("#total-votes")
    expect(votes).to_have_text("0")
    # Lost if the page reloads; and focus stays where the reader put it.
    page.evaluate("window.sameDocument = true")
    page.get_by_role("link", name="Full report").focus()

    participant = Client()
    join(participant, study)
    answer_all(participant, study)
    expect(votes).to_have_text("2", timeout=5000)
    assert page.evaluate("window.sameDocument") is True
    expect(page.get_by_role("link", name="Full report")).to_be_focused()

    pause = page.get_by_role("button", name="Pause updates")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("status")).to_have_text("Updates paused.")
    second = Client()
    join(second, study)
    answer_all(second, study)
    page.wait_for_timeout(2500)
    expect(votes).to_have_text("2")
    pause.click()
    expect(votes).to_have_text("4", timeout=5000)


def test_keys_answer_only_in_the_answer_area_and_never_for_the_other_button(page, live_server, build_study):
    study = build_study("keys", scenes=6, size=64, trials_per_participant=2)
    start_study(page, live_server.url + reverse("turing:join", args=["keys"]))
    expect(page.get_by_text("Keys, while this answer area has focus")).to_be_visible()
    participant = Participant.objects.get(study=study)
    first = participant.trials.get(position=1)
    real_arrow = "ArrowLeft" if BUTTON_ORDERS[participant.button_order][0] == REAL else "ArrowRight"
    page.wait_for_timeout(LOOK_MS)

    page.keyboard.press("r")  # focus on the page itself: a stray key
    page.get_by_role("button", name="Generated").focus()
    page.keyboard.press("r")
    page.keyboard.press(real_arrow)
    expect(page.locator("p.status")).to_have_text("“Generated” has focus: move to “Real” to answer that.")
    page.wait_for_timeout(LOOK_MS)
    first.refresh_from_db()
    assert first.answer == ""
    expect(page.locator(".progress")).to_have_text("1 / 2")

    page.keyboard.press("g")
    expect(page.locator(".progress")).to_have_text("2 / 2")
    first.refresh_from_db()
    assert first.answer == "generated"


def test_practice_feedback_is_announced_and_focus_returns_to_the_answer_area(page, live_server, build_study):
    build_study("practice", scenes=8, size=64, trials_per_participant=2, practice_trials=2)
    start_study(page, live_server.url + reverse("turing:join", args=["practice"]))
    expect(page.get_by_role("heading", level=1)).to_have_text("Study practice: real or generated?")
    # The image is what the page is for: the browser fetches it before anything else.
    expect(page.locator(".stimulus img")).to_have_attribute("fetchpriority", "high")
    for number in (1, 2):
        expect(page).to_have_title(f"Practice {number} / 2 · Study practice")
        page.wait_for_timeout(LOOK_MS)
        page.get_by_role("button", name="Real").click()
        expect(page.locator(".feedback [role=status]")).to_have_text(
            re.compile(r"(Correct!|Not quite\.)\s*That image was")
        )
        expect(page.get_by_role("button", name="Continue")).to_be_focused()
        page.keyboard.press("Enter")
        # The area, not either button: neither answer is one Enter away.
        expect(page.locator(".answering")).to_be_focused()
    expect(page).to_have_title("1 / 2 · Study practice")


def test_the_time_limit_note_exists_only_once_a_limit_has_run_out(page, live_server, build_study):
    build_study("untimed", scenes=6, size=64, trials_per_participant=2)
    start_study(page, live_server.url + reverse("turing:join", args=["untimed"]))
    assert page.locator(".expired-note").count() == 0
    assert "Time is up" not in page.locator("main").aria_snapshot()

    build_study("timed", scenes=6, size=64, trials_per_participant=2, exposure_ms=1500)
    start_study(page, live_server.url + reverse("turing:join", args=["timed"]))
    assert "Time is up" not in page.locator("main").aria_snapshot()
    note = page.get_by_text("Time is up. Answer from memory.")
    expect(note).to_be_visible(timeout=5000)
    assert "Time is up. Answer from memory." in page.locator("main").aria_snapshot()
    assert contrast(style(note, "color"), style(page.locator(".stimulus"), "backgroundColor")) >= 4.5


def test_join_errors_sit_with_the_consent_box_and_focus_is_visible(page, live_server, build_study):
    build_study("join", scenes=6, size=64, trials_per_participant=2)
    page.goto(live_server.url + reverse("turing:join", args=["join"]))
    submit_without_consent(page)
    # The error list inside the consent block, not split off by a <p> the parser had to close before it.
    expect(page.locator(".consent > .errorlist")).to_have_text("Please tick the box to take part.")
    expect(page).to_have_title("Error: Start · Study join")

    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    assert style(focused, "outlineStyle") == "solid" and float(style(focused, "outlineWidth").removesuffix("px")) >= 2
    background = style(page.locator("body"), "backgroundColor")
    if background == "rgba(0, 0, 0, 0)":
        background = style(page.locator("html"), "backgroundColor")
    assert contrast(style(focused, "outlineColor"), background) >= 3

"""Accessibility in a real Chromium: axe-core's WCAG 2.1 A/AA rules on every participant and staff page, and the
answer buttons measured on small screens at 200% text.

axe-core comes from the npm registry (package.json; `make browser` installs it into node_modules/).
"""

from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.turing.conftest import LOOK_MS, PHONE, start_study
from turing.models import Participant

pytestmark = pytest.mark.browser

AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CONSENT = "I have read the information above and agree to take part."


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
    page.get_by_role("button", name="Start").click()
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

    django_user_model.objects.create_superuser("researcher", password="poster-session-2")
    page.goto(live_server.url + reverse("staff:study_list"))
    page.get_by_label("Username").fill("researcher")
    page.get_by_label("Password").fill("poster-session-2")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**" + reverse("staff:study_list"))
    check("staff: study list")
    for name in ("dashboard", "report", "gallery", "poster", "manage"):
        page.goto(live_server.url + reverse(f"staff:{name}", args=["axe"]))
        check(f"staff: {name}")
    page.goto(live_server.url + reverse("staff:plan"))
    check("staff: plan")

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
    page.locator(".answering").scroll_into_view_if_needed()

    real, generated = (page.locator(f"button.{answer}").bounding_box() for answer in ("real", "generated"))
    print(viewport, text, real, generated)
    assert (real["width"], real["height"]) == pytest.approx((generated["width"], generated["height"]), abs=0.5)
    for name, box in (("real", real), ("generated", generated)):
        # Both at once on screen, each label inside its button.
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (name, box)
        assert page.evaluate(f"(b => b.scrollWidth <= b.clientWidth)(document.querySelector('button.{name}'))"), name
    assert page.evaluate("document.documentElement.scrollWidth") <= width

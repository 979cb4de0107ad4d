"""End to end in a real headless Chromium on a phone-sized screen, through participant.js.

Set SCREENSHOT_DIR to also save a screenshot of a trial page there (trial-phone.png) for the README.
"""

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.turing.conftest import CONSENT, LOOK_MS, PHONE, log_in_as_staff, start_study
from turing.models import Participant, Trial
from turing.vocabulary import BUTTON_ORDERS, GENERATED, REAL

pytestmark = pytest.mark.browser


def test_participant_takes_the_study_by_keyboard_and_staff_see_the_votes(
    page, live_server, build_study, django_user_model
):
    study = build_study(
        "poster", scenes=8, size=64, trials_per_participant=4, practice_trials=2, seed=2, show_score=True
    )
    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))

    page.goto(f"{live_server.url}{reverse('turing:join', args=['poster'])}?participant_label=phone-1")
    expect(page.get_by_text("Half of the images are real photographs")).to_be_visible()
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"**{reverse('turing:trial', args=['poster'])}")
    # Lost if the page reloads: proves the trials below are swapped in by participant.js.
    page.evaluate("window.sameDocument = true")

    image = page.locator(".stimulus img")
    keys = ["r", "ArrowRight", "g", "ArrowLeft", "R", "G"]
    for number, key in enumerate(keys, start=1):
        practice = number <= 2
        progress = f"Practice {number} / 2" if practice else f"{number - 2} / 4"
        expect(page.locator(".progress")).to_have_text(progress)
        expect(image).to_have_js_property("complete", True)
        if number == 3 and os.environ.get("SCREENSHOT_DIR"):
            page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "trial-phone.png"))
        assert page.evaluate("window.sameDocument") is True
        # Keys answer in the answer area: Tab reaches it, and practice feedback gives focus back to it (not to a
        # button, which Enter would press); then the participant turns keys on for the whole page and leaves it.
        if number == 1:
            page.keyboard.press("Tab")
            expect(page.locator(".answering")).to_be_focused()
        elif number == 2:
            expect(page.locator(".answering")).to_be_focused()
        elif number == 3:
            page.get_by_label("Use these keys anywhere on the page").check()
            page.evaluate("document.activeElement.blur()")
        page.wait_for_timeout(LOOK_MS)
        page.keyboard.press(key)
        if practice:
            expect(page.locator(".feedback .truth")).to_contain_text("That image was")
            expect(page.locator(".practice-over")).to_be_visible(visible=number == 2)
            expect(page.get_by_role("button", name="Real")).to_be_hidden()
            page.keyboard.press("Enter")
            expect(page.locator(".feedback")).to_be_hidden()

    page.wait_for_url(f"**{reverse('turing:finish', args=['poster'])}")
    participant = Participant.objects.get(study=study)
    correct = sum(trial.correct for trial in participant.trials.filter(kind=Trial.Kind.SCORED))
    expect(page.locator(".score")).to_have_text(f"You judged {correct} of 4 images correctly.")

    assert participant.label == "phone-1" and participant.finished_at is not None
    trials = list(participant.trials.order_by("position"))
    # The letters name answers, the arrows the buttons' places: ← the first, → the second.
    first, second = BUTTON_ORDERS[participant.button_order]
    assert [trial.answer for trial in trials] == [REAL, second, GENERATED, first, REAL, GENERATED]
    # Response times: measured by participant.js from image load to key press.
    assert all(trial.response_ms is not None for trial in trials)

    # Each image after the first was fetched before the vote that brought it on screen was sent.
    votes = [index for index, (method, url) in enumerate(requests) if method == "POST" and "/vote/" in url]
    assert len(votes) == 6
    for previous_vote, trial in zip(votes, trials[1:]):
        image_url = live_server.url + reverse("turing:image", args=[trial.image_token])
        assert requests.index(("GET", image_url)) < previous_vote

    log_in_as_staff(page, live_server, django_user_model, reverse("staff:report", args=["poster"]))
    expect(page.locator("#total-votes")).to_have_text("4")


def test_two_participants_get_the_two_button_orders_and_the_left_arrow_answers_the_left_button(
    chromium, live_server, build_study
):
    study = build_study("order", scenes=6, size=64, trials_per_participant=2)
    pressed = {}
    for _ in range(2):
        page = chromium.new_context(viewport=PHONE).new_page()
        start_study(page, f"{live_server.url}{reverse('turing:join', args=['order'])}")
        buttons = page.locator("button.answer")
        left, right = sorted(buttons.all(), key=lambda button: button.bounding_box()["x"])
        assert left.bounding_box()["y"] == right.bounding_box()["y"], "side by side"
        left_answer, left_label = left.get_attribute("value"), left.text_content()
        expect(page.locator("#answer-keys")).to_contain_text(f"{left_label[0]} or ← {left_answer}")
        page.locator(".answering").focus()
        page.wait_for_timeout(LOOK_MS)
        page.keyboard.press("ArrowLeft")
        expect(page.locator(".progress")).to_have_text("2 / 2")
        pressed[left_answer] = Participant.objects.get(study=study, trials__answer=left_answer)
    assert {answer: participant.button_order for answer, participant in pressed.items()} == {
        REAL: "real-first",
        GENERATED: "generated-first",
    }


def test_a_kiosk_takes_one_participant_after_another(page, live_server, build_study):
    study = build_study(
        "kiosk", scenes=8, size=64, trials_per_participant=2, practice_trials=1, catch_trials=1, show_score=True
    )
    join_url = live_server.url + reverse("turing:join", args=["kiosk"])
    consent = page.get_by_label(CONSENT)

    page.goto(live_server.url + reverse("turing:kiosk", args=["kiosk"]))
    for _ in range(2):
        # A fresh join page, not the previous person's trials, thank-you page or "continue" offer.
        page.wait_for_url(join_url)
        expect(page.get_by_role("button", name="I am a new participant")).to_have_count(0)
        expect(page.get_by_text("You will see 4 images")).to_be_visible()
        consent.check()
        page.get_by_role("button", name="Start").click()
        # One practice trial with feedback, then two scored trials and the catch trial, mixed.
        for progress in ("Practice 1 / 1", "1 / 3", "2 / 3", "3 / 3"):
            expect(page.locator(".progress")).to_have_text(progress)
            expect(page.locator(".stimulus img")).to_have_js_property("complete", True)
            page.wait_for_timeout(LOOK_MS)
            page.locator(".answering").focus()
            page.keyboard.press("r")
            if progress.startswith("Practice"):
                expect(page.locator(".feedback .truth")).to_contain_text("That image was")
                page.keyboard.press("Enter")
        expect(page.locator(".score")).to_contain_text("of 3 images correctly")
        page.get_by_role("link", name="Next participant").click()
    page.wait_for_url(join_url)
    expect(consent).not_to_be_checked()

    participants = list(Participant.objects.filter(study=study))
    assert len(participants) == 2
    for participant in participants:
        assert participant.finished_at is not None
        assert [trial.answer for trial in participant.trials.all()] == ["real"] * 4
        assert participant.trials.filter(kind=Trial.Kind.CATCH).count() == 1


def test_without_javascript_forms_and_css_do_the_job(chromium, live_server, build_study):
    study = build_study(
        "plain", scenes=6, size=64, trials_per_participant=2, practice_trials=1, exposure_ms=1000, show_score=True
    )
    page = chromium.new_context(viewport=PHONE, java_script_enabled=False).new_page()
    page.goto(live_server.url + reverse("turing:join", args=["plain"]))
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Start").click()

    image = page.locator(".stimulus img")
    expect(image).to_be_visible()
    # The exposure limit as a CSS animation: the image is hidden 1 s after the page shows (long enough for
    # the check above to see it first on a slow machine).
    expect(image).to_be_hidden(timeout=5000)
    page.get_by_role("button", name="Real").click()
    expect(page.locator(".truth")).to_contain_text("That image was")
    page.get_by_role("link", name="Continue").click()
    for progress in ("1 / 2", "2 / 2"):
        expect(page.locator(".progress")).to_have_text(progress)
        page.get_by_role("button", name="Generated").click()
    expect(page.locator(".score")).to_contain_text("of 2 images correctly")

    trials = Participant.objects.get(study=study).trials.all()
    assert [trial.answer for trial in trials] == ["real", "generated", "generated"]
    # Measured by the server from rendering the page to the vote; at least the 1 s waited above.
    assert trials[0].response_ms >= 1000


@pytest.mark.parametrize("gap_ms", [60, 150, 300])
def test_a_double_tap_answers_one_image_only(page, live_server, build_study, gap_ms):
    # The second tap of a double tap used to land on the image that the first tap's answer brought up.
    study = build_study("tap", scenes=6, size=64, trials_per_participant=4, practice_trials=0)
    page.goto(f"{live_server.url}{reverse('turing:join', args=['tap'])}")
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".progress")).to_have_text("1 / 4")
    expect(page.locator(".stimulus img")).to_have_js_property("complete", True)
    page.wait_for_timeout(LOOK_MS)
    button = page.get_by_role("button", name="Real")
    button.click()
    page.wait_for_timeout(gap_ms)
    button.click()
    expect(page.locator(".progress")).to_have_text("2 / 4")
    page.wait_for_timeout(LOOK_MS)
    answered = Participant.objects.get(study=study).trials.exclude(answer="")
    assert answered.count() == 1


def test_a_kiosk_left_alone_returns_to_the_start(page, live_server, build_study, monkeypatch):
    from turing.participant import views

    monkeypatch.setattr(views, "KIOSK_IDLE_SECONDS", 2)
    study = build_study("idle", scenes=6, size=64, trials_per_participant=4, practice_trials=0)
    page.goto(f"{live_server.url}{reverse('turing:kiosk', args=['idle'])}")
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".progress")).to_have_text("1 / 4")
    page.wait_for_timeout(LOOK_MS)
    page.locator(".answering").focus()
    page.keyboard.press("r")
    expect(page.locator(".progress")).to_have_text("2 / 4")
    # Nobody touches the device: it goes back to a fresh start page for the next person.
    page.wait_for_url(f"**{reverse('turing:join', args=['idle'])}", timeout=8000)
    expect(page.get_by_role("button", name="Start")).to_be_visible()
    walked_away = Participant.objects.get(study=study)
    assert walked_away.finished_at is None and walked_away.trials.exclude(answer="").count() == 1


def test_a_vote_that_meets_an_outage_is_retried_until_it_lands(page, live_server, build_study):
    study = build_study("outage", scenes=6, size=64, trials_per_participant=2, seed=4)
    outage = {"left": 2}

    def database_down(route):
        # The first two sends of the vote meet a server without its database, as the middleware answers.
        if outage["left"]:
            outage["left"] -= 1
            route.fulfill(status=503, content_type="application/json", body='{"retry": true, "retry_seconds": 3}')
        else:
            route.continue_()

    page.route("**/vote/**", database_down)
    start_study(page, f"{live_server.url}{reverse('turing:join', args=['outage'])}")
    page.wait_for_timeout(LOOK_MS)
    page.get_by_role("button", name="Real").click()
    expect(page.get_by_text("Connection problem — retrying…")).to_be_visible()
    expect(page.locator(".progress")).to_have_text("2 / 2", timeout=10_000)
    assert outage["left"] == 0
    participant = Participant.objects.get(study=study)
    assert participant.trials.exclude(answer="").count() == participant.answer_count == 1


@pytest.mark.parametrize("viewport", [(360, 640), (390, 844), (844, 390)], ids=["small", "tall", "landscape"])
def test_a_phone_shows_the_whole_image_and_both_buttons_without_scrolling(chromium, live_server, build_study, viewport):
    width, height = viewport
    build_study("fit", scenes=6, size=256, trials_per_participant=2, practice_trials=0)
    page = chromium.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=2, has_touch=True, is_mobile=True
    ).new_page()
    start_study(page, f"{live_server.url}{reverse('turing:join', args=['fit'])}")
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / f"trial-{width}x{height}.png"))

    assert page.evaluate("document.documentElement.scrollHeight") <= height
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    boxes = {
        name: page.locator(selector).bounding_box()
        for name, selector in (
            ("image", ".stimulus img"),
            (REAL, f"button[value={REAL}]"),
            (GENERATED, f"button[value={GENERATED}]"),
        )
    }
    for name, box in boxes.items():
        assert box["x"] >= 0 and box["y"] >= 0, name
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, (name, box)
    # The image is what the participant judges: it takes a good part of the screen's shorter side.
    assert boxes["image"]["width"] >= 0.6 * min(width, height), boxes["image"]
    assert boxes["real"]["width"] == boxes["generated"]["width"]
    assert boxes["real"]["height"] == boxes["generated"]["height"]


# (width, height, a phone): the screens the layout is measured on.
SCREENS = {
    "320x568": (320, 568, True),
    "390x844": (390, 844, True),
    "844x390": (844, 390, True),
    "1280x800": (1280, 800, False),
}
# A reader's text size as the browser's font-size setting makes it (chrome://settings/fonts, which the DevTools
# protocol sets per page): 16 px is the default, 32 px is 200%. Unlike a page style, the setting also moves media
# queries written in em or rem, as a reader's does.
TEXT_SIZES = {"100%": 16, "200%": 32}

LAYOUT = """() => {
    const box = (element) => { const b = element.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
    return {
        images: Array.from(document.querySelectorAll(".stimulus img"), box),
        figure: box(document.querySelector(".stimulus")),
        buttons: Array.from(document.querySelectorAll("button.answer"), box),
        labels: Array.from(document.querySelectorAll("button.answer"), (button) => button.innerText),
        scroll: [window.scrollX, window.scrollY],
    };
}"""


def open_trial(chromium, live_server, slug, screen, text):
    """A trial page of study slug for a new participant, on a screen of SCREENS at a text size of TEXT_SIZES."""
    width, height, phone = SCREENS[screen]
    context = chromium.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=2, has_touch=phone, is_mobile=phone
    )
    page = context.new_page()
    context.new_cdp_session(page).send("Page.setFontSizes", {"fontSizes": {"standard": TEXT_SIZES[text]}})
    start_study(page, f"{live_server.url}{reverse('turing:join', args=[slug])}")
    assert page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") == TEXT_SIZES[text]
    return page


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("protocol", ["single", "2afc"])
def test_the_images_are_whole_alike_and_as_large_at_any_text_size_and_each_vote_records_their_size(
    chromium, live_server, build_study, protocol, screen
):
    width, height, _ = SCREENS[screen]
    study = build_study("size", scenes=6, size=256, trials_per_participant=2, protocol=protocol)
    sizes = {}
    for text in TEXT_SIZES:
        page = open_trial(chromium, live_server, "size", screen, text)
        layout = page.evaluate(LAYOUT)
        boxes = layout["images"]
        sizes[text] = {(round(right - left, 2), round(bottom - top, 2)) for left, top, right, bottom in boxes}
        for left, top, right, bottom in boxes:
            # Whole: on screen, and not cut off by the frame around it (a 2afc pair's used to cut the bottom image).
            assert 0 <= left and right <= width and 0 <= top and bottom <= height, (text, layout)
            figure_left, figure_top, figure_right, figure_bottom = layout["figure"]
            assert figure_left <= left and right <= figure_right and figure_top <= top and bottom <= figure_bottom
        # One size for both images of a pair, square as the stimuli are.
        assert len(sizes[text]) == 1 and len({*next(iter(sizes[text]))}) == 1, (text, sizes[text])
        # Both answers on screen without scrolling, at 200% text too.
        assert layout["scroll"] == [0, 0]
        for left, top, right, bottom in layout["buttons"]:
            assert 0 <= left and right <= width and 0 <= top and bottom <= height, (text, layout["buttons"])
        if protocol == "2afc":
            (first_left, first_top, *_), (second_left, second_top, *_) = layout["images"]
            stacked = second_top > first_top
            assert layout["labels"] == (["Top", "Bottom"] if stacked else ["Left", "Right"]), layout
            assert stacked == (screen == "390x844"), "stacked on the tall phone held upright only"
        page.context.close()
    # The text size moves the buttons, never the image.
    assert sizes["200%"] == sizes["100%"], sizes

    # The vote records the size the page measured, and the device-pixel ratio.
    page = open_trial(chromium, live_server, "size", screen, "100%")
    page.wait_for_timeout(LOOK_MS)
    page.locator("button.answer").first.click()
    expect(page.locator(".progress")).to_have_text("2 / 2")
    (size,) = sizes["100%"]
    trial = Trial.objects.filter(participant__study=study).exclude(answer="").get()
    assert (trial.image_css_width, trial.image_css_height, trial.device_pixel_ratio) == (*map(round, size), 2)


@pytest.mark.parametrize("protocol", ["single", "2afc", "hype-time"])
def test_the_first_trial_after_the_practice_feedback_page_starts_in_the_answer_area(
    page, live_server, build_study, protocol
):
    study = build_study("focus", scenes=8, size=64, trials_per_participant=2, practice_trials=1, protocol=protocol)
    start_study(page, f"{live_server.url}{reverse('turing:join', args=['focus'])}")
    expect(page.locator(".answering")).not_to_be_focused()
    page.wait_for_timeout(LOOK_MS)
    page.locator("button.answer").first.click()
    expect(page.locator(".feedback .truth")).not_to_be_empty()
    if protocol == "2afc":
        # The phone held upright stacks the pair: the feedback names its sides as the buttons do.
        expect(page.locator(".feedback .truth")).to_have_text(
            re.compile(r"^The real photograph was the (top|bottom) one\.$"), use_inner_text=True
        )
    # The feedback page (the plain-form path, or a reload) and its Continue: a new page, focus in the answer area.
    practice = Trial.objects.get(participant__study=study, kind=Trial.Kind.PRACTICE)
    page.goto(f"{live_server.url}{reverse('turing:feedback', args=['focus', practice.pk])}")
    if protocol == "2afc":
        expect(page.locator(".truth")).to_have_text(
            re.compile(r"^The real photograph was the (top|bottom) one\.$"), use_inner_text=True
        )
    page.get_by_role("link", name="Continue").click()
    expect(page.locator(".progress")).to_have_text("1 / 2")
    assert page.evaluate("document.activeElement.className") == "answering"
    # Focus scrolled no image off the screen, even where the keyboard hints below the buttons do not fit.
    for image in page.locator(".stimulus img").all():
        box = image.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    # So the keys answer at once, as they did before the feedback page.
    expect(page.locator(".stimulus img").first).to_have_js_property("complete", True)
    page.wait_for_timeout(LOOK_MS)
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".progress")).to_have_text("2 / 2")
    # Only after feedback: the next trial, swapped in, keeps focus where it was; a fresh page does not take it.
    page.reload()
    expect(page.locator(".answering")).not_to_be_focused()


def test_a_reload_after_the_exposure_limit_shows_time_is_up(page, live_server, build_study):
    study = build_study("flash", scenes=6, size=64, trials_per_participant=2, practice_trials=0, exposure_ms=800)
    start_study(page, f"{live_server.url}{reverse('turing:join', args=['flash'])}")
    image = page.locator(".stimulus img")
    expect(image).to_be_hidden(timeout=5000)  # the limit ran out on screen

    page.reload()
    expect(page.get_by_text("Time is up. Answer from memory.")).to_be_visible()
    assert image.get_attribute("src") is None
    page.wait_for_timeout(LOOK_MS)
    page.get_by_role("button", name="Real").click()
    expect(page.locator(".progress")).to_have_text("2 / 2")
    expect(image).to_be_visible()
    first = Participant.objects.get(study=study).trials.get(position=1)
    assert first.answer == "real"


def test_mturk_frames_the_hit_and_the_finish_page_hands_the_assignment_back(page, live_server, build_study):
    study = build_study("hit", scenes=6, size=64, trials_per_participant=2, practice_trials=0)
    join_url = live_server.url + reverse("turing:join", args=["hit"])
    sandbox = "https://workersandbox.mturk.com"
    hit_url = f"{join_url}?assignmentId=A1&hitId=H1&workerId=W1&turkSubmitTo={sandbox}"
    submitted = []

    # MTurk's worker site, played by the route: the HIT in an iframe, beside a join page reached without MTurk.
    def mturk(route):
        if route.request.url.endswith("/mturk/externalSubmit"):
            submitted.append(route.request.post_data)
            route.fulfill(body="HIT submitted", content_type="text/plain")
        else:
            frames = f'<iframe id="hit" src="{hit_url}"></iframe><iframe id="plain" src="{join_url}"></iframe>'
            route.fulfill(body=frames, content_type="text/html")

    page.context.route(f"{sandbox}/**", mturk)
    page.goto(f"{sandbox}/projects/1/tasks")  # waits for the page's load event, which waits for its frames
    link = page.frame_locator("#hit").get_by_role("link", name="Open the study in a new tab")
    expect(link).to_be_visible()
    # Any other page refuses to be framed: Chromium shows its error page in that frame instead.
    assert sorted(frame.url for frame in page.frames[1:]) == ["chrome-error://chromewebdata/", hit_url]

    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.get_by_label(CONSENT).check()
    tab.get_by_role("button", name="Start").click()
    for _ in range(2):
        expect(tab.locator(".stimulus img")).to_have_js_property("complete", True)
        tab.wait_for_timeout(LOOK_MS)
        tab.get_by_role("button", name="Generated").click()
    # The finish page posts the assignment to MTurk by itself.
    tab.wait_for_url(f"{sandbox}/mturk/externalSubmit")
    assert submitted == ["assignmentId=A1&finished=1"]
    participant = Participant.objects.get(study=study)
    assert (participant.cohort, participant.label, participant.finished_at is not None) == ("mturk", "W1", True)


def test_a_2afc_trial_shows_two_images_stacked_on_a_phone_and_hides_both_after_the_exposure(
    page, live_server, build_study
):
    study = build_study("pairs", scenes=6, size=64, trials_per_participant=2, practice_trials=0, protocol="2afc")
    join_url = f"{live_server.url}{reverse('turing:join', args=['pairs'])}"
    page.goto(join_url)
    expect(page.get_by_text("Pick the one you think is real.")).to_be_visible()
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(join_url.rstrip("/") + "/trial/")
    expect(page.get_by_text("Which one is the real photograph?")).to_be_visible()
    left, right = page.locator(".stimulus img").nth(0), page.locator(".stimulus img").nth(1)
    expect(left).to_be_visible()
    expect(right).to_be_visible()
    top, bottom = left.bounding_box(), right.bounding_box()
    assert top["y"] + top["height"] <= bottom["y"], "stacked on a phone held upright"
    assert bottom["y"] + bottom["height"] <= PHONE["height"], "both on screen"
    # Stacked, the buttons and the keys' hint name the sides top and bottom.
    expect(page.get_by_role("button", name="Left")).to_have_count(0)
    expect(page.locator("#answer-keys")).to_contain_text("← top, → bottom", use_inner_text=True)
    # The default exposure of 1 s, then both are hidden and the answer is given at leisure.
    expect(left).to_be_hidden(timeout=3000)
    expect(right).to_be_hidden()
    page.get_by_role("button", name="Top", exact=True).click()
    expect(page.locator(".progress")).to_have_text("2 / 2")
    expect(left).to_be_visible()

    first = Participant.objects.get(study=study).trials.get(position=1)
    real_on_left = first.generated_side == "right"
    assert first.answer == ("generated" if real_on_left else "real")
    assert first.exposure_ms == 1000
    # Painted to hidden, by animation frames: within a frame or two of the second asked (headless, no vsync).
    assert 1000 - 20 <= first.achieved_exposure_ms <= 1000 + 50, first.achieved_exposure_ms
    participant = first.participant
    participant.refresh_from_db()
    assert (participant.viewport_width, participant.viewport_height) == (PHONE["width"], PHONE["height"])
    assert participant.device_pixel_ratio == 2
    # Each vote's own record of how large the images were on screen.
    assert (first.image_css_width, first.image_css_height) == (round(top["width"]), round(top["height"]))
    assert first.device_pixel_ratio == 2


def test_a_hype_time_trial_masks_the_image_after_the_staircase_exposure(page, live_server, build_study):
    study = build_study("timed", scenes=6, size=64, trials_per_participant=3, practice_trials=0, protocol="hype-time")
    start_study(page, f"{live_server.url}{reverse('turing:join', args=['timed'])}")
    image = page.locator(".stimulus img")
    expect(image).to_be_hidden(timeout=3000)
    expect(page.locator(".stimulus canvas.noise-mask")).to_be_visible()
    page.get_by_role("button", name="Real").click()
    expect(page.locator(".progress")).to_have_text("2 / 3")
    expect(page.locator(".stimulus canvas.noise-mask")).to_have_count(0, timeout=3000)

    first = Participant.objects.get(study=study).trials.get(position=1)
    assert first.exposure_ms == 500
    assert 500 - 20 <= first.achieved_exposure_ms <= 500 + 50, first.achieved_exposure_ms

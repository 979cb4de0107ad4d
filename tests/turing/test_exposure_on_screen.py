"""How long a timed image is really on screen, from Chromium's own screencast (CDP Page.startScreencast: a frame
whenever the page's pixels change, stamped with the time it was drawn), against what the page recorded.

Seen here (headless Chromium, 60 Hz, 16.7 ms frames): a change made in a requestAnimationFrame callback reaches
the screen a frame later as a rule, and now and then two to four frames later (page loads mostly). Before issue
24's fix the first image of a page was painted before its clock started, up to 67 ms longer than recorded; timed
from the callbacks alone, a late reveal left it 33-67 ms shorter than recorded. exposure.js now counts both ends
from Element Timing's paint times. Four trials per participant (a practice, three scored), five participants per
protocol, so that the issue's target (within a frame in 95% of trials) allows one miss in 20: about 80 s each."""

import base64
import io
import statistics

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from tests.turing.conftest import CONSENT, LOOK_MS
from turing.models import Participant

pytestmark = pytest.mark.browser

# The intervals between 30 display frames (requestAnimationFrame timestamps).
RAF_INTERVALS = """() => new Promise((resolve) => {
    const times = [];
    function tick(now) {
        times.push(now);
        if (times.length <= 30) {
            requestAnimationFrame(tick);
        } else {
            resolve(times.slice(1).map((t, i) => t - times[i]));
        }
    }
    requestAnimationFrame(tick);
})"""

VIEWPORT = {"width": 360, "height": 640}
PARTICIPANTS = 5
# A frame shows the image when the middle of the stimulus area is within this of the image's own mean colour in
# each channel (RGB levels; JPEG shifts it by 1 or 2): the frame around it, the noise mask (grey), the "Time is
# up" note and the pages before are further off.
SAME_COLOUR = 8


def middle(image: Image.Image, box: tuple[float, float, float, float]) -> np.ndarray:
    """Mean RGB of the middle half (each way) of box (left, top, width, height in image pixels)."""
    left, top, width, height = box
    crop = image.convert("RGB").crop(
        (round(left + width / 4), round(top + height / 4), round(left + 3 * width / 4), round(top + 3 * height / 4))
    )
    return np.asarray(crop, dtype=float).reshape(-1, 3).mean(axis=0)


def on_screen_spans(frames, box, stimuli):
    """[(shown_at, hidden_at)] in ms of the screencast's clock, one per image of stimuli in order: each is shown
    from the first frame that has it to the first frame after that has not."""
    spans, pending = [], list(stimuli)
    shown_at = None
    for timestamp, jpeg in frames:
        if not pending:
            break
        frame = Image.open(io.BytesIO(jpeg))
        scale = frame.width / VIEWPORT["width"]
        colour = middle(frame, tuple(value * scale for value in (box["x"], box["y"], box["width"], box["height"])))
        with Image.open(pending[0].image.path) as image:
            shown = np.abs(colour - middle(image, (0, 0, image.width, image.height))).max() < SAME_COLOUR
        if shown and shown_at is None:
            shown_at = timestamp
        elif not shown and shown_at is not None:
            spans.append((shown_at, timestamp))
            shown_at = None
            pending.pop(0)
    return spans


@pytest.mark.parametrize("protocol, exposure_ms", [("hype-time", None), ("single", 1000)])
def test_a_timed_image_is_on_screen_for_the_exposure_it_records(
    chromium, live_server, build_study, protocol, exposure_ms
):
    """HYPE-time starts at 500 ms and masks the image; each participant's first image comes with a page load, the
    others are swapped in, the first of them after practice feedback."""
    build_study("flash", scenes=8, size=64, trials_per_participant=3, practice_trials=1, protocol=protocol,
                exposure_ms=exposure_ms, seed=5)  # fmt: skip
    join_url = f"{live_server.url}{reverse('turing:join', args=['flash'])}"
    measured, recorded, frame_intervals = [], [], []
    for _ in range(PARTICIPANTS):
        page = chromium.new_context(viewport=VIEWPORT).new_page()
        page.goto(join_url)
        page.get_by_label(CONSENT).check()
        frames = []
        cdp = page.context.new_cdp_session(page)

        def frame(params, frames=frames, cdp=cdp):
            # metadata.timestamp: when the frame was drawn, in seconds.
            frames.append((params["metadata"]["timestamp"] * 1000, base64.b64decode(params["data"])))
            cdp.send("Page.screencastFrameAck", {"sessionId": params["sessionId"]})

        cdp.on("Page.screencastFrame", frame)
        cdp.send("Page.startScreencast", {"format": "jpeg", "quality": 90})
        page.get_by_role("button", name="Start").click()
        for progress in ("Practice 1 / 1", "1 / 3", "2 / 3", "3 / 3"):
            expect(page.locator(".progress")).to_have_text(progress)
            # Revealed, then hidden (a swap keeps the previous mask until the next image is revealed).
            expect(page.locator(".stimulus.shown.expired")).to_have_count(1, timeout=5000)
            if not frame_intervals:
                frame_intervals = page.evaluate(RAF_INTERVALS)
            page.wait_for_timeout(LOOK_MS)
            box = page.locator(".stimulus").bounding_box()
            page.get_by_role("button", name="Real").click()
            if progress.startswith("Practice"):
                page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"**{reverse('turing:finish', args=['flash'])}")
        cdp.send("Page.stopScreencast")
        trials = list(Participant.objects.latest("pk").trials.order_by("position").select_related("stimulus"))
        recorded += [trial.achieved_exposure_ms for trial in trials]
        measured += [hidden - shown for shown, hidden in on_screen_spans(frames, box, [t.stimulus for t in trials])]
        page.context.close()
    frame_ms = statistics.median(frame_intervals)
    print(f"{protocol}: frame {frame_ms:.2f} ms; on screen {[round(ms, 1) for ms in measured]}, recorded {recorded}")
    assert len(measured) == len(recorded)
    # Within a frame, and the half millisecond to which the page rounds what it records.
    within = [abs(screen - page) <= frame_ms + 0.5 for screen, page in zip(measured, recorded)]
    assert sum(within) >= 0.95 * len(within), (measured, recorded)

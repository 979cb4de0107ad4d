"""Shared fixtures for the Django-side tests: folders of tiny synthetic images and studies built from them.

- ``image_folders(scenes=4, models=("perceptual", "koalarization"), *, size=32, missing=None, name="images")``
  writes ``<tmp>/<name>/real/<stem>.png`` and ``<tmp>/<name>/<model>/<stem>.png`` and returns an
  ImageFolders(root, real, generated={model: folder}). ``scenes`` is a count (stems scene00, scene01, ...) or a
  list of stems; ``missing={"koalarization": ["scene01"]}`` leaves those stems out of a model's folder (those
  scenes become real-only for that model). Every scene gets its own random picture; each model's version
  is the real one with its colours changed, much as a colorizer would.
- ``build_study(slug="study", *, scenes=8, models=DEFAULT_MODELS, size=32, missing=None, **study_fields)``
  writes such folders and imports them with turing.stimuli.importing.import_study; study_fields are Study options
  (trials_per_participant, real_fraction, control_fraction, practice_trials (default 0 here), catch_trials,
  seed, exposure_ms, ...); with ``missing`` it passes allow_missing=True, which the import needs for that.
- ``staff_client``: a django.test.Client logged in as a staff user, apart from the ``client`` fixture, so a
  test can be a participant and a researcher at once.
- ``small_study``: a ready Study "small": 8 scenes x (real + perceptual + koalarization), 2 of them reserved
  for practice, 4 scored trials per participant from the other 6, half real, no control group, seed 7.
- ``run_command(*args, **options)`` (a function, not a fixture): what ``call_command(*args, **options)`` prints.
- ``vote_study``: tests/turing/report_data.py's hand-countable votes as Study "votes", with a build_study-like
  manifest (a description and the seed): ``(study, {"p1": Participant, ..., "c2": Participant})``.

Browser tests (marked ``browser``):

- ``chromium``: Debian's headless Chromium, launched by Playwright (which never downloads one), once per
  module; the contexts a test opens are closed after it.
- ``page``: a new page in it with a phone-sized viewport (PHONE).
- ``start_study(page, join_url)`` (a function): consent, Start, and wait for the first trial's image(s).
"""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from PIL import Image
from playwright.sync_api import expect, sync_playwright
from skimage import color

from tests.turing.report_data import make_vote_study
from turing.stimuli.importing import import_study

DEFAULT_MODELS = ("perceptual", "koalarization")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # The MTurk test plays MTurk's public site framing this local test server, which Chromium's Local Network
    # Access checks block (a deployed study is public, like MTurk).
    "--disable-features=LocalNetworkAccessChecks",
]
PHONE = {"width": 390, "height": 844}
# The join page's consent checkbox, by its label.
CONSENT = "I have read the information above and agree to take part."
# participant.js ignores an answer sooner than 400 ms after its image showed (MIN_ANSWER_MS): people look first.
LOOK_MS = 450


@dataclass
class ImageFolders:
    root: Path
    real: Path
    generated: dict[str, Path]


def synthetic_photo(stem: str, size: int) -> np.ndarray:
    """A smooth colour field with noise, different for every stem, as uint8 RGB."""
    rng = np.random.default_rng(list(stem.encode()))
    ramp = np.linspace(0.0, 1.0, size)
    vertical, horizontal = ramp[:, None, None], ramp[None, :, None]
    base = rng.uniform(40, 200, 3) + rng.uniform(-50, 50, 3) * vertical + rng.uniform(-50, 50, 3) * horizontal
    return (base + rng.normal(0, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)


def recoloured(pixels: np.ndarray, model: str) -> np.ndarray:
    """The photo with a and b shifted the way a given model might get them wrong, keeping its CIELAB lightness.

    A colorizer predicts only a and b from the photo's L, and the audit refuses stimuli whose lightness
    differs from their photo's.
    """
    lab = color.rgb2lab(pixels.astype(np.float64) / 255.0)
    lab[..., 1:] += np.random.default_rng(list(model.encode())).integers(-40, 40, 2)
    return (color.lab2rgb(lab).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)


def run_command(*args, **options) -> str:
    """Run a management command as call_command(*args, **options) does and return what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def image_folders(tmp_path):
    def make(scenes=4, models=DEFAULT_MODELS, *, size=32, missing=None, name="images"):
        stems = [f"scene{index:02d}" for index in range(scenes)] if isinstance(scenes, int) else list(scenes)
        missing = missing or {}
        root = tmp_path / name
        real = root / "real"
        real.mkdir(parents=True)
        generated = {model: root / model for model in models}
        for folder in generated.values():
            folder.mkdir()
        for stem in stems:
            pixels = synthetic_photo(stem, size)
            Image.fromarray(pixels).save(real / f"{stem}.png")
            for model, folder in generated.items():
                if stem not in missing.get(model, ()):
                    Image.fromarray(recoloured(pixels, model)).save(folder / f"{stem}.png")
        return ImageFolders(root=root, real=real, generated=generated)

    return make


@pytest.fixture
def build_study(db, image_folders):
    def build(slug="study", *, scenes=8, models=DEFAULT_MODELS, size=32, missing=None, **study_fields):
        # No practice scenes unless a test asks: they are reserved from the scenes (Study's default is 3).
        study_fields.setdefault("practice_trials", 0)
        if missing:
            # Leaving scenes out of a model is what missing= is for, and the import refuses that unless allowed.
            study_fields.setdefault("allow_missing", True)
        folders = image_folders(scenes, models, size=size, missing=missing, name=slug)
        return import_study(slug, f"Study {slug}", folders.real, folders.generated, size=size, **study_fields)

    return build


@pytest.fixture
def small_study(build_study):
    return build_study(
        "small",
        scenes=8,
        trials_per_participant=4,
        practice_trials=2,
        real_fraction=0.5,
        control_fraction=0.0,
        seed=7,
    )


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(get_user_model().objects.create_user("researcher", is_staff=True))
    return client


@pytest.fixture
def vote_study(db):
    return make_vote_study("votes", manifest={"description": "Scenes drawn at random with seed 3.", "seed": 3})


@pytest.fixture(scope="module")
def module_chromium():
    """One Chromium for a module's tests: launching one (and Playwright's driver) costs about 2 CPU-s."""
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse ORM
        # calls from the test itself unless told that this is safe (it is: nothing here is async).
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def chromium(module_chromium):
    """The module's Chromium; the contexts a test opens (its cookies, storage and pages) close after it."""
    yield module_chromium
    for context in module_chromium.contexts:
        context.close()


@pytest.fixture
def page(chromium):
    return chromium.new_context(viewport=PHONE, device_scale_factor=2).new_page()


def start_study(page, join_url):
    """Consent on the join page at join_url and Start; return once the first trial's image (a pair's two) loaded."""
    page.goto(join_url)
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(join_url.rstrip("/") + "/trial/")
    for image in page.locator(".stimulus img").all():
        expect(image).to_have_js_property("complete", True)


def log_in_as_staff(page, live_server, django_user_model, path):
    """Log in through the admin's login form on the way to the staff page at path."""
    django_user_model.objects.create_superuser("researcher", password="poster-session-2")
    page.goto(live_server.url + path)
    page.get_by_label("Username").fill("researcher")
    page.get_by_label("Password").fill("poster-session-2")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**" + path)

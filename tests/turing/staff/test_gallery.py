import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from colorization.gallery import CAPTION_INCHES, CELL_INCHES
from turing.models import Participant, Pool, Trial
from turing.staff.gallery import FIGURE_DPI, gallery_rows, study_gallery_figure
from turing.vocabulary import GENERATED, REAL

pytestmark = pytest.mark.django_db

PROJECT_ROOT = Path(__file__).resolve().parents[3]

SCENES = ("cat", "dog", "owl")
# Votes judging each (scene, source) real, out of three votes each; owl's real photo gets no votes.
JUDGED_REAL = {
    ("cat", "perceptual"): 1,
    ("dog", "perceptual"): 3,
    ("owl", "perceptual"): 2,
    ("cat", "koalarization"): 0,
    ("dog", "koalarization"): 1,
    ("owl", "koalarization"): 3,
    ("cat", REAL): 2,
    ("dog", REAL): 3,
}
VOTES_PER_IMAGE = 3


@pytest.fixture
def gallery_study(build_study):
    study = build_study("gallery-study", scenes=SCENES, size=16)
    voters = [Participant.objects.create(study=study) for _ in range(VOTES_PER_IMAGE)]
    # A practice vote is not counted; it comes first in its participant's one presentation order.
    Trial.objects.create(
        participant=voters[0],
        kind=Trial.Kind.PRACTICE,
        position=1,
        answer=REAL,
        stimulus=study.stimuli.get(scene="owl", source=REAL),
        answered_at=timezone.now(),
    )
    positions = {voter: int(voter == voters[0]) for voter in voters}
    for (scene, source), judged_real in JUDGED_REAL.items():
        stimulus = study.stimuli.get(scene=scene, source=source)
        for index, voter in enumerate(voters):
            positions[voter] += 1
            Trial.objects.create(
                participant=voter,
                position=positions[voter],
                stimulus=stimulus,
                answer=REAL if index < judged_real else GENERATED,
                answered_at=timezone.now(),
            )
    return study


def urls(study):
    real_token = study.stimuli.get(scene="cat", source=REAL).token
    return [
        reverse("staff:gallery", args=[study.slug]),
        reverse("staff:gallery_figure", args=[study.slug, "png"]),
        reverse("staff:gallery_grayscale", args=[study.slug, real_token]),
    ]


def test_rows_carry_each_images_votes(gallery_study):
    rows = {row.scene: row for row in gallery_rows(gallery_study)}

    assert list(rows) == list(SCENES)
    for (scene, source), judged_real in JUDGED_REAL.items():
        image = rows[scene].image(source)
        assert (image.votes, image.judged_real) == (VOTES_PER_IMAGE, judged_real)
    assert rows["owl"].real.votes == 0 and rows["owl"].real.share is None


def test_practice_and_catch_scenes_are_left_out(build_study):
    study = build_study("pools", scenes=9, practice_trials=1, catch_trials=1, size=16)
    scored = set(study.stimuli.filter(pool=Pool.SCORED).values_list("scene", flat=True))

    assert len(scored) == 3
    assert {row.scene for row in gallery_rows(study)} == scored


@pytest.mark.parametrize(
    "sort, order",
    [("perceptual", ["dog", "owl", "cat"]), ("koalarization", ["owl", "dog", "cat"]), (REAL, ["dog", "cat", "owl"])],
)
def test_rows_sort_by_what_fools_most(gallery_study, sort, order):
    assert [row.scene for row in gallery_rows(gallery_study, sort)] == order


def test_page_shows_every_scene_and_source(gallery_study, staff_client):
    response = staff_client.get(reverse("staff:gallery", args=[gallery_study.slug]))

    assert response.status_code == 200
    html = response.content.decode()
    for stimulus in gallery_study.stimuli.all():
        assert reverse("staff:stimulus", args=[stimulus.token]) in html
    # Staff pages never use the participants' per-trial image route.
    assert reverse("turing:image", args=["x"])[:-1] not in html
    for stimulus in gallery_study.stimuli.filter(source=REAL):
        assert reverse("staff:gallery_grayscale", args=[gallery_study.slug, stimulus.token]) in html
    for scene in SCENES:
        assert f'<th scope="row">{scene}</th>' in html
    assert html.count("67%</span> real · n=3") == 2  # cat's real photo, owl by perceptual
    assert html.count("100%</span> real · n=3") == 3  # dog by perceptual, owl by koalarization, dog's real photo
    assert "—</span> real · n=0" in html


def test_page_sorted_by_a_model(gallery_study, staff_client):
    response = staff_client.get(reverse("staff:gallery", args=[gallery_study.slug]), {"sort": "perceptual"})
    html = response.content.decode()

    positions = [html.index(f'<th scope="row">{scene}</th>') for scene in ("dog", "owl", "cat")]
    assert positions == sorted(positions)


def test_unknown_sort_is_a_bad_request(gallery_study, staff_client):
    response = staff_client.get(reverse("staff:gallery", args=[gallery_study.slug]), {"sort": "<script>"})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_grayscale_is_the_real_photos_lightness(gallery_study, staff_client):
    real = gallery_study.stimuli.get(scene="dog", source=REAL)

    response = staff_client.get(reverse("staff:gallery_grayscale", args=[gallery_study.slug, real.token]))

    gray = Image.open(io.BytesIO(response.content))
    assert response["Content-Type"] == "image/png"
    assert (gray.mode, gray.size) == ("L", (real.width, real.height))
    generated = gallery_study.stimuli.get(scene="dog", source="perceptual")
    url = reverse("staff:gallery_grayscale", args=[gallery_study.slug, generated.token])
    assert staff_client.get(url).status_code == 404


def test_figure_has_one_row_per_scene(gallery_study):
    figure = study_gallery_figure(gallery_study, sort="perceptual")

    columns = 1 + len(gallery_study.model_names) + 1
    assert len(figure.axes) == len(SCENES) * columns
    assert [ax.get_ylabel() for ax in figure.axes[::columns]] == ["dog", "owl", "cat"]
    assert [ax.get_title() for ax in figure.axes[:columns]] == [
        "grayscale",
        "koalarization\n33% real (n=3)",
        "perceptual\n100% real (n=3)",
        "real\n100% real (n=3)",
    ]


def test_png_download_is_sized_for_every_scene(gallery_study, staff_client):
    response = staff_client.get(reverse("staff:gallery_figure", args=[gallery_study.slug, "png"]))

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert 'filename="gallery-study-gallery.png"' in response["Content-Disposition"]
    image = Image.open(io.BytesIO(response.content))
    expected_height = round((CELL_INCHES * len(SCENES) + CAPTION_INCHES) * FIGURE_DPI)
    assert image.size == (round(CELL_INCHES * 4 * FIGURE_DPI), expected_height)


def test_pdf_download_with_a_row_limit(gallery_study, staff_client):
    response = staff_client.get(reverse("staff:gallery_figure", args=[gallery_study.slug, "pdf"]), {"limit": 2})

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    width, height = map(float, re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+) *\]", response.content).groups())
    assert (width, height) == pytest.approx((CELL_INCHES * 4 * 72, (CELL_INCHES * 2 + CAPTION_INCHES) * 72))


def test_unknown_figure_format_is_not_found(gallery_study, staff_client):
    assert staff_client.get(reverse("staff:gallery_figure", args=[gallery_study.slug, "gif"])).status_code == 404


def test_anonymous_visitors_are_sent_to_login(gallery_study, client):
    for url in urls(gallery_study):
        response = client.get(url)
        assert response.status_code == 302 and reverse("admin:login") in response["Location"], url


def test_non_staff_users_are_refused(gallery_study, client):
    client.force_login(User.objects.create(username="participant"))

    for url in urls(gallery_study):
        assert client.get(url).status_code == 403, url


def test_gallery_modules_do_not_import_torch():
    code = (
        "import sys, django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'evalsite.settings'); "
        "django.setup(); import colorization.gallery, turing.staff.gallery, turing.staff.gallery_views; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)

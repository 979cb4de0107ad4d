"""Colorization metrics stored at import, and the report's section on whether they predict the fooling rate."""

import io
import math
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from PIL import Image
from scipy import stats

from colorization.metrics import image_metrics
from tests.turing.conftest import run_command
from turing.analysis.metric_correlation import (
    CORRELATION_COLUMNS,
    IMAGE_COLUMNS,
    MIN_IMAGES,
    image_table,
    metric_correlations,
)
from turing.analysis.metric_values import METRICS, from_stored, to_stored
from turing.models import Participant, Trial
from turing.report import cache, data
from turing.report.exports import neutralize_formulas
from turing.stimuli.importing import import_study
from turing.stimuli.metrics import MetricsError, fill_metrics, stored_metrics_frame
from turing.stimuli.normalize import stored_rgb
from turing.vocabulary import CATCH, REAL

pytestmark = pytest.mark.django_db


def test_every_generated_stimulus_gets_its_metrics_against_its_real_photo_at_import(build_study):
    study = build_study("measured", scenes=10, catch_trials=1)
    reals = {stimulus.scene: stimulus for stimulus in study.stimuli.filter(source=REAL)}
    generated = study.stimuli.exclude(source__in=(REAL, CATCH))
    assert generated.count() == 2 * 5
    for stimulus in generated:
        expected = image_metrics(stored_rgb(stimulus), stored_rgb(reals[stimulus.scene]))
        assert stimulus.metrics == pytest.approx(expected)
        assert set(stimulus.metrics) == set(METRICS)
        # A recolouring keeps the photo's structure: the metrics say it is close but not the photo.
        assert 10 < stimulus.metrics["psnr"] < math.inf and 0 < stimulus.metrics["ab_error"]
    assert not study.stimuli.filter(source__in=(REAL, CATCH)).exclude(metrics=None).exists()


def test_an_image_identical_to_its_photo_has_an_infinite_psnr_that_survives_the_json(image_folders, db):
    folders = image_folders(5, ("perceptual",), name="copy")
    copy = folders.root / "copy"
    shutil.copytree(folders.real, copy)
    study = import_study("copy", "Copy", folders.real, {"copy": copy, **folders.generated}, practice_trials=0)
    stored = study.stimuli.filter(source="copy").first().metrics
    # JSON (and PostgreSQL's jsonb) has no infinity: null in the database, +inf for the analysis.
    assert stored["psnr"] is None and stored["ab_error"] == 0 and stored["ssim"] == pytest.approx(1)
    assert from_stored(stored)["psnr"] == math.inf
    frame = stored_metrics_frame(study)
    assert (frame.loc[frame["model"] == "copy", "psnr"] == math.inf).all()
    assert np.isfinite(frame.loc[frame["model"] == "perceptual", "psnr"]).all()
    assert to_stored({"psnr": 31.5, "ssim": 0.9}) == {"psnr": 31.5, "ssim": 0.9}


def test_a_stimulus_that_cannot_be_read_is_named_and_nothing_is_saved(build_study):
    study = build_study("broken", scenes=5)
    stimulus = study.stimuli.get(source="perceptual", scene="scene02")
    study.stimuli.update(metrics=None)
    stimulus.image.storage.delete(stimulus.image.name)
    with pytest.raises(MetricsError, match=r"study 'broken': perceptual/scene02 \(stimuli/.*\.png\): cannot read"):
        fill_metrics(study)
    # All or nothing: the stimuli measured before the broken one were not saved either.
    assert not study.stimuli.exclude(metrics=None).exists()


def test_a_generated_stimulus_without_a_real_one_is_refused(build_study):
    study = build_study("orphan", scenes=5)
    study.stimuli.filter(source=REAL, scene="scene03").update(source="photo")
    study.stimuli.update(metrics=None)
    with pytest.raises(MetricsError, match=r"koalarization/scene03 .* has no real stimulus of its scene"):
        fill_metrics(study)


def images_frame(rates, metric_values, *, model="m", votes=10):
    """An image_table-like frame: one model's images with the given rates and the same values for every metric."""
    return pd.DataFrame(
        {
            "stimulus": [f"{model}{index}" for index in range(len(rates))],
            "scene": [f"s{index}" for index in range(len(rates))],
            "model": model,
            "votes": votes,
            "judged_real": np.rint(np.asarray(rates, dtype=float) * votes),
            "rate": rates,
            **{metric: metric_values for metric in METRICS},
        }
    )[IMAGE_COLUMNS]


def test_rates_in_the_order_of_a_metric_give_rho_one_and_say_why_there_is_no_interval():
    images = images_frame([0.1, 0.2, 0.35, 0.5, 0.6, 0.9], [20.0, 21.0, 23.0, 24.5, 26.0, 30.0])
    table = metric_correlations(images)
    assert list(table.columns) == CORRELATION_COLUMNS
    assert list(table["metric"]) == list(METRICS)
    assert table["rho"].to_numpy() == pytest.approx(1) and (table["images"] == 6).all() and (table["votes"] == 60).all()
    assert table["ci_low"].isna().all() and table["note"].str.contains("perfect rank order").all()
    reversed_order = metric_correlations(images.assign(rate=images["rate"][::-1].to_numpy()))
    assert reversed_order["rho"].to_numpy() == pytest.approx(-1)


def test_rho_is_spearmans_and_its_interval_is_seeded():
    rng = np.random.default_rng(5)
    psnr = rng.uniform(18, 30, 12)
    rates = np.clip((psnr - 18) / 12 + rng.normal(0, 0.25, 12), 0, 1).round(2)
    images = images_frame(rates, psnr)
    table = metric_correlations(images, seed=1)
    row = table.set_index("metric").loc["psnr"]
    assert row["rho"] == pytest.approx(stats.spearmanr(rates, psnr).statistic)
    assert -1 <= row["ci_low"] < row["rho"] < row["ci_high"] <= 1 and row["note"] == ""
    # Twelve images leave a wide interval, as the report says.
    assert row["ci_high"] - row["ci_low"] > 0.3
    pd.testing.assert_frame_equal(metric_correlations(images, seed=1), table)
    assert metric_correlations(images, seed=2).set_index("metric").loc["psnr", "ci_low"] != row["ci_low"]


def test_no_rho_below_five_images_nor_for_rates_or_metrics_all_equal():
    few = metric_correlations(images_frame([0.1, 0.5, 0.9, 0.3], [1.0, 2.0, 3.0, 4.0]))
    assert MIN_IMAGES == 5
    assert few["rho"].isna().all() and few["ci_low"].isna().all() and (few["images"] == 4).all()
    assert few["note"].str.contains("only 4 images with votes: a rank correlation needs at least 5").all()
    same_rate = metric_correlations(images_frame([0.5] * 6, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    assert same_rate["rho"].isna().all() and same_rate["note"].str.contains("judged real equally often").all()
    same_value = images_frame([0.1, 0.4, 0.3, 0.8, 0.6, 0.9], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).assign(colourfulness=0.0)
    table = metric_correlations(same_value).set_index("metric")
    assert math.isnan(table.loc["colourfulness", "rho"]) and "same value" in table.loc["colourfulness", "note"]
    assert table.loc["psnr", "rho"] == pytest.approx(stats.spearmanr(same_value["rate"], same_value["psnr"]).statistic)


def test_images_without_votes_or_metrics_are_not_counted():
    images = pd.concat(
        [
            images_frame([0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 2.0, 3.0, 4.0, 5.0]),
            images_frame([np.nan], [9.0], model="m", votes=0).assign(stimulus="unjudged", judged_real=0),
            images_frame([0.0], [np.nan], model="m").assign(stimulus="unmeasured"),
        ]
    )
    table = metric_correlations(images)
    assert (table["images"] == 5).all() and table["rho"].to_numpy() == pytest.approx(1)


def vote_by_psnr(study, model, scenes, voters=5):
    """``voters`` treatment participants judge ``model``'s images of ``scenes``: the image with the i-th lowest
    PSNR is judged real by i of them, so the judged-real share rises with PSNR (0, 1/5, 2/5, ...)."""
    stimuli = sorted(study.stimuli.filter(source=model, scene__in=scenes), key=lambda s: s.metrics["psnr"])
    people = [Participant.objects.create(study=study, label=f"{model}-{index}") for index in range(voters)]
    for rank, stimulus in enumerate(stimuli):
        for index, person in enumerate(people):
            Trial.objects.create(
                participant=person,
                position=rank + 1,
                stimulus=stimulus,
                answer=REAL if index < rank else "generated",
            )
    return stimuli


@pytest.fixture
def psnr_study(build_study):
    """6 scenes: perceptual judged on all 6 images in the order of their PSNR, koalarization on 3 only."""
    study = build_study("psnr", scenes=6)
    vote_by_psnr(study, "perceptual", [f"scene0{index}" for index in range(6)])
    vote_by_psnr(study, "koalarization", ["scene00", "scene01", "scene02"])
    return study


def test_a_study_whose_judged_real_share_rises_with_psnr_reports_rho_one(psnr_study):
    tables = cache.metric_tables(psnr_study)
    correlations = tables["metric_correlations_frame"].set_index(["model", "metric"])
    assert correlations.loc[("perceptual", "psnr"), "rho"] == pytest.approx(1)
    assert correlations.loc[("perceptual", "psnr"), "images"] == 6
    assert correlations.loc[("perceptual", "psnr"), "votes"] == 30
    # The other metrics are the data's own: Spearman's rho of the same rates against them.
    images = tables["metric_images_frame"]
    perceptual = images[images["model"] == "perceptual"]
    assert list(perceptual["rate"]) == [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    for metric in ("ssim", "ab_error", "colourfulness"):
        expected = stats.spearmanr(perceptual["rate"], perceptual[metric]).statistic
        assert correlations.loc[("perceptual", metric), "rho"] == pytest.approx(expected)
    koalarization = correlations.loc["koalarization"]
    assert koalarization["rho"].isna().all() and (koalarization["images"] == 3).all()
    assert tables["metric_images_total"] == 9


def test_the_report_section_shows_n_beside_every_rho_and_why_some_have_none(staff_client, psnr_study):
    page = staff_client.get(reverse("staff:report", args=["psnr"])).content.decode()
    section = page[page.index('<section id="metrics">') :]
    section = section[: section.index("</section>")]
    assert "Do the metrics predict what fools people?" in section
    assert section.count("n = 6") == len(METRICS) and section.count("n = 3") == len(METRICS)
    assert "<strong>1.00</strong>" in section and "perfect rank order" in section
    assert "only 3 images with votes: a rank correlation needs at least 5" in section
    assert reverse("staff:report_metrics_chart", args=["psnr"]) in section
    assert reverse("staff:export_metrics", args=["psnr"]) in page
    chart = staff_client.get(reverse("staff:report_metrics_chart", args=["psnr"]))
    assert chart["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(chart.content)) as image:
        # One row of panels per model, one column per metric: wider than tall.
        assert image.width > 2 * image.height > 0


def test_the_metrics_csv_has_every_generated_image_with_its_rate_and_metrics(staff_client, psnr_study, tmp_path):
    response = staff_client.get(reverse("staff:export_metrics", args=["psnr"]))
    assert response["Content-Disposition"] == 'attachment; filename="psnr-metrics.csv"'
    web = pd.read_csv(io.BytesIO(response.content))
    assert (
        list(web.columns) == IMAGE_COLUMNS == ["stimulus", "scene", "model", "votes", "judged_real", "rate", *METRICS]
    )
    assert len(web) == 12 and set(web["model"]) == {"perceptual", "koalarization"}
    unjudged = web[web["votes"] == 0]
    assert len(unjudged) == 3 and unjudged["rate"].isna().all() and unjudged["psnr"].notna().all()
    stored = pd.DataFrame(
        [{"stimulus": s.token, "psnr": s.metrics["psnr"]} for s in psnr_study.stimuli.exclude(metrics=None)]
    )
    # Tokens as every export writes them (one in 64 starts with "-", which a spreadsheet would run).
    stored = neutralize_formulas(stored).set_index("stimulus")["psnr"]
    for row in web.itertuples():
        assert row.psnr == pytest.approx(stored[row.stimulus])
    path = tmp_path / "metrics.csv"
    printed = run_command("study_report", "psnr", metrics_csv=str(path))
    pd.testing.assert_frame_equal(pd.read_csv(path), web)
    assert "Do the metrics predict what fools people?" in printed and "Wrote 12 images" in printed
    assert "a rank correlation needs at least 5" in printed


def test_bots_are_left_out_of_the_correlations_unless_asked_for(psnr_study):
    Participant.objects.filter(label__startswith="perceptual").update(kind=Participant.Kind.BOT)
    people = cache.metric_tables(psnr_study)["metric_correlations_frame"]
    assert set(people["model"]) == {"koalarization"}
    with_bots = cache.metric_tables(psnr_study, data.Selection(include_bots=True))
    assert set(with_bots["metric_correlations_frame"]["model"]) == {"koalarization", "perceptual"}


def test_a_study_without_stored_metrics_says_what_the_section_needs(staff_client, vote_study):
    study, _ = vote_study
    # alpha and beta have 6 judged images each, none measured (made with the ORM, without metrics).
    assert cache.metric_tables(study)["metric_correlations_frame"].empty
    page = " ".join(staff_client.get(reverse("staff:report", args=[study.slug])).content.decode().split())
    assert "Needs votes on generated images that have metrics." in page


def test_image_table_joins_the_per_image_rates_on_the_stimulus():
    stored = pd.DataFrame(
        {
            "stimulus": ["a", "b"],
            "scene": ["s1", "s2"],
            "model": ["m", "m"],
            **{metric: [1.0, 2.0] for metric in METRICS},
        }
    )
    per_image = pd.DataFrame({"stimulus": ["b", "x"], "votes": [4, 2], "judged_real": [3, 1], "rate": [0.75, 0.5]})
    table = image_table(per_image, stored)
    assert list(table["stimulus"]) == ["b", "a"]
    assert list(table["votes"]) == [4, 0] and table["rate"].iloc[0] == 0.75 and math.isnan(table["rate"].iloc[1])


def test_the_metric_names_and_their_json_need_no_django():
    # The analysis reads them where no model is loaded (turing.analysis runs outside the web site too).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, turing.analysis.metric_values; print('django' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"

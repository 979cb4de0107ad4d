import io
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse

from tests.turing.page_ids import dangling_describedby
from tests.turing.participant_steps import answer_all, current_trial, join, right_answer
from tests.turing.report_data import ALL_ANSWERS, TOTAL_VOTES
from turing import network, preregistration
from turing.models import Study
from turing.report import data
from turing.staff import urls
from turing.stimuli.building import manifest_of

pytestmark = pytest.mark.django_db


def url_arguments():
    """Values for the staff routes' URL parameters; a new route with another parameter must add it here."""
    study = Study.objects.get(slug="votes")
    return {"slug": study.slug, "fmt": "png", "token": study.stimuli.filter(source="real").first().token}


# Routes that change a study and answer POST only (tests/turing/test_study_management.py posts to them).
POST_ONLY = {"set_status"}
# Routes that answer with a file (image, CSV, figure), not a page with the staff bar.
FILES = {
    "stimulus",
    "report_chart",
    "report_metrics_chart",
    "export_votes",
    "export_summary",
    "export_metrics",
    "gallery_figure",
    "gallery_grayscale",
    "preregistration_json",
}
# Routes that answer 404 until the study's plan is frozen (tests/turing/test_preregistration.py freezes it).
NEEDS_FROZEN_PLAN = {"preregistration_json"}
# Part of a page, fetched by that page's script: HTML without the staff bar.
FRAGMENTS = {"dashboard_live"}


def staff_url_names():
    return [pattern.name for pattern in urls.urlpatterns if isinstance(pattern, URLPattern)]


def staff_page_names():
    return [name for name in staff_url_names() if name not in POST_ONLY]


def staff_url(name):
    pattern = next(p for p in urls.urlpatterns if p.name == name)
    parameters = pattern.pattern.converters
    arguments = url_arguments()
    unknown = set(parameters) - set(arguments)
    assert not unknown, f"staff:{name} takes {unknown}: add a value to url_arguments()"
    return reverse(f"staff:{name}", kwargs={key: arguments[key] for key in parameters})


@pytest.mark.parametrize("name", staff_url_names())
def test_anonymous_visitors_are_sent_to_the_admin_login(client, vote_study, name):
    url = staff_url(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login")) and "next=" in response["Location"]


@pytest.mark.parametrize("name", staff_url_names())
def test_users_without_staff_status_are_refused(client, vote_study, name):
    client.force_login(get_user_model().objects.create_user("participant"))
    assert client.get(staff_url(name)).status_code == 403


@pytest.mark.parametrize("name", staff_page_names())
def test_staff_see_every_page(staff_client, vote_study, name):
    if name in NEEDS_FROZEN_PLAN:
        study, _ = vote_study
        preregistration.freeze(
            study, preregistration.build_plan(study, target_participants=5, primary_analysis="fooling_rate")
        )
    response = staff_client.get(staff_url(name))
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("name", sorted(POST_ONLY))
def test_routes_that_change_a_study_refuse_get(staff_client, vote_study, name):
    assert staff_client.get(staff_url(name)).status_code == 405
    assert Study.objects.get(slug="votes").status == Study.Status.OPEN


@pytest.mark.parametrize("name", sorted(set(staff_page_names()) - FILES - FRAGMENTS))
def test_every_staff_page_has_a_log_out_form(staff_client, vote_study, name):
    response = staff_client.get(staff_url(name))
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    form = page[page.index('<form method="post" action="' + reverse("admin:logout")) :]
    form = form[: form.index("</form>")]
    assert 'name="csrfmiddlewaretoken"' in form and ">Log out</button>" in form
    assert f'name="next" value="{reverse("admin:login")}?next={reverse("staff:study_list")}"' in form


@pytest.mark.parametrize("name", sorted(set(staff_page_names()) - FILES))
def test_every_aria_describedby_on_a_staff_page_names_an_element_of_it(staff_client, vote_study, name):
    missing, _ = dangling_describedby(staff_client.get(staff_url(name)).content.decode())
    assert missing == []


def test_staff_urls_cover_the_contract():
    assert {
        "study_list",
        "dashboard",
        "dashboard_live",
        "report",
        "report_chart",
        "export_votes",
        "export_summary",
        "poster",
        "manage",
        "set_status",
    } <= set(staff_url_names())


def test_unknown_study_is_404(staff_client):
    assert staff_client.get(reverse("staff:report", args=["nope"])).status_code == 404


def test_study_list_shows_status_and_counts(staff_client, vote_study):
    page = staff_client.get(reverse("staff:study_list")).content.decode()
    assert "Votes votes" in page and "Open" in page
    assert f'<td class="num">{TOTAL_VOTES}</td>' in page
    assert '<td class="num">5</td>' in page  # participants
    assert reverse("staff:report", args=["votes"]) in page


def test_dashboard_shows_live_rates_and_updates_them_in_place(staff_client, vote_study):
    page = staff_client.get(reverse("staff:dashboard", args=["votes"])).content.decode()
    # No reload of the whole page (it would take keyboard focus away): dashboard.js fetches the figures alone.
    assert 'http-equiv="refresh"' not in page
    live_url = reverse("staff:dashboard_live", args=["votes"])
    assert f'data-url="{live_url}" data-refresh-ms="5000"' in page and "dashboard.js" in page
    assert "Pause updates" in page
    for html in (page, staff_client.get(live_url).content.decode()):
        assert f'id="total-votes">{TOTAL_VOTES}<' in html
        assert "real (control)" in html and "62.5%" in html and "16.7%" in html
    assert "<html" not in staff_client.get(live_url).content.decode()


def test_report_shows_every_section(staff_client, vote_study):
    page = staff_client.get(reverse("staff:report", args=["votes"])).content.decode()
    assert f'id="total-votes">{TOTAL_VOTES}<' in page
    for number in ("66.7%", "62.5%", "50.0%", "16.7%", "41.7%"):  # real, control, alpha, beta, HYPE alpha
        assert number in page
    for heading in (
        "Model against model",
        "Signal detection",
        "Which images fool most",
        "Participants' accuracy",
        "By self-reported expertise",
        "By button order: a position check",
        "How stimuli were chosen",
        "Model (treatment group)",
    ):
        assert heading in page
    assert "Scenes drawn at random with seed 3." in page
    assert "No p-value with 2 control participants:" in page  # the interval is shown, the p-value withheld
    alpha_s3 = vote_study[0].stimuli.get(source="alpha", scene="s3").token
    assert reverse("staff:stimulus", args=[alpha_s3]) in page  # thumbnail in "which images fool most"
    assert f'src="{reverse("staff:report_chart", args=["votes"])}"' in page
    assert reverse("staff:export_votes", args=["votes"]) in page
    assert reverse("staff:export_summary", args=["votes"]) in page


def test_report_chart_is_a_png(staff_client, vote_study):
    response = staff_client.get(reverse("staff:report_chart", args=["votes"]))
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n") and len(response.content) > 2000


def test_pages_of_a_study_without_votes(staff_client):
    Study.objects.create(slug="fresh", title="Fresh")
    for name in ("dashboard", "dashboard_live", "report", "report_chart", "export_votes", "export_summary", "manage"):
        assert staff_client.get(reverse(f"staff:{name}", args=["fresh"])).status_code == 200
    assert 'id="total-votes">0<' in staff_client.get(reverse("staff:report", args=["fresh"])).content.decode()


def test_votes_export_is_the_long_format(staff_client, vote_study):
    response = staff_client.get(reverse("staff:export_votes", args=["votes"]))
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="votes-votes.csv"' in response["Content-Disposition"]
    votes = pd.read_csv(io.BytesIO(response.getvalue()))
    assert list(votes.columns) == data.VOTE_COLUMNS and len(votes) == TOTAL_VOTES
    assert set(votes["kind"]) == {"scored"}
    response = staff_client.get(reverse("staff:export_votes", args=["votes"]), {"all": "1"})
    every_kind = pd.read_csv(io.BytesIO(response.getvalue()))
    assert len(every_kind) == ALL_ANSWERS and set(every_kind["kind"]) == {"scored", "practice", "catch"}


def test_summary_export(staff_client, vote_study):
    summary = pd.read_csv(io.BytesIO(staff_client.get(reverse("staff:export_summary", args=["votes"])).content))
    assert list(summary.columns) == data.SUMMARY_COLUMNS
    assert summary["source"].tolist() == ["real", "real", "alpha", "beta", "gamma"]
    assert summary["group"].tolist() == ["treatment", "control", "treatment", "treatment", "treatment"]
    assert summary.set_index(["source", "group"]).loc[("alpha", "treatment"), "rate"] == pytest.approx(0.5)


def test_staff_see_stimuli_by_token_and_participant_image_urls_do_not_serve_them(staff_client, vote_study):
    stimulus = vote_study[0].stimuli.get(source="alpha", scene="s3")
    response = staff_client.get(reverse("staff:stimulus", args=[stimulus.token]))
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == stimulus.image.open("rb").read()
    # The participants' image route takes a trial's own token; a stimulus token is nothing to it.
    assert staff_client.get(reverse("turing:image", args=[stimulus.token])).status_code == 404
    assert staff_client.get(reverse("staff:stimulus", args=["no-such-token"])).status_code == 404


def test_poster_has_the_join_url_and_its_qr_code(staff_client, vote_study):
    page = staff_client.get(reverse("staff:poster", args=["votes"])).content.decode()
    join_url = "http://testserver" + reverse("turing:join", args=["votes"])
    assert join_url in page
    assert "http://testserver" + reverse("turing:kiosk", args=["votes"]) in page
    assert "<svg" in page and 'class="segno"' in page


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "127.0.1.1:8000"])
def test_a_poster_opened_on_the_laptop_itself_shows_its_network_address(staff_client, vote_study, monkeypatch, host):
    monkeypatch.setattr(network, "lan_address", lambda: "192.168.1.20")
    page = staff_client.get(reverse("staff:poster", args=["votes"]), HTTP_HOST=host).content.decode()
    assert "http://192.168.1.20:8000" + reverse("turing:join", args=["votes"]) in page
    assert "localhost" not in page and "127.0." not in page and "no network address" not in page

    monkeypatch.setattr(network, "lan_address", lambda: None)
    page = staff_client.get(reverse("staff:poster", args=["votes"]), HTTP_HOST=host).content.decode()
    assert f"http://{host}" in page and "no phone can open" in page


def test_an_unchanged_report_is_read_from_the_cache_and_a_vote_refreshes_it(client, staff_client, small_study):
    url = reverse("staff:dashboard", args=[small_study.slug])
    participant = join(client, small_study)
    assert staff_client.get(url).context["participation"]["votes"] == 0
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(url)
    # The session, the user, the study and the cache key's one aggregate: no vote is read.
    assert not any("turing_trial" in query["sql"] for query in queries.captured_queries)

    answer_all(client, small_study)
    scored = participant.trials.filter(kind="scored").count()
    assert staff_client.get(url).context["participation"]["votes"] == scored > 0


def test_every_answer_is_counted_once_for_the_cache_key(client, small_study):
    participant = join(client, small_study)
    data, trial = current_trial(client, small_study)
    # A double tap sends the same answer twice: one answer.
    for _ in range(2):
        client.post(data["vote_url"], {"answer": right_answer(trial)})
    participant.refresh_from_db()
    assert participant.answer_count == 1
    answer_all(client, small_study)
    participant.refresh_from_db()
    assert participant.answer_count == participant.trials.exclude(answer="").count() > 1


def test_a_control_group_of_one_gets_no_test_and_is_told_why(staff_client, vote_study):
    _, participants = vote_study
    participants["c2"].delete()
    page = staff_client.get(reverse("staff:report", args=["votes"]))
    versus = page.context["treatment_vs_control"]
    assert versus["votes_control"] == 4 and versus["p_value"] is None and versus["ci_low"] is None
    assert "No interval or p-value yet:" in page.content.decode()


def test_few_people_and_few_scenes_are_flagged_beside_the_model_pairs(staff_client, vote_study):
    page = staff_client.get(reverse("staff:report", args=["votes"]))
    assert page.context["few_people_and_scenes"] and "Few participants and few scenes:" in page.content.decode()


def test_a_title_with_mathtext_characters_draws_literally(staff_client, vote_study):
    study, _ = vote_study
    Study.objects.filter(pk=study.pk).update(title=r"Real or $x^$ a_b \ fake?")
    assert staff_client.get(reverse("staff:report_chart", args=["votes"])).status_code == 200
    figure = staff_client.get(reverse("staff:gallery_figure", args=["votes", "png"]))
    assert figure.status_code == 200 and figure["Content-Type"] == "image/png"


def test_report_provenance_of_a_built_study_names_files_not_temporary_paths(staff_client, build_study, tmp_path):
    # The manifest exactly as build_study writes it, on paths under pytest's temporary directory; import_study
    # adds its own record of the (temporary) folders it read.
    photos = tmp_path / "photos"
    scenes = [photos / "nested" / f"scene{i:02d}.png" for i in range(4)]
    split = SimpleNamespace(root=photos, heldout=scenes + [photos / "other.png"])
    checkpoints = {name: tmp_path / "runs" / name / "last.pt" for name in ("perceptual", "koalarization")}
    stored = {
        name: {"model_name": name, "model_kwargs": {"width": 0.125}, "step": 7, "config": {"seed": 5}}
        for name in checkpoints
    }
    manifest = manifest_of(tmp_path / "split", split, scenes, 3, 32, checkpoints, stored, {})
    study = build_study("built", scenes=4, manifest=manifest)
    assert str(tmp_path) in str(study.manifest)  # what the report must not show

    page = staff_client.get(reverse("staff:report", args=[study.slug])).content.decode()
    assert str(tmp_path) not in page and "pytest-of" not in page
    section = page[page.index("How stimuli were chosen") :]
    runs = section[section.index('<table class="data provenance-runs">') : section.index("</table>")]
    assert runs.count("<code>last.pt</code>") == 2 and '<td class="num">7</td><td class="num">5</td>' in runs
    assert '<th scope="row">Split</th>' in section and "<td>split</td>" in section
    assert "scene00.png, scene01.png" in section  # scene files by name, without the folders
    assert "<strong>perceptual:</strong> perceptual" in section  # the colorized folder, by name
    assert "{" not in section and "}" not in section  # no raw JSON
    assert str(Path(manifest["split"]).parent) not in page

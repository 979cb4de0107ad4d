"""Headers every response carries."""

import pytest

from tests.turing.participant_steps import join

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/healthz", "/admin/login/"])
def test_every_page_denies_camera_microphone_and_location(client, path):
    policy = client.get(path)["Permissions-Policy"]
    assert "camera=()" in policy and "microphone=()" in policy and "geolocation=()" in policy


def test_the_session_and_csrf_cookies_are_out_of_reach_of_scripts(client, settings):
    page = client.get("/admin/login/")
    csrf = page.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax"
    assert settings.SESSION_COOKIE_HTTPONLY and settings.SESSION_COOKIE_SAMESITE == "Lax"


def test_every_page_forbids_inline_scripts_and_styles_but_the_trials_own(client, small_study):
    first, second = client.get("/admin/login/"), client.get("/admin/login/")
    policy = first["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert policy != second["Content-Security-Policy"]  # a fresh nonce each time
    small_study.exposure_ms = 1500
    small_study.save()
    join(client, small_study)
    trial = client.get(f"/s/{small_study.slug}/trial/")
    nonce = trial["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    page = trial.content.decode()
    assert f'<style nonce="{nonce}">.stimulus {{ --exposure: 1500ms; }}</style>' in page
    assert "<script>" not in page and 'style="' not in page

"""The deployment checks (turing.checks): manage.py check --deploy and the WSGI start-up run the same ones."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from evalsite.startup import check_deployment

MANIFEST_STORAGE = {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}


@pytest.fixture
def manifest_storage(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": MANIFEST_STORAGE}
    return tmp_path / "staticfiles.json"


def test_the_start_up_stops_with_what_to_do_until_collectstatic_has_run(manifest_storage):
    with pytest.raises(ImproperlyConfigured) as raised:
        check_deployment()
    assert str(raised.value) == (
        f"no static files manifest at {manifest_storage}: run `python manage.py collectstatic --noinput` with these "
        "settings before starting the server (manage.py serve does it for you)"
    )
    manifest_storage.write_text('{"paths": {}, "version": "1.1"}')
    check_deployment()


def test_check_deploy_runs_the_same_check(manifest_storage):
    with pytest.raises(SystemCheckError, match=r"\(turing\.E001\) no static files manifest"):
        call_command("check", deploy=True)
    # Not a check of every start of manage.py: a development checkout has no collected files.
    call_command("check")


def test_without_a_manifest_storage_there_is_nothing_to_collect(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    check_deployment()

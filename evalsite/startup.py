"""What a WSGI server does once at start-up: checks, so that a deployment mistake stops the server with a
message instead of answering every page with a 500, and the imports every worker needs."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages
from django.urls import get_resolver


def check_static_manifest():
    """Raise if the static files storage needs collectstatic's manifest and there is none."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return
    manifest = Path(settings.STATIC_ROOT) / storage.manifest_name
    if not manifest.is_file():
        raise ImproperlyConfigured(
            f"no static files manifest at {manifest}: run `python manage.py collectstatic --noinput` with these "
            "settings before starting the server (manage.py serve does it for you)"
        )


def import_views():
    """Import the URLconf and with it every view (numpy, scipy and pandas come along) now rather than on a
    worker's first request: under gunicorn --preload the workers then fork with all of it loaded."""
    get_resolver().url_patterns  # noqa: B018 (the attribute is loaded on first access)

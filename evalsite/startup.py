"""Checks a WSGI server runs once at start-up, so that a deployment mistake stops the server with a message
instead of answering every page with a 500."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages


def check_static_manifest():
    """Raise if the static files storage needs collectstatic's manifest and there is none."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return
    manifest = Path(settings.STATIC_ROOT) / storage.manifest_name
    if not manifest.is_file():
        raise ImproperlyConfigured(
            f"no static files manifest at {manifest}: run `python manage.py collectstatic --noinput` with these "
            "settings before starting the server (manage.py serve does it for you)")

"""Django system checks of a deployment, so that a mistake stops the server with what to do instead of
answering every page with a 500.

They are tagged STARTUP and registered as deployment checks (turing.apps), so ``manage.py check --deploy``
runs them, and the WSGI start-up runs the same ones and refuses to start on an error (evalsite.startup).
"""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core import checks
from django.core.files.storage import storages

# The tag of the checks a server must pass to start.
STARTUP = "startup"


def static_manifest(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """An error if the static files storage needs collectstatic's manifest and there is none: every page
    that names a static file would fail."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return []
    manifest = Path(settings.STATIC_ROOT) / storage.manifest_name
    if manifest.is_file():
        return []
    return [
        checks.Error(
            f"no static files manifest at {manifest}",
            hint="run `python manage.py collectstatic --noinput` with these settings before starting the server "
            "(manage.py serve does it for you)",
            id="turing.E001",
        )
    ]

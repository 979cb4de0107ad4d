"""What a WSGI server does once at start-up: the deployment checks (turing.checks), so that a deployment mistake
stops the server with a message instead of answering every page with a 500, and the imports every worker needs."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_resolver

from turing.checks import STARTUP


def check_deployment():
    """Raise ImproperlyConfigured, saying what to do, if a start-up check fails (those `manage.py check --deploy`
    runs too)."""
    errors = [
        message for message in checks.run_checks(include_deployment_checks=True, tags=[STARTUP]) if message.is_serious()
    ]
    if errors:
        raise ImproperlyConfigured(
            "\n".join(f"{error.msg}: {error.hint}" if error.hint else error.msg for error in errors)
        )


def import_views():
    """Import the URLconf and with it every view (numpy, scipy and pandas come along) now rather than on a
    worker's first request: under gunicorn --preload the workers then fork with all of it loaded."""
    get_resolver().url_patterns  # noqa: B018 (the attribute is loaded on first access)

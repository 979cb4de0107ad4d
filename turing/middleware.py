"""Middleware: a database outage answered as one (503 with a retry, never a bare "Server Error (500)"), and
the Content-Security-Policy and Permissions-Policy headers."""

import secrets
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

RETRY_SECONDS = 3


def database_unavailable(request, exception):
    """The 503 for a request that failed because the database does not answer, or None for any other error:
    JSON with ``retry`` for participant.js, which sends the same request again (a vote stored before the
    failure is then accepted as the repeat it is), and otherwise a page that reloads itself."""
    if not isinstance(exception, (OperationalError, InterfaceError)):
        return None
    headers = {"Retry-After": str(RETRY_SECONDS), "Cache-Control": "no-store"}
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"retry": True, "retry_seconds": RETRY_SECONDS}, status=503, headers=headers)
    # Rendered without the request: context processors would ask the database for the user.
    page = render_to_string("turing/unavailable.html", {"retry_seconds": RETRY_SECONDS})
    return HttpResponse(page, status=503, headers=headers)


class DatabaseUnavailableMiddleware:
    """A view that fails because the database does not answer gets database_unavailable's 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_unavailable(request, exception)


def server_error(request):
    """handler500: the 503 of database_unavailable for an outage met outside a view (saving the session after
    a join, say), Django's own 500 page for anything else. Django calls it while handling the exception."""
    return database_unavailable(request, sys.exc_info()[1]) or defaults.server_error(request)


# Nothing here needs a camera, microphone, location or payment: a page that asked would be an injected one.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response, and on pages a Content-Security-Policy: scripts and styles from
    this site's own files only, no inline code, so an injected <script> or style attribute does nothing. The
    one inline style (a trial's exposure time) carries request.csp_nonce, made afresh for every response.
    Images may be data: URLs (the favicon); forms post here only; no page may be framed, except the MTurk pages
    that set response.csp_overrides."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        # Pages only: on an image the policy would do nothing, and its nonce would make two images' headers
        # differ (tests/turing/participant/test_votes.py checks that nothing about an image tells its source).
        if response.get("Content-Type", "").startswith("text/html"):
            directives = {
                "default-src": "'self'",
                "script-src": "'self'",
                "style-src": f"'self' 'nonce-{request.csp_nonce}'",
                "img-src": "'self' data:",
                "object-src": "'none'",
                "base-uri": "'none'",
                "frame-ancestors": "'none'",
                "form-action": "'self'",
                # A view may widen a directive for its own response: MTurk's pages
                # (turing.participant.views.frameable_by_mturk).
                **getattr(response, "csp_overrides", {}),
            }
            response.headers.setdefault(
                "Content-Security-Policy", "; ".join(f"{name} {value}" for name, value in directives.items())
            )
        return response

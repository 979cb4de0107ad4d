"""Middleware: a database outage answered as one (503 with a retry, never a bare "Server Error (500)"), and
the Permissions-Policy header."""

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

RETRY_SECONDS = 3


class DatabaseUnavailableMiddleware:
    """A view that fails because the database does not answer gets a 503: JSON with ``retry`` for
    participant.js, which sends the same request again (a vote stored before the failure is then accepted
    as the repeat it is), and otherwise a page that reloads itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        headers = {"Retry-After": str(RETRY_SECONDS), "Cache-Control": "no-store"}
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"retry": True, "retry_seconds": RETRY_SECONDS}, status=503, headers=headers)
        # Rendered without the request: context processors would ask the database for the user.
        page = render_to_string("turing/unavailable.html", {"retry_seconds": RETRY_SECONDS})
        return HttpResponse(page, status=503, headers=headers)


# Nothing here needs a camera, microphone, location or payment: a page that asked would be an injected one.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer", "microphone",
    "payment", "usb"))


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response

"""Access to the staff pages."""

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.views.decorators.cache import never_cache


def staff_required(view):
    """Anonymous visitors are sent to the admin login, logged-in users without staff status get 403."""

    # Not Django's staff_member_required: it would send a logged-in non-staff user to the login again.
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not request.user.is_staff:
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)

    return never_cache(wrapped)

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from turing.health import healthz

# A database outage met after the view (the session saved on the way out) is a 503 too, never a bare 500.
handler500 = "turing.middleware.server_error"

urlpatterns = [
    # Participants arrive on a study's own short URL; whoever opens the bare address is the researcher.
    path("", RedirectView.as_view(pattern_name="staff:study_list"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("staff/", include("turing.staff.urls")),
    path("", include("turing.participant.urls")),
]

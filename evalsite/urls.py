from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("staff/", include("turing.staff_urls")),
    path("", include("turing.urls")),
]


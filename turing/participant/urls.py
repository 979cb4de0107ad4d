from django.urls import path

from turing.participant import views

app_name = "turing"

urlpatterns = [
    # Short on purpose: this is the URL behind the poster's QR code.
    path("s/<slug:slug>/", views.join, name="join"),
    path("s/<slug:slug>/kiosk/", views.kiosk, name="kiosk"),
    path("s/<slug:slug>/new/", views.new_participant, name="new_participant"),
    path("s/<slug:slug>/trial/", views.trial, name="trial"),
    path("s/<slug:slug>/vote/<int:trial_id>/", views.vote, name="vote"),
    path("s/<slug:slug>/practice/<int:trial_id>/", views.feedback, name="feedback"),
    path("s/<slug:slug>/done/", views.finish, name="finish"),
    # One URL per trial (Trial.image_token), never per stimulus.
    path("img/<str:token>", views.image, name="image"),
]

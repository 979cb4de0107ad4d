from django.urls import path

from turing.staff import gallery_views, leaderboard_views, plan_views, preregistration_views, views

app_name = "staff"
urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("plan/", plan_views.plan, name="plan"),
    path("leaderboard/", leaderboard_views.leaderboard_page, name="leaderboard"),
    path("stimulus/<str:token>.png", views.stimulus_image, name="stimulus"),
    path("<slug:slug>/manage/", views.manage, name="manage"),
    path("<slug:slug>/status/", views.set_status, name="set_status"),
    path("<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
    path("<slug:slug>/dashboard/live/", views.dashboard_live, name="dashboard_live"),
    path("<slug:slug>/report/", views.report, name="report"),
    path("<slug:slug>/report/chart.png", views.report_chart, name="report_chart"),
    path("<slug:slug>/export/votes.csv", views.export_votes, name="export_votes"),
    path("<slug:slug>/export/summary.csv", views.export_summary, name="export_summary"),
    path("<slug:slug>/report/metrics.png", views.report_metrics_chart, name="report_metrics_chart"),
    path("<slug:slug>/export/metrics.csv", views.export_metrics, name="export_metrics"),
    path("<slug:slug>/poster/", views.poster, name="poster"),
    path("<slug:slug>/preregistration/", preregistration_views.freeze, name="preregistration"),
    path("<slug:slug>/preregistration.json", preregistration_views.plan_json, name="preregistration_json"),
    path("<slug:slug>/gallery/", gallery_views.gallery_page, name="gallery"),
    path("<slug:slug>/gallery/figure.<str:fmt>", gallery_views.gallery_figure, name="gallery_figure"),
    path("<slug:slug>/gallery/grayscale/<str:token>.png", gallery_views.gallery_grayscale, name="gallery_grayscale"),
]

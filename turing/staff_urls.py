from django.urls import path

from turing import gallery_views, leaderboard_views, plan_views, preregistration_views, staff_views

app_name = "staff"
urlpatterns = [
    path("", staff_views.study_list, name="study_list"),
    path("plan/", plan_views.plan, name="plan"),
    path("leaderboard/", leaderboard_views.leaderboard_page, name="leaderboard"),
    path("stimulus/<str:token>.png", staff_views.stimulus_image, name="stimulus"),
    path("<slug:slug>/manage/", staff_views.manage, name="manage"),
    path("<slug:slug>/status/", staff_views.set_status, name="set_status"),
    path("<slug:slug>/dashboard/", staff_views.dashboard, name="dashboard"),
    path("<slug:slug>/dashboard/live/", staff_views.dashboard_live, name="dashboard_live"),
    path("<slug:slug>/report/", staff_views.report, name="report"),
    path("<slug:slug>/report/chart.png", staff_views.report_chart, name="report_chart"),
    path("<slug:slug>/export/votes.csv", staff_views.export_votes, name="export_votes"),
    path("<slug:slug>/export/summary.csv", staff_views.export_summary, name="export_summary"),
    path("<slug:slug>/report/metrics.png", staff_views.report_metrics_chart, name="report_metrics_chart"),
    path("<slug:slug>/export/metrics.csv", staff_views.export_metrics, name="export_metrics"),
    path("<slug:slug>/poster/", staff_views.poster, name="poster"),
    path("<slug:slug>/preregistration/", preregistration_views.freeze, name="preregistration"),
    path("<slug:slug>/preregistration.json", preregistration_views.plan_json, name="preregistration_json"),
    path("<slug:slug>/gallery/", gallery_views.gallery_page, name="gallery"),
    path("<slug:slug>/gallery/figure.<str:fmt>", gallery_views.gallery_figure, name="gallery_figure"),
    path("<slug:slug>/gallery/grayscale/<str:token>.png", gallery_views.gallery_grayscale, name="gallery_grayscale"),
]

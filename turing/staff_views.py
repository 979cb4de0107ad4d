"""Staff pages: study list, live dashboard, report with chart, CSV exports, poster with QR code.

Every view is wrapped in ``staff_required``: anonymous visitors are sent to the admin login, logged-in
users without staff status get 403 (Django's staff_member_required would send them to the login again).
"""

from functools import wraps

import segno
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache

from turing import reporting
from turing.charts import fooling_rate_chart
from turing.models import Stimulus, Study

DASHBOARD_REFRESH_SECONDS = 5


def staff_required(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not request.user.is_staff:
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)

    return never_cache(wrapped)


@staff_required
def study_list(request):
    # A handful of counting queries per study: researchers have tens of studies, not thousands.
    studies = [(study, reporting.participation(study)) for study in Study.objects.all()]
    return render(request, "turing/staff/study_list.html", {"studies": studies})


def selection(request, *, all_kinds=False):
    """The report's switches from the query string: ?bots=1 counts rehearsal bots, ?exclude_failed=1 leaves
    out participants who failed an attention check, ?all=1 (exports only) adds practice and catch trials."""
    return reporting.Selection(
        include_bots=request.GET.get("bots") == "1",
        exclude_failed_checks=request.GET.get("exclude_failed") == "1",
        kinds=reporting.ALL_KINDS if all_kinds and request.GET.get("all") == "1" else (reporting.SCORED,),
    )


@staff_required
def dashboard(request, slug):
    study = get_object_or_404(Study, slug=slug)
    tables = reporting.report_tables(study)
    return render(request, "turing/staff/dashboard.html", {
        "study": study,
        "participation": tables["participation"],
        "summary": tables["summary"],
        "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
    })


@staff_required
def report(request, slug):
    study = get_object_or_404(Study, slug=slug)
    context = reporting.build_report(study, selection(request))
    context["query"] = request.GET.urlencode()
    return render(request, "turing/staff/report.html", context)


@staff_required
def report_chart(request, slug):
    study = get_object_or_404(Study, slug=slug)
    summary = reporting.study_summary(study, selection(request))
    return HttpResponse(fooling_rate_chart(summary, study.title), content_type="image/png")


def _csv_download(slug, kind, write, chosen):
    study = get_object_or_404(Study, slug=slug)
    response = HttpResponse(content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{study.slug}-{kind}.csv"'})
    write(study, response, chosen)
    return response


@staff_required
def export_votes(request, slug):
    return _csv_download(slug, "votes", reporting.write_votes_csv, selection(request, all_kinds=True))


@staff_required
def export_summary(request, slug):
    return _csv_download(slug, "summary", reporting.write_summary_csv, selection(request))


@staff_required
def poster(request, slug):
    study = get_object_or_404(Study, slug=slug)
    join_url = request.build_absolute_uri(reverse("turing:join", args=[study.slug]))
    kiosk_url = request.build_absolute_uri(reverse("turing:kiosk", args=[study.slug]))
    # segno writes the SVG itself from the URL alone; nothing user-supplied is interpolated into markup.
    qr_svg = mark_safe(segno.make(join_url, error="m").svg_inline(scale=10, omitsize=True, light="#fff"))
    return render(request, "turing/staff/poster.html",
                  {"study": study, "join_url": join_url, "kiosk_url": kiosk_url, "qr_svg": qr_svg})


@staff_required
def stimulus_image(request, token):
    """A stimulus PNG by its token, for the gallery, report and admin; participants never see these URLs."""
    stimulus = get_object_or_404(Stimulus, token=token)
    return FileResponse(stimulus.image.open("rb"), content_type="image/png")

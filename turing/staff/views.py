"""Staff pages: study list, live dashboard, report with charts, CSV exports, poster with QR code, and
managing a study (open, close, archive, target number of participants).

Every view is wrapped in ``staff_required``: anonymous visitors are sent to the admin login, logged-in
users without staff status get 403 (Django's staff_member_required would send them to the login again).
"""

import segno
from django.contrib import messages
from django.http import FileResponse, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from turing import preregistration
from turing.models import Stimulus, Study
from turing.network import LOOPBACK_WARNING, phone_url
from turing.participant.crowd import VIA_PARAMETER, VIA_POSTER
from turing.protocols import protocol_of
from turing.report.cache import live_tables, metric_tables, report_tables, study_summary
from turing.report.data import Selection, headline_counts, participation
from turing.report.exports import votes_csv, write_metrics_csv, write_summary_csv
from turing.report.html import page_sections
from turing.staff.charts import fooling_rate_chart, metric_scatter_chart
from turing.staff.decorators import staff_required
from turing.staff.forms import StudyStatusForm, StudyTargetForm
from turing.vocabulary import SCORED, TRIAL_KINDS

DASHBOARD_REFRESH_SECONDS = 5


def progress(study, counts):
    """People started and finished against the study's target number of participants, None without a target.
    Bar widths are whole percent, at most 100: they become SVG attributes, because a width in a style attribute
    would need 'unsafe-inline' in the Content-Security-Policy."""
    target = study.target_participants
    if not target:
        return None
    started, finished = counts["started"], counts["finished"]
    return {
        "target": target,
        "started": started,
        "finished": finished,
        "reached": finished >= target,
        "started_width": min(100, round(100 * started / target)),
        "finished_width": min(100, round(100 * finished / target)),
    }


@staff_required
def study_list(request):
    # Archived studies are kept (their data stay) but off the list, unless ?archived=1 asks for them alone.
    show_archived = request.GET.get("archived") == "1"
    archived = Study.objects.filter(status=Study.Status.ARCHIVED)
    shown = archived if show_archived else Study.objects.exclude(status=Study.Status.ARCHIVED)
    # A handful of counting queries per study: researchers have tens of studies, not thousands.
    rows = []
    for study in shown:
        counts = participation(study)
        rows.append({"study": study, "counts": counts, "progress": progress(study, counts)})
    return render(
        request,
        "turing/staff/study_list.html",
        {
            "rows": rows,
            "show_archived": show_archived,
            "archived_count": archived.count(),
        },
    )


def _next_page(request, default):
    """Where a form goes back to: its ``next`` field if that is a page of this site, else ``default``."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@staff_required
@require_POST
def set_status(request, slug):
    """A status button: open, close or archive a study. Participants' pages refuse any study that is not open."""
    study = get_object_or_404(Study, slug=slug)
    form = StudyStatusForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown status.")
    study.status = form.cleaned_data["status"]
    # Through Study.save, which refuses design changes once people joined (status is not one), and only the
    # status: saving every field could undo an edit made meanwhile in the admin.
    study.save(update_fields=["status"])
    messages.success(request, f"“{study.title}” is now {study.get_status_display().lower()}.")
    return redirect(_next_page(request, default=reverse("staff:study_list")))


@staff_required
@require_http_methods(["GET", "HEAD", "POST"])
def manage(request, slug):
    """A study's status buttons, and the form for its target number of participants with the progress to it."""
    study = get_object_or_404(Study, slug=slug)
    form = StudyTargetForm(request.POST if request.method == "POST" else None, instance=study)
    if form.is_bound and form.is_valid():
        form.save(commit=False)
        study.save(update_fields=["target_participants"])
        target = study.target_participants
        messages.success(request, f"Target set to {target} participants." if target else "Target removed.")
        return redirect("staff:manage", study.slug)
    counts = participation(study)
    return render(
        request,
        "turing/staff/manage.html",
        {
            "study": study,
            "form": form,
            "counts": counts,
            "progress": progress(study, counts),
        },
    )


def selection(request, *, all_kinds=False):
    """The report's switches from the query string: ?bots=1 counts rehearsal bots, ?exclude_failed=1 leaves
    out participants who failed an attention check, ?all=1 (exports only) adds practice and catch trials."""
    return Selection(
        include_bots=request.GET.get("bots") == "1",
        exclude_failed_checks=request.GET.get("exclude_failed") == "1",
        kinds=TRIAL_KINDS if all_kinds and request.GET.get("all") == "1" else (SCORED,),
    )


def dashboard_context(study: Study) -> dict[str, object]:
    tables = live_tables(study)
    return {
        "study": study,
        "participation": tables["participation"],
        "headline": tables["headline"],
        "progress": progress(study, tables["participation"]),
        "summary": tables["summary"],
        "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
    }


@staff_required
def dashboard(request, slug):
    return render(request, "turing/staff/dashboard.html", dashboard_context(get_object_or_404(Study, slug=slug)))


@staff_required
def dashboard_live(request, slug):
    """The dashboard's figures alone, which dashboard.js fetches every DASHBOARD_REFRESH_SECONDS."""
    return render(request, "turing/staff/_live.html", dashboard_context(get_object_or_404(Study, slug=slug)))


@staff_required
def report(request, slug):
    study = get_object_or_404(Study, slug=slug)
    chosen = selection(request)
    context = {
        "study": study,
        "selection": chosen,
        "protocol": protocol_of(study),
        # The header's counts, and the tables the sections were drawn from.
        **report_tables(study, chosen),
        "sections": page_sections(study, chosen),
        "query": request.GET.urlencode(),
    }
    # Progress to the target counts the people who took part, whatever the report's switches add or leave out
    # (two counting queries then, not a second report).
    people = context["participation"]
    if chosen != Selection():
        headline = headline_counts(study)
        people = {"started": headline["started"]["total"], "finished": headline["finished"]["total"]}
    context["progress"] = progress(study, people)
    context["preregistration"] = preregistration.status(study, chosen)
    return render(request, "turing/staff/report.html", context)


@staff_required
def report_chart(request, slug):
    study = get_object_or_404(Study, slug=slug)
    summary = study_summary(study, selection(request))
    return HttpResponse(fooling_rate_chart(summary, study.title), content_type="image/png")


@staff_required
def report_metrics_chart(request, slug):
    study = get_object_or_404(Study, slug=slug)
    tables = metric_tables(study, selection(request))
    chart = metric_scatter_chart(tables["metric_images_frame"], tables["metric_correlations_frame"], study.title)
    return HttpResponse(chart, content_type="image/png")


def _csv_download(study, kind, response_class=HttpResponse, **content):
    return response_class(
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{study.slug}-{kind}.csv"'},
        **content,
    )


@staff_required
def export_votes(request, slug):
    # Streamed from the database as it is read: the votes of a large study never sit in memory at once.
    study = get_object_or_404(Study, slug=slug)
    rows = votes_csv(study, selection(request, all_kinds=True))
    return _csv_download(study, "votes", StreamingHttpResponse, streaming_content=rows)


def _table_download(request, slug, kind, write):
    study = get_object_or_404(Study, slug=slug)
    response = _csv_download(study, kind)
    write(study, response, selection(request))
    return response


@staff_required
def export_summary(request, slug):
    return _table_download(request, slug, "summary", write_summary_csv)


@staff_required
def export_metrics(request, slug):
    return _table_download(request, slug, "metrics", write_metrics_csv)


@staff_required
def poster(request, slug):
    study = get_object_or_404(Study, slug=slug)
    # One address lookup (a routing probe and the interfaces) for both URLs.
    site, reachable = phone_url(request.scheme, request.get_host(), "")
    join_url, kiosk_url = (site + reverse(name, args=[study.slug]) for name in ("turing:join", "turing:kiosk"))
    # The QR code's joins are the poster cohort (turing.participant.crowd), told apart from the same URL shared as
    # a link.
    join_url += f"?{VIA_PARAMETER}={VIA_POSTER}"
    # segno writes the SVG itself from the URL alone; nothing user-supplied is interpolated into markup.
    qr_svg = mark_safe(segno.make(join_url, error="m").svg_inline(scale=10, omitsize=True, light="#fff"))
    return render(
        request,
        "turing/staff/poster.html",
        {
            "study": study,
            "join_url": join_url,
            "kiosk_url": kiosk_url,
            "qr_svg": qr_svg,
            "loopback_warning": None if reachable else LOOPBACK_WARNING,
        },
    )


@staff_required
def stimulus_image(request, token):
    """A stimulus PNG by its token, for the gallery, report and admin; participants never see these URLs."""
    stimulus = get_object_or_404(Stimulus, token=token)
    return FileResponse(stimulus.image.open("rb"), content_type="image/png")

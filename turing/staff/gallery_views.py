"""Staff gallery of a study's stimuli with their votes, as a web page and as a figure download."""

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render

from turing.models import Stimulus, Study
from turing.staff import gallery
from turing.staff.decorators import staff_required
from turing.vocabulary import REAL


def _sort(request, study):
    return gallery.check_sort(study, request.GET.get("sort") or None)


def _bad_request(error):
    # Plain text: the message echoes the query string.
    return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")


@staff_required
def gallery_page(request, slug):
    study = get_object_or_404(Study, slug=slug)
    try:
        sort = _sort(request, study)
    except ValueError as error:
        return _bad_request(error)
    return render(
        request,
        "turing/staff/gallery.html",
        {
            "study": study,
            "rows": gallery.gallery_rows(study, sort),
            "sort": sort,
            "columns": gallery.gallery_sources(study),
            "caption": gallery.caption(study, sort),
        },
    )


@staff_required
def gallery_grayscale(request, slug, token):
    stimulus = get_object_or_404(Stimulus, study__slug=slug, token=token, source=REAL)
    return HttpResponse(gallery.grayscale_png(stimulus), content_type="image/png")


@staff_required
def gallery_figure(request, slug, fmt):
    study = get_object_or_404(Study, slug=slug)
    if fmt not in gallery.FIGURE_FORMATS:
        raise Http404(f"No figure format {fmt!r}.")
    try:
        sort = _sort(request, study)
        limit = int(request.GET["limit"]) if request.GET.get("limit") else None
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be a positive number of rows, got {limit}")
    except ValueError as error:
        return _bad_request(error)
    if not study.stimuli.exists():
        return _bad_request(f"study {study.slug!r} has no stimuli to show")
    return HttpResponse(
        gallery.figure_bytes(study, fmt, sort, limit),
        content_type=gallery.FIGURE_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{study.slug}-gallery.{fmt}"'},
    )

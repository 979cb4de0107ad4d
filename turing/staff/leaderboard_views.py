"""Staff leaderboard: every model's fooling rate pooled over the studies ticked, as manage.py leaderboard prints it."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from turing.models import Study
from turing.report.data import records
from turing.report.leaderboard import leaderboard
from turing.staff.decorators import staff_required
from turing.staff.forms import LeaderboardForm


@staff_required
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    # A GET form, so that a selection is a link one can share. The first visit (the form not sent: no hidden
    # "picked") pools every study; a form sent with no study ticked is an error, not "all of them".
    studies = list(Study.objects.order_by("created_at"))
    form = LeaderboardForm(request.GET if "picked" in request.GET or "study" in request.GET else None)
    chosen = list(form.cleaned_data["study"]) if form.is_valid() else studies if not form.is_bound else []
    board = leaderboard(chosen)
    entries = {entry.study.pk: entry for entry in board.studies}
    context = {
        "form": form,
        "choices": [
            {"study": study, "checked": study.pk in entries, "entry": entries.get(study.pk)} for study in studies
        ],
        "protocols": [
            {"protocol": protocol, "rows": records(board.table[board.table["protocol"] == protocol])}
            for protocol in board.protocols
        ],
        "per_study": records(board.per_study),
    }
    return render(request, "turing/staff/leaderboard.html", context)

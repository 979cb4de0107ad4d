"""Staff pages of a study's preregistration: freezing its plan once, and the plan as a JSON download."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from turing import preregistration
from turing.models import Study
from turing.staff.decorators import staff_required
from turing.staff.forms import FreezeForm


@staff_required
@require_http_methods(["GET", "HEAD", "POST"])
def freeze(request, slug):
    """The frozen plan with its hash, or the form that freezes it (once)."""
    study = get_object_or_404(Study, slug=slug)
    registration = preregistration.registration_of(study)
    form = None
    if registration is None:
        form = FreezeForm(request.POST if request.method == "POST" else None, study=study)
        if form.is_bound and form.is_valid():
            try:
                registration = preregistration.freeze(
                    study, form.cleaned_data["plan"], frozen_by=request.user.get_username()
                )
            except preregistration.PlanError as error:
                # Frozen meanwhile from another tab or the command: the page shows that plan.
                messages.error(request, f"{error}.")
            else:
                messages.success(request, f"Plan frozen: sha256 {registration.sha256}.")
            return redirect("staff:preregistration", study.slug)
    elif request.method == "POST":
        messages.error(request, f"{preregistration.already_frozen(registration)}.")
    context = {"study": study, "registration": registration, "form": form}
    if registration is not None:
        selection = preregistration.planned_selection(registration.plan)
        context["status"] = preregistration.status(study, selection, registration)
    return render(request, "turing/staff/preregistration.html", context)


@staff_required
def plan_json(request, slug):
    """The frozen plan's canonical JSON, byte for byte what was hashed. Staff only while a study runs: the plan
    lists each image's source with its SHA-256, an answer key to anyone who hashes the images they are shown."""
    study = get_object_or_404(Study, slug=slug)
    registration = preregistration.registration_of(study)
    if registration is None:
        raise Http404("This study has no frozen plan.")
    return HttpResponse(
        registration.canonical.encode("utf-8"),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{study.slug}-plan-{registration.sha256[:12]}.json"'},
    )

"""Staff power planner: the number of participants a study needs, as manage.py plan_study finds it."""

from django.shortcuts import render

from turing.analysis import power
from turing.staff.decorators import staff_required
from turing.staff.forms import PlanForm

# With at most PLAN_PAGE_MAX_SIMULATIONS studies per point this keeps a request to seconds; a study that needs
# more people is planned with the command, which searches up to power.MAX_PARTICIPANTS.
PAGE_MAX_PARTICIPANTS = 1000


@staff_required
def plan(request):
    # POST: a search costs seconds of CPU, which a link followed or prefetched should not start.
    form = PlanForm(request.POST if request.method == "POST" else None)
    context = {
        "form": form,
        "page_max_participants": PAGE_MAX_PARTICIPANTS,
        "command_max_participants": power.MAX_PARTICIPANTS,
        "command_simulations": power.DEFAULT_SIMULATIONS,
    }
    if form.is_valid():
        data = form.cleaned_data
        result = power.participants_needed(
            data["plan"], simulations=data["simulations"], seed=data["seed"], max_participants=PAGE_MAX_PARTICIPANTS
        )
        pilot_name = None if data["pilot"] is None else f"“{data['pilot'].title}”"
        context.update(
            result=result,
            answer=power.answer(result),
            assumptions=power.assumptions(result, data["pilot_estimate"], pilot_name),
        )
    return render(request, "turing/staff/plan.html", context)

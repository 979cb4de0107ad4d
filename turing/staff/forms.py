"""Staff forms: the power planner, a study's status and target, freezing its preregistration, the leaderboard."""

import json

from django import forms

from turing import preregistration
from turing.analysis.power import DEFAULT_SCENES, MIN_SIMULATIONS, PLAN_SETTINGS, PlanError, plan_from
from turing.models import Study
from turing.report.data import pilot_estimate

# Simulated studies per point on the staff planner page: enough for a rough answer in a few seconds of one
# CPU core; plan_study's default (turing.analysis.power.DEFAULT_SIMULATIONS) gives the precise one in half a minute.
PLAN_PAGE_SIMULATIONS = 40
PLAN_PAGE_MAX_SIMULATIONS = 50


class PlanForm(forms.Form):
    """The settings of manage.py plan_study. A valid form holds the Plan in cleaned_data["plan"] and the pilot's
    PilotEstimate (or None) in cleaned_data["pilot_estimate"]; estimating a pilot's sds takes a few seconds."""

    baseline = forms.FloatField(label="Baseline rate", help_text="Share of model A's images judged real, e.g. 0.30.")
    difference = forms.FloatField(
        help_text="How much more (negative: less) model B's images are judged real, e.g. 0.10."
    )
    trials_per_model = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="Images of each model per participant (with a pilot: the pilot's if left empty).",
    )
    participant_sd = forms.FloatField(
        label="Participant sd",
        required=False,
        min_value=0,
        help_text="How much participants differ, on the logit scale (empty: 0).",
    )
    image_sd = forms.FloatField(
        label="Image sd",
        required=False,
        min_value=0,
        help_text="How much images differ, on the logit scale (empty: 0).",
    )
    pilot = forms.ModelChoiceField(
        queryset=Study.objects.all(),
        required=False,
        to_field_name="slug",
        empty_label="No pilot",
        help_text="Estimate the sds (and scenes, trials per model) from this study's votes, people only; "
        "leave the sds empty then.",
    )
    scenes = forms.IntegerField(
        required=False,
        min_value=1,
        help_text=f"Scenes the images are drawn from (empty: {DEFAULT_SCENES}, or the pilot's).",
    )
    power = forms.FloatField(label="Target power", initial=0.8)
    alpha = forms.FloatField(initial=0.05, help_text="Two-sided test level.")
    models = forms.IntegerField(
        initial=2,
        min_value=2,
        required=False,
        help_text="Models the study compares: the report Holm-corrects over their pairs, so the test is planned at "
        "alpha / pairs.",
    )
    simulations = forms.IntegerField(
        initial=PLAN_PAGE_SIMULATIONS,
        min_value=MIN_SIMULATIONS,
        max_value=PLAN_PAGE_MAX_SIMULATIONS,
        help_text="Simulated studies per number of participants.",
    )
    seed = forms.IntegerField(initial=0, min_value=0)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        pilot = cleaned["pilot"]
        settings = {name: cleaned[name] for name in PLAN_SETTINGS}
        estimate_pilot = None if pilot is None else lambda: pilot_estimate(pilot, cleaned["seed"])
        try:
            cleaned["plan"], cleaned["pilot_estimate"] = plan_from(settings, estimate_pilot)
        except PlanError as error:
            message = str(error)
            raise forms.ValidationError(f"{message[0].upper()}{message[1:]}.") from error
        return cleaned


# The statuses the staff pages set; a draft (a study still being set up) is made and edited in the admin.
STAFF_STATUSES = (Study.Status.OPEN, Study.Status.CLOSED, Study.Status.ARCHIVED)


class StudyStatusForm(forms.Form):
    """A status button on the staff pages: open, close or archive a study (un-archiving closes it)."""

    status = forms.ChoiceField(choices=[(status.value, status.label) for status in STAFF_STATUSES])


class StudyTargetForm(forms.ModelForm):
    """The planned number of participants, which the staff pages show progress against; empty removes it."""

    target_participants = forms.IntegerField(
        label="Target participants",
        required=False,
        min_value=1,
        help_text=Study._meta.get_field("target_participants").help_text,
    )

    class Meta:
        model = Study
        fields = ["target_participants"]


class FreezeForm(forms.Form):
    """The staff action that freezes a study's plan (manage.py freeze_study's options); a valid form holds the
    plan in cleaned_data["plan"]."""

    target_participants = forms.IntegerField(
        label="Target participants", min_value=1, help_text="The planned number, e.g. plan_study's answer."
    )
    primary_analysis = forms.ChoiceField(choices=list(preregistration.PRIMARY_ANALYSES.items()))
    primary_rate = forms.ChoiceField(
        choices=list(preregistration.PRIMARY_RATES.items()),
        initial=preregistration.PER_PERSON,
        help_text="The summary shows both rates of each row; the report's primary one is per person.",
    )
    primary_models = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="The models it is about (none ticked: all)."
    )
    exclude_failed_checks = forms.BooleanField(
        required=False, label="Leave out participants who call an attention check real"
    )
    power_analysis = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Power analysis (optional)",
        help_text="plan_study --json's output, recorded with the plan.",
    )

    def __init__(self, *args, study, **kwargs):
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields["target_participants"].initial = study.target_participants
        self.fields["primary_models"].choices = [(name, name) for name in study.model_names]
        unavailable = preregistration.unavailable_analyses(study)
        self.fields["primary_analysis"].choices = [
            choice for choice in self.fields["primary_analysis"].choices if choice[0] not in unavailable
        ]
        if not study.catch_trials:
            del self.fields["exclude_failed_checks"]

    def clean_power_analysis(self):
        text = self.cleaned_data["power_analysis"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON ({error}).") from error

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            cleaned["plan"] = preregistration.build_plan(
                self.study,
                target_participants=cleaned["target_participants"],
                primary_analysis=cleaned["primary_analysis"],
                exclude_failed_checks=cleaned.get("exclude_failed_checks", False),
                primary_models=cleaned["primary_models"],
                primary_rate=cleaned["primary_rate"],
                power_analysis=cleaned["power_analysis"],
            )
        except preregistration.PlanError as error:
            message = str(error)
            raise forms.ValidationError(f"{message[0].upper()}{message[1:]}.") from error
        return cleaned


class LeaderboardForm(forms.Form):
    """The studies a leaderboard pools, by slug (?study=a&study=b), as manage.py leaderboard --study takes them."""

    study = forms.ModelMultipleChoiceField(
        queryset=Study.objects.order_by("created_at"),
        to_field_name="slug",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one study.", "invalid_choice": "No study %(value)s."},
    )

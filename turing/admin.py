"""Admin for studies (created and edited here; stimuli come from create_study/build_study), participants and
trials (read-only: they are written by the participant flow and must stay as the participant left them)."""

from django.contrib import admin
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from turing.models import Participant, Stimulus, Study, Trial
from turing.vocabulary import PERSON

THUMBNAIL_PX = 64


def thumbnail(stimulus):
    # Served by the staff-only stimulus view; participants only ever see per-trial URLs.
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="" loading="lazy">',
        reverse("staff:stimulus", args=[stimulus.token]),
        THUMBNAIL_PX,
        THUMBNAIL_PX,
    )


class ReadOnlyAdminMixin:
    """Everything shown, nothing added or changed; deleting stays possible (e.g. a test run's participants)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StimulusInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Stimulus
    fields = readonly_fields = ("preview", "scene", "source", "pool", "width", "height", "original_name")
    ordering = ("pool", "scene", "source")
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="image")
    def preview(self, stimulus):
        return thumbnail(stimulus)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "status", "participant_count", "vote_count", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "title")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [StimulusInline]
    actions = ["open_studies", "close_studies", "archive_studies"]
    # Completion links (Prolific and the like) are https; Django 6 makes that the default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ("title", "slug", "status")}),
        (
            "Trials",
            {
                "fields": (
                    "trials_per_participant",
                    "real_fraction",
                    "control_fraction",
                    "practice_trials",
                    "catch_trials",
                    "exposure_ms",
                    "seed",
                )
            },
        ),
        (
            "Participants",
            {
                "fields": (
                    "max_participants",
                    "target_participants",
                    "ask_expertise",
                    "expertise_question",
                    "show_score",
                )
            },
        ),
        (
            "Crowd platforms",
            {
                "fields": ("completion_url", "completion_code", "time_limit_minutes", "series"),
                "description": "Prolific and MTurk: see docs/deployment.md, “Crowd platforms”.",
            },
        ),
        ("Provenance", {"fields": ("manifest", "luminance_mismatch_allowed", "created_at"), "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                participant_total=Count("participants", filter=Q(participants__kind=PERSON), distinct=True),
                vote_total=Count(
                    "participants__trials",
                    filter=Q(participants__kind=PERSON, participants__trials__kind=Trial.Kind.SCORED)
                    & ~Q(participants__trials__answer=""),
                ),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("luminance_mismatch_allowed", "manifest", "created_at")
        # The slug is printed on posters and QR codes, and the seed fixes the assignments already made.
        fixed = ("slug", "seed", "luminance_mismatch_allowed", "manifest", "created_at")
        if obj.design_lock():
            # Study.clean refuses these too; read-only says so before anyone types.
            return tuple(dict.fromkeys(fixed + Study.DESIGN_FIELDS))
        return fixed

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None else {}

    def get_fieldsets(self, request, obj=None):
        reason = None if obj is None else obj.design_lock()
        if reason is None:
            return self.fieldsets
        note = (
            f"This study {reason}: the design settings are locked. Title, status, the cap, the target, the "
            "completion URL and the crowd platform settings stay editable."
        )
        return [(None, {**self.fieldsets[0][1], "description": note}), *self.fieldsets[1:]]

    @admin.display(description="people", ordering="participant_total")
    def participant_count(self, study):
        return study.participant_total

    @admin.display(description="votes", ordering="vote_total")
    def vote_count(self, study):
        return study.vote_total

    # Status is no design setting, so a bulk update (which skips Study.save's design lock) is safe here.
    @admin.action(description="Open selected studies to participants")
    def open_studies(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Study.Status.OPEN)} studies opened.")

    @admin.action(description="Close selected studies")
    def close_studies(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Study.Status.CLOSED)} studies closed.")

    @admin.action(description="Archive selected studies (closed, and off the staff study list)")
    def archive_studies(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Study.Status.ARCHIVED)} studies archived.")


class TrialInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Trial
    fields = readonly_fields = ("kind", "position", "stimulus", "answer", "response_ms", "answered_at")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("stimulus")


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "study",
        "kind",
        "cohort",
        "group",
        "label",
        "expertise",
        "answered",
        "started_at",
        "finished_at",
    )
    list_filter = ("study", "kind", "cohort", "group", "expertise")
    search_fields = ("label", "token")
    fields = (
        "study",
        "token",
        "kind",
        "cohort",
        "label",
        "platform_study",
        "platform_session",
        "submit_to",
        "group",
        "button_order",
        "expertise",
        "started_at",
        "consented_at",
        "finished_at",
    )
    # Only the label can be corrected by hand; everything else is what the participant's join recorded.
    readonly_fields = tuple(name for name in fields if name != "label")
    inlines = [TrialInline]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("study")
            .annotate(answered_total=Count("trials", filter=Q(trials__kind=Trial.Kind.SCORED) & ~Q(trials__answer="")))
        )

    @admin.display(description="scored answers", ordering="answered_total")
    def answered(self, participant):
        return participant.answered_total


@admin.register(Trial)
class TrialAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Through TrialQuerySet.delete, which takes an answered trial off its participant's answer count and bumps
    # the study's data_version (the admin's own delete of one object would go round it).
    def delete_model(self, request, obj):
        Trial.objects.filter(pk=obj.pk).delete()

    list_display = ("participant", "kind", "position", "stimulus", "answer", "response_ms", "answered_at")
    list_filter = ("participant__study", "participant__kind", "kind", "answer", "stimulus__source")
    list_select_related = ("participant", "stimulus")
    search_fields = ("participant__label", "participant__token")

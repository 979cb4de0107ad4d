"""Admin for studies (created and edited here; stimuli come from create_study/build_study), participants and
trials (read-only: they are written by the participant flow and must stay as the participant left them)."""

from django.contrib import admin
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from turing.models import Participant, Stimulus, Study, Trial

THUMBNAIL_PX = 64


def thumbnail(stimulus):
    # Served through the staff-checked image view by token, like the participants see it.
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="" loading="lazy">',
        reverse("turing:image", args=[stimulus.token]), THUMBNAIL_PX, THUMBNAIL_PX,
    )


class ReadOnlyAdminMixin:
    """Everything shown, nothing added or changed; deleting stays possible (e.g. a test run's participants)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StimulusInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Stimulus
    fields = readonly_fields = ("preview", "scene", "source", "times_assigned", "width", "height", "original_name")
    ordering = ("scene", "source")
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
    actions = ["open_studies", "close_studies"]
    # Completion links (Prolific and the like) are https; Django 6 makes that the default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ("title", "slug", "status")}),
        ("Trials", {"fields": (
            "trials_per_participant", "real_fraction", "control_fraction", "practice_trials", "exposure_ms", "seed",
        )}),
        ("Participants", {"fields": ("ask_expertise", "expertise_question", "completion_url")}),
        ("Provenance", {"fields": ("manifest", "created_at"), "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            participant_total=Count("participants", distinct=True),
            vote_total=Count(
                "participants__trials",
                filter=Q(participants__trials__practice=False) & ~Q(participants__trials__answer=""),
            ),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("manifest", "created_at")
        # The slug is printed on posters and QR codes, and the seed fixes the assignments already made.
        return ("slug", "seed", "manifest", "created_at")

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None else {}

    @admin.display(description="participants", ordering="participant_total")
    def participant_count(self, study):
        return study.participant_total

    @admin.display(description="votes", ordering="vote_total")
    def vote_count(self, study):
        return study.vote_total

    @admin.action(description="Open selected studies to participants")
    def open_studies(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Study.Status.OPEN)} studies opened.")

    @admin.action(description="Close selected studies")
    def close_studies(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Study.Status.CLOSED)} studies closed.")


class TrialInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Trial
    fields = readonly_fields = ("practice", "position", "stimulus", "answer", "response_ms", "answered_at")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("stimulus")


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("__str__", "study", "group", "label", "expertise", "answered", "started_at", "finished_at")
    list_filter = ("study", "group", "expertise")
    search_fields = ("label", "token")
    readonly_fields = ("study", "token", "group", "expertise", "started_at", "consented_at", "finished_at")
    fields = ("study", "token", "label", "group", "expertise", "started_at", "consented_at", "finished_at")
    inlines = [TrialInline]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("study").annotate(
            answered_total=Count("trials", filter=Q(trials__practice=False) & ~Q(trials__answer=""))
        )

    @admin.display(description="scored answers", ordering="answered_total")
    def answered(self, participant):
        return participant.answered_total


@admin.register(Trial)
class TrialAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("participant", "practice", "position", "stimulus", "answer", "response_ms", "answered_at")
    list_filter = ("participant__study", "practice", "answer", "stimulus__source")
    list_select_related = ("participant", "stimulus")
    search_fields = ("participant__label", "participant__token")

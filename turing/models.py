"""A study shows participants stimuli (real photos and model outputs) and records their votes.

One *scene* is one source photo; its stimuli are the real photo and each model's version of it.
A participant sees at most one stimulus per scene.
"""

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

REAL = "real"
GENERATED = "generated"
ANSWERS = [(REAL, "Real"), (GENERATED, "Generated")]


def new_token():
    # 128 random bits, URL-safe: an image or participant URL reveals nothing and cannot be guessed.
    return secrets.token_urlsafe(16)


def stimulus_upload_to(instance, filename):
    # The stored name is the random token, never the source file's name.
    return f"stimuli/{instance.token}.png"


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    trials_per_participant = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    real_fraction = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a treatment participant's trials that show real photos.",
    )
    control_fraction = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of participants in the control group, who see only real photos.",
    )
    exposure_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hide the image after this many milliseconds (empty: no limit)."
    )
    practice_trials = models.PositiveIntegerField(default=3)
    ask_expertise = models.BooleanField(default=True)
    expertise_question = models.CharField(max_length=200, default="I work with generative image models.")
    completion_url = models.URLField(
        blank=True, help_text="Redirect here after the last vote (e.g. a Prolific completion link)."
    )
    seed = models.BigIntegerField(default=0, help_text="Seed for trial assignment; same seed, same assignments.")
    manifest = models.JSONField(
        default=dict, blank=True, help_text="How the stimuli were chosen (split, runs, seed, scenes)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("turing:join", args=[self.slug])

    @property
    def model_names(self):
        """Names of the generating models in this study, sorted."""
        return sorted(set(self.stimuli.exclude(source=REAL).values_list("source", flat=True)))


class Stimulus(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    scene = models.CharField(max_length=255, help_text="Stem of the source photo; shared by its real and generated versions.")
    source = models.CharField(max_length=100, help_text="'real' or the name of the model that generated it.")
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    image = models.ImageField(upload_to=stimulus_upload_to, width_field="width", height_field="height")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    original_name = models.CharField(max_length=500, blank=True, help_text="File it was imported from (staff only).")
    # Denormalized count of scored trials that show this stimulus, kept so that assignment can
    # pick the least-shown stimuli with one indexed query.
    times_assigned = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "scene", "source"], name="one_stimulus_per_scene_source")]
        indexes = [models.Index(fields=["study", "source", "times_assigned"])]
        verbose_name_plural = "stimuli"

    def __str__(self):
        return f"{self.scene} [{self.source}]"

    @property
    def is_real(self):
        return self.source == REAL


class Participant(models.Model):
    class Group(models.TextChoices):
        TREATMENT = "treatment", "Treatment"
        CONTROL = "control", "Control"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    label = models.CharField(max_length=200, blank=True, help_text="participant_label or PROLIFIC_PID from the join URL.")
    group = models.CharField(max_length=10, choices=Group.choices, default=Group.TREATMENT)
    expertise = models.BooleanField(null=True, blank=True, help_text="Self-reported; empty if not asked or not answered.")
    started_at = models.DateTimeField(auto_now_add=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self):
        return self.label or self.token[:8]


class Trial(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials")
    practice = models.BooleanField(default=False, help_text="Practice trials give feedback and are not counted.")
    position = models.PositiveIntegerField(help_text="1-based order within the participant's practice or scored trials.")
    # RESTRICT, not PROTECT: a stimulus that has votes cannot be deleted on its own, but deleting its study
    # (which deletes the trials through the participants too) must still work.
    stimulus = models.ForeignKey(Stimulus, on_delete=models.RESTRICT, related_name="trials")
    answer = models.CharField(max_length=10, choices=ANSWERS, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["participant", "-practice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "practice", "position"], name="one_trial_per_position")
        ]

    def __str__(self):
        return f"{self.participant} #{self.position}{' (practice)' if self.practice else ''}"

    @property
    def correct(self):
        if not self.answer:
            return None
        return (self.answer == REAL) == self.stimulus.is_real

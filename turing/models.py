"""A study shows participants stimuli (real photos and model outputs) and records their votes.

One *scene* is one source photo; its stimuli are the real photo and each model's version of it.
A participant sees at most one stimulus per scene. Every scene belongs to one pool: *scored* scenes give
the study's data, *practice* scenes are shown with feedback and never scored, and each *catch* scene has
one deliberately wrong colorization (an attention check). Keeping the pools apart is what stops practice
feedback from becoming an answer key to the scored images, and an attention check from giving away a scored
photo's colours.
"""

import json
import secrets
from functools import cached_property

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Count, F, Q
from django.urls import reverse

from turing import vocabulary
from turing.protocols import get_protocol, protocol_names


def new_token():
    # 128 random bits, URL-safe: an image or participant URL reveals nothing and cannot be guessed.
    return secrets.token_urlsafe(16)


def stimulus_upload_to(instance, filename):
    # The stored name is the random token, never the source file's name.
    return f"stimuli/{instance.token}.png"


def model_names(sources) -> list[str]:
    """The generating models among stimulus sources, sorted: every source but real photos and catch images."""
    return sorted(set(sources) - vocabulary.NOT_MODELS)


class Pool(models.TextChoices):
    """What a scene's stimuli are for; a scene is in exactly one pool."""

    SCORED = vocabulary.SCORED, "Scored"
    PRACTICE = vocabulary.PRACTICE, "Practice"
    CATCH = vocabulary.CATCH, "Attention check"


# Catch scenes a study reserves per attention check. Each participant's checks are the least-shown of them
# (turing.participant.enrollment), so no check image reaches more than a fifth of the participants: throwaway
# joins cannot learn the checks by finding the images everybody is shown, and a bot cannot pass them by memory.
CATCH_POOL_FACTOR = 5


def catch_scenes_needed(catch_trials: int) -> int:
    """The catch scenes a study with catch_trials attention checks per participant must have."""
    return CATCH_POOL_FACTOR * catch_trials


# Why a design is locked when people have joined (Study.design_lock); its message then suggests deleting them.
PEOPLE_JOINED = "already has participants"


class StudyLocked(ValidationError):
    """A design setting was changed after participants joined."""


class StudyQuerySet(models.QuerySet):
    def data_changed(self) -> int:
        """Bump these studies' data_version: call it inside the transaction that changes their data."""
        return self.update(data_version=F("data_version") + 1)


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        # Closed for good and off the staff study list; its data stay. Un-archiving closes it again.
        ARCHIVED = "archived", "Archived"

    # Settings that decide what participants see and how they are assigned: changing one after people joined
    # would mix two designs in one data set. Title, status, completion URL, the participant cap and the target
    # stay editable.
    DESIGN_FIELDS = (
        "protocol",
        "trials_per_participant",
        "real_fraction",
        "control_fraction",
        "exposure_ms",
        "practice_trials",
        "catch_trials",
        "ask_expertise",
        "expertise_question",
        "seed",
    )

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # What a trial asks: one image "real or generated?" ("single"), Zhang et al.'s two-alternative forced
    # choice ("2afc") or HYPE-time's adaptive exposure ("hype-time"); the names of turing.protocols' registry.
    protocol = models.CharField(max_length=20, default="single")
    trials_per_participant = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    real_fraction = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a treatment participant's trials that show real photos.",
    )
    control_fraction = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of participants in the control group, who see only real photos.",
    )
    exposure_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hide the image after this many milliseconds (empty: no limit)."
    )
    practice_trials = models.PositiveIntegerField(
        default=3, help_text="Scenes reserved for practice; every participant practises on each of them once."
    )
    catch_trials = models.PositiveIntegerField(
        default=0, help_text="Attention checks per participant: obviously wrong colorizations of reserved scenes."
    )
    max_participants = models.PositiveIntegerField(
        null=True, blank=True, help_text="Close joining once this many people have joined (empty: no limit)."
    )
    target_participants = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The sample size the researcher planned (e.g. from plan_study); progress is shown against it. "
        "Unlike the cap, it does not stop anyone joining.",
    )
    ask_expertise = models.BooleanField(default=True)
    expertise_question = models.CharField(max_length=200, default="I work with generative image models.")
    show_score = models.BooleanField(
        default=False,
        help_text="Tell each participant at the end how many images they judged correctly. Engaging at a poster, "
        "but the score is an oracle: a few dozen throwaway joins can learn every image's answer from it.",
    )
    completion_url = models.URLField(
        blank=True, help_text="Redirect here after the last vote (e.g. a Prolific completion link)."
    )
    # Crowd platforms (turing.participant.crowd). Like the completion URL, these stay editable once people joined.
    completion_code = models.CharField(
        max_length=64, blank=True, help_text="Shown on the finish page (e.g. the Prolific study's completion code)."
    )
    time_limit_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Participants who have not finished this many minutes after joining (returned or timed out, "
        "as Prolific counts them) are left out of the statistics and listed in the report (empty: no limit).",
    )
    series = models.SlugField(
        blank=True,
        help_text="Studies sharing a series name exclude each other's participants: a crowd ID that took part in "
        "one is refused by the others.",
    )
    seed = models.BigIntegerField(default=0, help_text="Seed for trial assignment; same seed, same assignments.")
    luminance_mismatch_allowed = models.BooleanField(
        default=False,
        editable=False,
        help_text="Imported with --allow-luminance-mismatch: generated images may differ from the real photos "
        "in lightness, a cue other than colour.",
    )
    manifest = models.JSONField(
        default=dict, blank=True, help_text="How the stimuli were chosen (split, runs, seed, scenes)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped (StudyQuerySet.data_changed) in the transaction of every join, answer and deletion of participants
    # or answers: the staff report's cache is valid while it has not moved. Never written by save(), whose
    # instance may have been read before a vote.
    data_version = models.PositiveBigIntegerField(default=0, editable=False)

    objects = StudyQuerySet.as_manager()

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
        return model_names(self.stimuli.values_list("source", flat=True).distinct())

    def purge_bots(self) -> tuple[int, int]:
        """Delete the study's rehearsal bots with their trials, and bump data_version, as one transaction; how many
        bots and how many of their answers went."""
        bots = self.participants.filter(kind=Participant.Kind.BOT)
        with transaction.atomic():
            answers = Trial.objects.filter(participant__in=bots).exclude(answer="").count()
            deleted = bots.count()
            bots.delete()
        return deleted, answers

    def design_lock(self) -> str | None:
        """Why the design settings can no longer change (people joined, or the plan was frozen), or None."""
        if self.pk is None:
            return None
        if self.participants.exists():
            return PEOPLE_JOINED
        # A frozen plan records the design; changing it would make the preregistration describe another study.
        if Preregistration.objects.filter(study_id=self.pk).exists():
            return "was frozen with its preregistered plan"
        return None

    def changed_design_fields(self) -> list[str]:
        """DESIGN_FIELDS whose value differs from the stored study, if its design is locked; else []."""
        if self.pk is None:
            return []
        stored = Study.objects.filter(pk=self.pk).values(*self.DESIGN_FIELDS).first()
        if stored is None:
            return []
        changed = [name for name in self.DESIGN_FIELDS if getattr(self, name) != stored[name]]
        return changed if changed and self.design_lock() else []

    def locked_error(self, changed) -> StudyLocked:
        reason = self.design_lock()
        hint = "delete them, or " if reason == PEOPLE_JOINED else ""
        return StudyLocked(
            {
                name: f"cannot change {name.replace('_', ' ')}: study {self.slug!r} {reason} ({hint}create a new study)"
                for name in changed
            }
        )

    def clean(self):
        super().clean()
        changed = self.changed_design_fields()
        if changed:
            raise self.locked_error(changed)
        if self.protocol not in protocol_names():
            raise ValidationError(
                {"protocol": f"unknown protocol {self.protocol!r}; choose one of {', '.join(protocol_names())}"}
            )
        self.check_catch_pool()
        # The protocol may refuse settings it cannot run, or fill in its defaults (2afc: a 1 s exposure).
        get_protocol(self.protocol).clean_study(self)

    def check_catch_pool(self) -> None:
        """ValidationError when catch_trials was raised above what the stored catch scenes allow: more checks
        per participant would show each check image to more than 1/CATCH_POOL_FACTOR of the participants.
        Lowering it is always allowed; a study without stimuli (unsaved, or made in the admin) is not checked."""
        if self.pk is None or not self.stimuli.exists():
            return
        stored = Study.objects.filter(pk=self.pk).values_list("catch_trials", flat=True).first()
        if stored is None or self.catch_trials <= stored:
            return
        have = self.stimuli.filter(pool=Pool.CATCH).count()
        needed = catch_scenes_needed(self.catch_trials)
        if have < needed:
            raise ValidationError(
                {
                    "catch_trials": f"{needed} catch scenes are needed for {self.catch_trials} attention check(s) "
                    f"per participant ({CATCH_POOL_FACTOR} per check); study {self.slug!r} has {have}"
                }
            )

    def save(self, *args, **kwargs):
        # Also here, not only in clean(), so that the shell and management commands cannot change a running design.
        changed = self.changed_design_fields()
        if changed:
            raise self.locked_error(changed)
        if not self._state.adding and kwargs.get("update_fields") is None:
            # A study edited in the admin was read before the votes that came in since; writing its data_version
            # back would undo their bumps and make the report's cache serve a stale report as fresh.
            # Like Django's own save of a partly loaded instance, deferred fields are not written either.
            left_out = {"data_version", *self.get_deferred_fields()}
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.attname not in left_out
            ]
        super().save(*args, **kwargs)


class Stimulus(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    scene = models.CharField(
        max_length=255, help_text="Stem of the source photo; shared by its real and generated versions."
    )
    source = models.CharField(
        max_length=100, help_text="'real', the name of the model that generated it, or 'catch' (attention check)."
    )
    pool = models.CharField(max_length=10, choices=Pool.choices, default=Pool.SCORED)
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    image = models.ImageField(upload_to=stimulus_upload_to, width_field="width", height_field="height")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    original_name = models.CharField(max_length=500, blank=True, help_text="File it was imported from (staff only).")
    # A generated stimulus's colorization metrics against its scene's real stimulus (turing.stimuli.metrics),
    # stored at import so that the report can set them against the votes; null for real and catch stimuli.
    metrics = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "scene", "source"], name="one_stimulus_per_scene_source")
        ]
        indexes = [models.Index(fields=["study", "pool", "source"])]
        verbose_name_plural = "stimuli"

    def __str__(self):
        return f"{self.scene} [{self.source}]"

    @property
    def is_real(self):
        return self.source == vocabulary.REAL


# A participant label (participant_label, PROLIFIC_PID, ...) is any printable text up to this length.
LABEL_MAX_LENGTH = 255


class ParticipantQuerySet(models.QuerySet):
    def delete(self):
        """Delete these participants with their trials, and bump their studies' data_version, as one transaction."""
        with transaction.atomic():
            Study.objects.filter(pk__in=self.values("study")).data_changed()
            return super().delete()


class Participant(models.Model):
    class Group(models.TextChoices):
        TREATMENT = vocabulary.TREATMENT, "Treatment"
        CONTROL = vocabulary.CONTROL, "Control"

    class Kind(models.TextChoices):
        PERSON = vocabulary.PERSON, "Person"
        BOT = vocabulary.BOT, "Rehearsal bot"

    class Cohort(models.TextChoices):
        """How the participant came (turing.participant.crowd.crowd_join): the report breaks rates down by it."""

        POSTER = vocabulary.POSTER, "Poster (QR code)"
        KIOSK = vocabulary.KIOSK, "Kiosk (shared device)"
        PROLIFIC = vocabulary.PROLIFIC, "Prolific"
        MTURK = vocabulary.MTURK, "MTurk"
        LINK = vocabulary.LINK, "Link"

    class ButtonOrder(models.TextChoices):
        REAL_FIRST = vocabulary.REAL_FIRST, "Real first"
        GENERATED_FIRST = vocabulary.GENERATED_FIRST, "Generated first"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    kind = models.CharField(
        max_length=10,
        choices=Kind.choices,
        default=Kind.PERSON,
        help_text="Bots (simulate_participants) are left out of every report unless asked for.",
    )
    label = models.CharField(
        max_length=LABEL_MAX_LENGTH,
        blank=True,
        help_text="participant_label, PROLIFIC_PID or MTurk workerId from the join URL.",
    )
    cohort = models.CharField(max_length=10, choices=Cohort.choices, default=Cohort.LINK)
    # The crowd platform's IDs of this participation: Prolific's STUDY_ID and SESSION_ID, MTurk's hitId and
    # assignmentId (which the finish page posts back to turkSubmitTo, kept in submit_to).
    platform_study = models.CharField(max_length=LABEL_MAX_LENGTH, blank=True)
    platform_session = models.CharField(max_length=LABEL_MAX_LENGTH, blank=True)
    submit_to = models.URLField(blank=True)
    # The random key of the join form this participant submitted: a double-submitted form finds them again.
    join_key = models.CharField(max_length=32, null=True, blank=True, editable=False)
    group = models.CharField(max_length=10, choices=Group.choices, default=Group.TREATMENT)
    # The order of the answer buttons on every trial page of this participant, drawn at the join
    # (turing.participant.enrollment); empty where the protocol's buttons keep their own order (2afc: the sides).
    # The default is the one fixed order there was before it was drawn.
    button_order = models.CharField(
        max_length=16, choices=ButtonOrder.choices, blank=True, default=ButtonOrder.REAL_FIRST, editable=False
    )
    expertise = models.BooleanField(
        null=True, blank=True, help_text="Self-reported; empty if not asked or not answered."
    )
    started_at = models.DateTimeField(auto_now_add=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Answers of every kind given so far, counted by the vote view in the answer's transaction: the staff
    # report's cache is valid while no participant was added or removed and this sum has not moved.
    answer_count = models.PositiveIntegerField(default=0, editable=False)
    # The browser's viewport in CSS pixels and its device-pixel ratio, as its latest vote reported them: how
    # large the images were on screen.
    viewport_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    viewport_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    device_pixel_ratio = models.FloatField(null=True, blank=True, editable=False)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        ordering = ["started_at"]
        constraints = [
            # One person, one participation: a label that already took part resumes that participant.
            models.UniqueConstraint(
                fields=["study", "label"], condition=~Q(label=""), name="one_participant_per_label"
            ),
            models.UniqueConstraint(fields=["study", "join_key"], name="one_participant_per_join_form"),
        ]

    def __str__(self):
        return self.label or self.token[:8]

    @property
    def answer_buttons(self) -> list[tuple[str, str]]:
        """(value, label) of the answer buttons, in this participant's order."""
        labels = dict(vocabulary.ANSWER_CHOICES)
        return [(answer, labels[answer]) for answer in vocabulary.BUTTON_ORDERS[self.button_order]]

    def delete(self, *args, **kwargs):
        """Delete the participant with their trials, and bump the study's data_version, as one transaction."""
        with transaction.atomic():
            Study.objects.filter(pk=self.study_id).data_changed()
            return super().delete(*args, **kwargs)


class TrialQuerySet(models.QuerySet):
    def delete(self):
        """Delete these trials, take the answered ones off their participants' answer_count and bump the studies'
        data_version, as one transaction."""
        with transaction.atomic():
            answered = self.exclude(answer="").values("participant").annotate(n=Count("pk")).order_by()
            for row in answered:
                Participant.objects.filter(pk=row["participant"]).update(answer_count=F("answer_count") - row["n"])
            Study.objects.filter(pk__in=self.values("participant__study")).data_changed()
            return super().delete()


class Trial(models.Model):
    class Kind(models.TextChoices):
        PRACTICE = vocabulary.PRACTICE, "Practice"
        SCORED = vocabulary.SCORED, "Scored"
        CATCH = vocabulary.CATCH, "Attention check"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials")
    # Stored, not read off the stimulus's pool: every report filters on it without a join.
    kind = models.CharField(
        max_length=10,
        choices=Kind.choices,
        default=Kind.SCORED,
        help_text="Practice trials give feedback and are not counted; catch trials are attention checks.",
    )
    position = models.PositiveIntegerField(
        help_text="1-based order of presentation: practice trials first, then scored and catch trials mixed."
    )
    # RESTRICT, not PROTECT: a stimulus that has votes cannot be deleted on its own, but deleting its study
    # (which deletes the trials through the participants too) must still work.
    stimulus = models.ForeignKey(Stimulus, on_delete=models.RESTRICT, related_name="trials")
    # The image URL of this trial alone: two participants shown one stimulus get different URLs, so they
    # cannot compare notes by URL, and the URL dies once the trial is answered.
    image_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    answer = models.CharField(max_length=10, choices=vocabulary.ANSWER_CHOICES, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # Studies with an exposure limit only: when the image was first served (the exposure clock on the server), so
    # that a reload after the limit shows no image.
    shown_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The exposure the protocol asked for when the trial was handed out (empty: no limit), and the one the
    # browser achieved, from the frame that revealed the image to the frame that hid it.
    exposure_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    achieved_exposure_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # How large the image (each image of a pair: both are the same size) was on screen when the answer was given,
    # in CSS pixels, and the device-pixel ratio then (physical pixels per CSS pixel), as participant.js measured
    # them; empty without JavaScript, which cannot measure, and on a page reloaded after the exposure ran out,
    # which showed no image. The participant's viewport fields keep only their latest vote's.
    image_css_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    image_css_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    device_pixel_ratio = models.FloatField(null=True, blank=True, editable=False)
    # Two-alternative forced choice (protocol "2afc") only: the real photo shown beside the stimulus, which
    # side the stimulus (the generated image) was on, and the URL token of the right-hand image (image_token
    # is the left one's), so that no URL says which image is which.
    paired_stimulus = models.ForeignKey(
        Stimulus, on_delete=models.RESTRICT, null=True, blank=True, related_name="paired_trials"
    )
    generated_side = models.CharField(max_length=5, choices=vocabulary.SIDE_CHOICES, blank=True)
    second_image_token = models.CharField(max_length=32, unique=True, null=True, blank=True, editable=False)

    objects = TrialQuerySet.as_manager()

    class Meta:
        ordering = ["participant", "position"]
        constraints = [models.UniqueConstraint(fields=["participant", "position"], name="one_trial_per_position")]
        # The report asks whether any trial of a study had an exposure limit; without this index a study that
        # has none is answered by reading all its trials (0.2 s at 10^6 votes on SQLite).
        indexes = [
            models.Index(fields=["participant"], condition=models.Q(exposure_ms__isnull=False), name="timed_trial")
        ]

    def __str__(self):
        suffix = "" if self.kind == self.Kind.SCORED else f" ({self.get_kind_display().lower()})"
        return f"{self.participant} #{self.position}{suffix}"

    @property
    def practice(self):
        return self.kind == self.Kind.PRACTICE

    def pair_with(self, real: Stimulus, generated_side: str) -> None:
        """Make this new trial a pair (protocol 2afc): the real photo shown beside its stimulus, which is on
        generated_side, with a URL token of its own."""
        self.paired_stimulus = real
        self.generated_side = generated_side
        self.second_image_token = new_token()

    @property
    def correct(self):
        if not self.answer:
            return None
        return (self.answer == vocabulary.REAL) == self.stimulus.is_real


class PreregistrationChanged(ValidationError):
    """A second freeze, or a change to a frozen plan."""


class Preregistration(models.Model):
    """A study's plan, frozen once before the data: design, target n, exclusion rules and primary analysis
    (turing.preregistration builds and checks it). ``canonical`` is the exact text that was hashed and is
    served as the download, so that anyone can recompute ``sha256`` from the file alone."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="preregistration")
    canonical = models.TextField(editable=False, help_text="The plan as canonical JSON (sorted keys, no spaces).")
    sha256 = models.CharField(max_length=64, editable=False)
    frozen_at = models.DateTimeField(auto_now_add=True)
    frozen_by = models.CharField(max_length=150, blank=True, editable=False)

    def __str__(self):
        return f"{self.study.slug} plan {self.sha256[:12]}"

    @cached_property
    def plan(self) -> dict:
        return json.loads(self.canonical)

    def save(self, *args, **kwargs):
        # Frozen means frozen: the row is written once, never updated.
        if not self._state.adding:
            raise PreregistrationChanged(
                f"the preregistered plan of study {self.study.slug!r} is frozen (sha256 {self.sha256}) "
                "and cannot be changed; create a new study for a new plan"
            )
        super().save(*args, **kwargs)

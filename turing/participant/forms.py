"""Participant forms: joining (consent, the optional question, the link's label and crowd IDs) and voting."""

import unicodedata

from django import forms

from turing.models import LABEL_MAX_LENGTH
from turing.participant.crowd import CROWD_PARAMETERS, CrowdError
from turing.vocabulary import ANSWER_CHOICES, EXPERTISE_WORD, NO, YES

# Join-URL parameters that carry a participant label, in order of precedence (workerId: MTurk's).
LABEL_PARAMETERS = ("participant_label", "PROLIFIC_PID", "workerId")

EXPERTISE_CHOICES = [("", "Prefer not to say"), (YES, "Yes"), (NO, "No")]

# Longer than any honest look at one image; a larger value is a tab left open, not a response time.
MAX_RESPONSE_MS = 10 * 60 * 1000


class JoinForm(forms.Form):
    consent = forms.BooleanField(
        label="I have read the information above and agree to take part.",
        error_messages={"required": "Please tick the box to take part."},
    )
    expertise = forms.ChoiceField(choices=EXPERTISE_CHOICES, required=False, widget=forms.RadioSelect)
    # Carried over from ?participant_label=, ?PROLIFIC_PID= or ?workerId= on the join URL (checked by label_problem).
    participant_label = forms.CharField(max_length=LABEL_MAX_LENGTH, required=False, widget=forms.HiddenInput)
    # Drawn when the page is rendered: the same form submitted twice (a double tap on Start) finds the
    # participant its first submission created instead of making a second one.
    join_key = forms.RegexField(regex=r"^[A-Za-z0-9_-]{22}$", widget=forms.HiddenInput)

    def __init__(self, *args, study, **kwargs):
        super().__init__(*args, **kwargs)
        # The join URL's crowd parameters (turing.participant.crowd), carried through the form like the label.
        for name in CROWD_PARAMETERS:
            self.fields[name] = forms.CharField(max_length=LABEL_MAX_LENGTH, required=False, widget=forms.HiddenInput)
        if study.ask_expertise:
            self.fields["expertise"].label = study.expertise_question
        else:
            del self.fields["expertise"]

    def clean_expertise(self):
        return {word: stored for stored, word in EXPERTISE_WORD.items()}.get(self.cleaned_data["expertise"])


class VoteForm(forms.Form):
    answer = forms.ChoiceField(choices=ANSWER_CHOICES)
    # Measured by participant.js from image load to click; absent without JavaScript.
    response_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_RESPONSE_MS)
    # The page's signed render time (turing.participant.views.shown_token), for a response time without JavaScript.
    shown = forms.CharField(required=False)
    # Measured by exposure.js: from the frame that painted the image to the frame that hid it.
    achieved_exposure_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_RESPONSE_MS)
    # The browser's viewport (CSS pixels) and devicePixelRatio; the bounds only keep nonsense out.
    viewport_width = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    viewport_height = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    device_pixel_ratio = forms.FloatField(required=False, min_value=0.1, max_value=20)
    # The shown image's size on screen in CSS pixels (participant.js rounds it), a pair's one image's.
    image_css_width = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    image_css_height = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args, answer_choices=ANSWER_CHOICES, **kwargs):
        super().__init__(*args, **kwargs)
        # The study's protocol names its buttons (real/generated, or left/right for a pair).
        self.fields["answer"].choices = answer_choices

    def full_clean(self):
        super().full_clean()
        # A browser's odd measurement (response_ms too: non-numeric, negative, absurd) is left out, never a
        # reason to refuse the participant's answer.
        for name in ("response_ms", *MEASURED):
            if self._errors and self._errors.pop(name, None) is not None:
                self.cleaned_data[name] = None

    def measured(self) -> dict:
        """What the browser measured, for turing.participant.answers.record_answer (None where it sent nothing
        usable). An image size is kept whole or not at all: a width without its height says nothing."""
        measured = {name: self.cleaned_data.get(name) for name in MEASURED}
        if None in (measured["image_css_width"], measured["image_css_height"]):
            measured["image_css_width"] = measured["image_css_height"] = None
        return measured


MEASURED = (
    "achieved_exposure_ms",
    "viewport_width",
    "viewport_height",
    "device_pixel_ratio",
    "image_css_width",
    "image_css_height",
)


def normalize_label(label: str) -> str:
    """The label as stored: NFKC-normalized and stripped, so that "ｐ１ " and "p1" are one person."""
    return unicodedata.normalize("NFKC", label).strip()


def label_problem(label: str) -> str | None:
    """Why a participant label from a join URL cannot be used, or None. Any printable text up to
    LABEL_MAX_LENGTH characters is a label: crowd platforms' IDs vary, and refusing one locks a person out."""
    return text_problem(label, "participant label")


def text_problem(value: str, name: str) -> str | None:
    """Why a value of a join URL or its form (name: the label or the parameter's name, as the page says it)
    cannot be stored, or None: longer than LABEL_MAX_LENGTH, or not printable (str.isprintable: control and
    format characters, NUL, CR/LF and tabs, and the bidirectional overrides that make text read backwards)."""
    if len(value) > LABEL_MAX_LENGTH:
        return (
            f"This link's {name} is {len(value)} characters long; at most {LABEL_MAX_LENGTH} "
            "are allowed. Please ask the researcher for a corrected link."
        )
    if not value.isprintable():
        return (
            f"This link's {name} contains control characters (such as line breaks, NUL or characters that reverse "
            "the direction of text). Please ask the researcher for a corrected link."
        )
    return None


def check_join_parameters(*sources) -> None:
    """Raise CrowdError, saying why, when a label or crowd parameter of a join request cannot be stored. sources:
    every place they can arrive (the URL's query, the consent form's fields), each a QueryDict, all of whose
    values are checked, so that none reaches the database unchecked. Values are checked as they are used,
    without surrounding whitespace."""
    for source in sources:
        for name in (*LABEL_PARAMETERS, *CROWD_PARAMETERS):
            for value in source.getlist(name):
                problem = text_problem(value.strip(), name)
                if problem:
                    raise CrowdError(problem)

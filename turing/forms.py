from django import forms

from turing.models import ANSWERS

EXPERTISE_CHOICES = [("", "Prefer not to say"), ("yes", "Yes"), ("no", "No")]

# Longer than any honest look at one image; a larger value is a tab left open, not a response time.
MAX_RESPONSE_MS = 10 * 60 * 1000


class JoinForm(forms.Form):
    consent = forms.BooleanField(
        label="I have read the information above and agree to take part.",
        error_messages={"required": "Please tick the box to take part."},
    )
    expertise = forms.ChoiceField(choices=EXPERTISE_CHOICES, required=False, widget=forms.RadioSelect)
    # Carried over from ?participant_label= or ?PROLIFIC_PID= on the join URL. Crowdworker IDs are letters,
    # digits and a few separators; anything else is refused because the label ends up in the CSV export,
    # where a value like "=HYPERLINK(...)" would run as a spreadsheet formula.
    participant_label = forms.RegexField(
        regex=r"^(?:[A-Za-z0-9_][A-Za-z0-9_.:-]*)?$",
        max_length=200,
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "This link's participant label is not valid; please ask for a new link."},
    )

    def __init__(self, *args, study, **kwargs):
        super().__init__(*args, **kwargs)
        if study.ask_expertise:
            self.fields["expertise"].label = study.expertise_question
        else:
            del self.fields["expertise"]

    def clean_expertise(self):
        return {"yes": True, "no": False}.get(self.cleaned_data["expertise"])


class VoteForm(forms.Form):
    answer = forms.ChoiceField(choices=ANSWERS)
    # Measured by participant.js from image load to click; absent without JavaScript.
    response_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_RESPONSE_MS)

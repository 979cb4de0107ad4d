"""Steps a participant takes, through the test client, shared by the participant-flow tests."""

import json
import re
from urllib.parse import urlencode

from django.urls import reverse

from turing.models import Participant
from turing.participant.decorators import participant_key
from turing.vocabulary import GENERATED, REAL

TRIAL_DATA = re.compile(r'<script id="trial-data" type="application/json">(.*?)</script>', re.DOTALL)


def join_form(client, study, query=None):
    """GET the join page (with ?query); return (its URL, the fields its form posts, consent ticked)."""
    url = reverse("turing:join", args=[study.slug])
    if query:
        url += "?" + urlencode(query)
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    return url, {
        "consent": "on",
        "participant_label": form.initial.get("participant_label", ""),
        "join_key": form.initial["join_key"],
    }


def join(client, study, query=None, **fields):
    """Consent on the join page (with ?query) and return the new or resumed Participant."""
    url, data = join_form(client, study, query)
    response = client.post(url, {**data, **fields})
    assert response.status_code == 302
    assert response.url == reverse("turing:trial", args=[study.slug])
    return session_participant(client, study)


def session_participant(client, study):
    """The Participant this client's session holds for study."""
    return Participant.objects.get(pk=client.session[participant_key(study.pk)])


def current_trial(client, study):
    """(trial data from the current trial page, the Trial it shows) or (None, None) when finished."""
    page = client.get(reverse("turing:trial", args=[study.slug]))
    if page.status_code == 302:
        return None, None
    assert page.status_code == 200
    return trial_data(page), page.context["trial"]


def trial_data(page):
    return json.loads(TRIAL_DATA.search(page.content.decode()).group(1))


def right_answer(trial):
    return REAL if trial.stimulus.is_real else GENERATED


def wrong_answer(trial):
    return GENERATED if trial.stimulus.is_real else REAL


def answer_all(client, study, choose=right_answer):
    """Answer every remaining trial with choose(trial); return the response to the last vote."""
    response = None
    while True:
        data, trial = current_trial(client, study)
        if data is None:
            return response
        response = client.post(data["vote_url"], {"answer": choose(trial)})
        assert response.status_code == 302

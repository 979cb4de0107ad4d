"""Managing a study from the staff pages: open, close and archive it (POST only, staff only), set a target number
of participants and see progress towards it, log out; and the admin's bulk actions for the same statuses."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.turing.participant_steps import current_trial, join, right_answer
from tests.turing.report_data import START
from turing.models import Participant, Study

pytestmark = pytest.mark.django_db

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def set_status(client, study, status, **extra):
    return client.post(reverse("staff:set_status", args=[study.slug]), {"status": status, **extra})


def stored_status(study):
    return Study.objects.values_list("status", flat=True).get(pk=study.pk)


def assert_closed_to(client, study, trial_data, trial):
    """A participant mid-study and a newcomer both get the closed page, and a vote is refused."""
    page = client.get(reverse("turing:trial", args=[study.slug]))
    assert "turing/closed.html" in [template.name for template in page.templates]
    assert client.post(trial_data["vote_url"], {"answer": right_answer(trial)}).status_code == 403
    newcomer = Client().get(reverse("turing:join", args=[study.slug]))
    assert "turing/closed.html" in [template.name for template in newcomer.templates]
    # Closed or archived, never "not started yet".
    assert "no longer accepts answers" in newcomer.content.decode()


def test_staff_close_reopen_archive_and_unarchive_a_study(client, staff_client, small_study):
    participant = join(client, small_study)
    data, trial = current_trial(client, small_study)
    back = reverse("staff:dashboard", args=[small_study.slug])

    response = set_status(staff_client, small_study, "closed", next=back)
    assert response.status_code == 302 and response.url == back
    assert stored_status(small_study) == Study.Status.CLOSED
    assert_closed_to(client, small_study, data, trial)
    assert "is now closed" in staff_client.get(back).content.decode()  # the confirmation message

    set_status(staff_client, small_study, "open")
    assert stored_status(small_study) == Study.Status.OPEN
    assert client.post(data["vote_url"], {"answer": right_answer(trial)}).status_code == 302
    assert participant.trials.exclude(answer="").count() == 1

    response = set_status(staff_client, small_study, "archived")
    assert response.url == reverse("staff:study_list")  # no next: back to the list
    assert stored_status(small_study) == Study.Status.ARCHIVED
    next_trial = participant.trials.filter(answer="").first()
    next_vote = {"vote_url": reverse("turing:vote", args=[small_study.slug, next_trial.pk])}
    assert_closed_to(client, small_study, next_vote, next_trial)
    assert participant.trials.exclude(answer="").count() == 1

    # Un-archiving closes: the study is back on the list, still closed to participants.
    set_status(staff_client, small_study, "closed")
    assert stored_status(small_study) == Study.Status.CLOSED


def test_status_buttons_match_the_status(staff_client, small_study):
    def buttons():
        page = staff_client.get(reverse("staff:manage", args=[small_study.slug])).content.decode()
        form = page[page.index('class="status-buttons"') :]
        return re.findall(r'name="status" value="(\w+)"', form[: form.index("</form>")])

    assert buttons() == ["closed", "archived"]
    Study.objects.filter(pk=small_study.pk).update(status=Study.Status.CLOSED)
    assert buttons() == ["open", "archived"]
    Study.objects.filter(pk=small_study.pk).update(status=Study.Status.ARCHIVED)
    assert buttons() == ["closed"]


def test_status_changes_need_a_post_from_staff_with_a_csrf_token_and_a_known_status(client, staff_client, small_study):
    url = reverse("staff:set_status", args=[small_study.slug])
    assert staff_client.get(url, {"status": "closed"}).status_code == 405

    anonymous = client.post(url, {"status": "closed"})
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("admin:login"))
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert client.post(url, {"status": "closed"}).status_code == 403

    for status in ("draft", "deleted", ""):
        assert staff_client.post(url, {"status": status}).status_code == 400

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="researcher"))
    assert strict.post(url, {"status": "closed"}).status_code == 403
    assert stored_status(small_study) == Study.Status.OPEN

    # A next page on another site is not followed.
    response = staff_client.post(url, {"status": "closed", "next": "https://evil.example/"})
    assert response.url == reverse("staff:study_list")


def test_archived_studies_are_off_the_list_unless_asked_for(staff_client, build_study):
    build_study("kept", scenes=4)
    archived = build_study("old", scenes=4)
    set_status(staff_client, archived, "archived")

    page = staff_client.get(reverse("staff:study_list")).content.decode()
    assert 'id="study-kept"' in page and 'id="study-old"' not in page
    assert "Archived studies (1)" in page
    page = staff_client.get(reverse("staff:study_list"), {"archived": "1"}).content.decode()
    assert 'id="study-old"' in page and 'id="study-kept"' not in page
    assert "Un-archive" in page


@pytest.fixture
def two_finished_study(vote_study):
    """The vote study (tests/turing/conftest.py) once p1 and c1 finished: 5 people started, 2 finished."""
    study, participants = vote_study
    Participant.objects.filter(pk__in=[participants["p1"].pk, participants["c1"].pk]).update(finished_at=START)
    return study


def set_target(client, study, value):
    return client.post(reverse("staff:manage", args=[study.slug]), {"target_participants": value})


def stored_target(study):
    return Study.objects.values_list("target_participants", flat=True).get(pk=study.pk)


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many"])
def test_target_must_be_a_positive_whole_number(staff_client, two_finished_study, value):
    response = set_target(staff_client, two_finished_study, value)
    assert response.status_code == 200 and response.context["form"].errors["target_participants"]
    assert 'class="errorlist' in response.content.decode()
    assert stored_target(two_finished_study) is None


def test_target_is_set_after_people_joined_and_progress_shows_on_every_page(staff_client, two_finished_study):
    # Not a design setting: it changes while people take part.
    assert two_finished_study.participants.exists()
    response = set_target(staff_client, two_finished_study, "4")
    assert response.status_code == 302 and response.url == reverse("staff:manage", args=["votes"])
    assert stored_target(two_finished_study) == 4

    for url in (
        reverse("staff:study_list"),
        reverse("staff:manage", args=["votes"]),
        reverse("staff:dashboard", args=["votes"]),
        reverse("staff:report", args=["votes"]),
    ):
        page = staff_client.get(url).content.decode()
        # 5 people started, 2 finished, of 4 wanted: the started bar is full, the finished one half.
        assert "<strong>2 / 4</strong> finished · 5 started" in page, url
        assert '<rect class="finished" width="50"' in page and '<rect class="started" width="100"' in page

    # Counting bots in the report's tables does not count them towards the target.
    Participant.objects.create(study=two_finished_study, kind=Participant.Kind.BOT, finished_at=START)
    page = staff_client.get(reverse("staff:report", args=["votes"]), {"bots": "1"}).content.decode()
    assert 'id="participants">6<' in page and "<strong>2 / 4</strong> finished · 5 started" in page

    set_target(staff_client, two_finished_study, "")
    assert stored_target(two_finished_study) is None
    page = staff_client.get(reverse("staff:study_list")).content.decode()
    assert "/ 4</strong>" not in page and "set a target" in page


def test_log_out_from_a_staff_page(two_finished_study):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(get_user_model().objects.create_user("researcher", is_staff=True))
    page = browser.get(reverse("staff:report", args=["votes"])).content.decode()
    form = page[page.index('class="logout"') - 60 :]
    form = form[: form.index("</form>")]
    assert f'action="{reverse("admin:logout")}"' in form and 'method="post"' in form
    token = CSRF_FIELD.search(form).group(1)
    after = f"{reverse('admin:login')}?next={reverse('staff:study_list')}"

    response = browser.post(reverse("admin:logout"), {"csrfmiddlewaretoken": token, "next": after})
    assert response.status_code == 302 and response.url == after
    assert browser.get(reverse("staff:report", args=["votes"])).url.startswith(reverse("admin:login"))


def test_admin_bulk_actions_set_every_status(admin_client, build_study):
    first, second = build_study("first", scenes=4), build_study("second", scenes=4)
    changelist = reverse("admin:turing_study_changelist")
    for action, status in (("archive_studies", "archived"), ("close_studies", "closed"), ("open_studies", "open")):
        response = admin_client.post(changelist, {"action": action, "_selected_action": [first.pk, second.pk]})
        assert response.status_code == 302
        assert stored_status(first) == stored_status(second) == status

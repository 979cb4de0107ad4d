import pytest
from django.db import connection
from django.db.models import RestrictedError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from turing.assignment import enroll_participant
from turing.models import REAL, Study, Trial


def unchanged_form_data(response):
    """What the admin form on the page would POST if submitted as is, inline management forms included."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is not None:
                data[form.add_prefix(name)] = value
    return data


def answer(participant, count, practice=False):
    for trial in participant.trials.filter(practice=practice)[:count]:
        trial.answer = REAL
        trial.answered_at = timezone.now()
        trial.save()


@pytest.fixture
def voted_study(small_study):
    first, second = enroll_participant(small_study), enroll_participant(small_study)
    answer(first, 3)
    answer(first, 1, practice=True)
    answer(second, 1)
    return small_study


@pytest.mark.django_db
def test_study_changelist_shows_participants_and_scored_votes(admin_client, voted_study):
    response = admin_client.get(reverse("admin:turing_study_changelist"))

    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=voted_study.pk)
    assert (row.participant_total, row.vote_total) == (2, 4)
    assert "small" in response.content.decode()


@pytest.mark.django_db
def test_study_change_form_shows_read_only_thumbnails_through_the_image_view(admin_client, small_study):
    response = admin_client.get(reverse("admin:turing_study_change", args=[small_study.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for token in small_study.stimuli.values_list("token", flat=True):
        assert f'src="{reverse("turing:image", args=[token])}"' in page
    assert "stimuli/" not in page.split('id="stimuli-group"')[1].split("</fieldset>")[0]
    thumbnail = admin_client.get(reverse("turing:image", args=[small_study.stimuli.first().token]))
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/png"


@pytest.mark.django_db
def test_study_options_and_status_can_be_edited_but_not_slug_or_seed(admin_client, small_study):
    url = reverse("admin:turing_study_change", args=[small_study.pk])
    stimuli_before = list(small_study.stimuli.values_list("pk", "scene", "source"))
    data = unchanged_form_data(admin_client.get(url))
    data.update(status="closed", real_fraction=0.3, trials_per_participant=5, slug="renamed", seed=99)

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    small_study.refresh_from_db()
    assert (small_study.status, small_study.real_fraction, small_study.trials_per_participant) == ("closed", 0.3, 5)
    assert (small_study.slug, small_study.seed) == ("small", 7)
    assert list(small_study.stimuli.values_list("pk", "scene", "source")) == stimuli_before


@pytest.mark.django_db
def test_study_can_be_created_in_the_admin(admin_client):
    url = reverse("admin:turing_study_add")
    response = admin_client.get(url)
    assert response.status_code == 200
    data = unchanged_form_data(response)
    data.update(title="Made in the admin", slug="made-in-admin", control_fraction=0.25)

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    study = Study.objects.get(slug="made-in-admin")
    assert (study.title, study.control_fraction, study.stimuli.count()) == ("Made in the admin", 0.25, 0)


@pytest.mark.django_db
def test_close_action(admin_client, small_study):
    response = admin_client.post(
        reverse("admin:turing_study_changelist"), {"action": "close_studies", "_selected_action": [small_study.pk]}
    )
    assert response.status_code == 302
    small_study.refresh_from_db()
    assert small_study.status == Study.Status.CLOSED


@pytest.mark.django_db
def test_a_study_with_votes_can_be_deleted_in_the_admin(admin_client, voted_study):
    response = admin_client.post(reverse("admin:turing_study_delete", args=[voted_study.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Study.objects.filter(pk=voted_study.pk).exists()
    assert not Trial.objects.exists()


@pytest.mark.django_db
def test_a_stimulus_with_trials_cannot_be_deleted_on_its_own(voted_study):
    stimulus = Trial.objects.first().stimulus
    with pytest.raises(RestrictedError):
        stimulus.delete()


@pytest.mark.django_db
def test_participant_page_loads_its_trials_stimuli_in_one_query(admin_client, voted_study):
    participant = voted_study.participants.first()
    url = reverse("admin:turing_participant_change", args=[participant.pk])
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(url).status_code == 200
    assert sum('"turing_stimulus"' in query["sql"] for query in queries.captured_queries) == 1


@pytest.mark.django_db
def test_participant_and_trial_admins_are_read_only(admin_client, voted_study):
    participant = voted_study.participants.first()
    trial = participant.trials.first()

    assert admin_client.get(reverse("admin:turing_participant_changelist")).status_code == 200
    participant_page = admin_client.get(reverse("admin:turing_participant_change", args=[participant.pk]))
    assert participant_page.status_code == 200
    assert "group" in participant_page.context["adminform"].readonly_fields
    assert admin_client.get(reverse("admin:turing_trial_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:turing_trial_change", args=[trial.pk])).status_code == 200
    assert admin_client.get(reverse("admin:turing_participant_add")).status_code == 403
    assert admin_client.get(reverse("admin:turing_trial_add")).status_code == 403

    response = admin_client.post(reverse("admin:turing_trial_change", args=[trial.pk]), {"answer": "generated"})
    assert response.status_code == 403
    assert Trial.objects.get(pk=trial.pk).answer == trial.answer


@pytest.mark.django_db
def test_admin_requires_staff_login(client, django_user_model, small_study):
    url = reverse("admin:turing_study_changelist")
    assert client.get(url).status_code == 302
    django_user_model.objects.create_user("visitor", password="pw-for-tests")
    client.login(username="visitor", password="pw-for-tests")
    response = client.get(url)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]

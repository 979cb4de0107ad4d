import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import RestrictedError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from turing.models import Participant, Study, StudyLocked, Trial
from turing.participant.enrollment import enroll_participant
from turing.vocabulary import REAL


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


def answer(participant, count, kind=Trial.Kind.SCORED):
    for trial in participant.trials.filter(kind=kind)[:count]:
        trial.answer = REAL
        trial.answered_at = timezone.now()
        trial.save()


@pytest.fixture
def voted_study(small_study):
    first, second = enroll_participant(small_study), enroll_participant(small_study)
    answer(first, 3)
    answer(first, 1, kind=Trial.Kind.PRACTICE)
    answer(second, 1)
    # A rehearsal bot's participation and votes are no one's data.
    answer(enroll_participant(small_study, kind=Participant.Kind.BOT), 2)
    return small_study


@pytest.mark.django_db
def test_study_changelist_counts_people_and_their_scored_votes(admin_client, voted_study):
    response = admin_client.get(reverse("admin:turing_study_changelist"))

    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=voted_study.pk)
    assert (row.participant_total, row.vote_total) == (2, 4)
    assert "small" in response.content.decode()


@pytest.mark.django_db
def test_study_change_form_shows_read_only_thumbnails_through_the_staff_image_view(admin_client, client, small_study):
    response = admin_client.get(reverse("admin:turing_study_change", args=[small_study.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for token in small_study.stimuli.values_list("token", flat=True):
        assert f'src="{reverse("staff:stimulus", args=[token])}"' in page
    assert "stimuli/" not in page.split('id="stimuli-group"')[1].split("</fieldset>")[0]
    url = reverse("staff:stimulus", args=[small_study.stimuli.first().token])
    thumbnail = admin_client.get(url)
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/png"
    # The stimulus URLs are staff-only; participants only ever get per-trial URLs.
    assert client.get(url).status_code == 302


@pytest.mark.django_db
def test_before_anyone_joins_options_and_status_can_be_edited_but_not_slug_or_seed(admin_client, small_study):
    url = reverse("admin:turing_study_change", args=[small_study.pk])
    stimuli_before = list(small_study.stimuli.order_by("pk").values_list("pk", "scene", "source"))
    data = unchanged_form_data(admin_client.get(url))
    data.update(status="closed", real_fraction=0.3, trials_per_participant=5, slug="renamed", seed=99)

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    small_study.refresh_from_db()
    assert (small_study.status, small_study.real_fraction, small_study.trials_per_participant) == ("closed", 0.3, 5)
    assert (small_study.slug, small_study.seed) == ("small", 7)
    assert list(small_study.stimuli.order_by("pk").values_list("pk", "scene", "source")) == stimuli_before


@pytest.mark.django_db
def test_once_someone_joined_the_design_is_read_only_and_a_post_cannot_change_it(admin_client, small_study):
    url = reverse("admin:turing_study_change", args=[small_study.pk])
    enroll_participant(small_study)
    page = admin_client.get(url)
    assert set(Study.DESIGN_FIELDS) <= set(page.context["adminform"].readonly_fields)
    assert "design settings are locked" in page.content.decode()
    data = unchanged_form_data(page)
    data.update(
        title="Renamed",
        status="closed",
        max_participants=50,
        completion_url="https://example.org/done",
        trials_per_participant=5,
        real_fraction=0.3,
        control_fraction=0.5,
        practice_trials=1,
        exposure_ms=500,
    )

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    small_study.refresh_from_db()
    assert (small_study.title, small_study.status, small_study.max_participants, small_study.completion_url) == (
        "Renamed",
        "closed",
        50,
        "https://example.org/done",
    )
    design = (
        small_study.trials_per_participant,
        small_study.real_fraction,
        small_study.control_fraction,
        small_study.practice_trials,
        small_study.exposure_ms,
    )
    assert design == (4, 0.5, 0.0, 2, None)


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
    client.force_login(django_user_model.objects.create_user("visitor", password="pw-for-tests"))
    response = client.get(url)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


# Locked design: changing how participants are assigned after some joined would mix two designs in one data set.

NEW_DESIGN_VALUES = {
    "protocol": "2afc",
    "trials_per_participant": 5,
    "real_fraction": 0.3,
    "control_fraction": 0.5,
    "exposure_ms": 500,
    "practice_trials": 1,
    "catch_trials": 1,
    "ask_expertise": False,
    "expertise_question": "Do you paint?",
    "seed": 99,
}


def test_every_design_field_has_a_new_value_here():
    assert set(NEW_DESIGN_VALUES) == set(Study.DESIGN_FIELDS)


@pytest.mark.django_db
@pytest.mark.parametrize("field", sorted(NEW_DESIGN_VALUES))
def test_design_settings_are_locked_once_someone_joined(small_study, field):
    enroll_participant(small_study)
    before = getattr(small_study, field)
    setattr(small_study, field, NEW_DESIGN_VALUES[field])

    with pytest.raises(StudyLocked) as locked:
        small_study.save()
    assert list(locked.value.message_dict) == [field]
    assert field.replace("_", " ") in str(locked.value) and "already has participants" in str(locked.value)
    with pytest.raises(StudyLocked):
        small_study.clean()
    # Forms (the admin's included) call full_clean, which reports it as an error on the field.
    with pytest.raises(ValidationError) as invalid:
        small_study.full_clean()
    assert list(invalid.value.message_dict) == [field]
    assert getattr(Study.objects.get(pk=small_study.pk), field) == before


@pytest.mark.django_db
def test_title_status_cap_and_completion_url_stay_editable_after_joins(small_study):
    enroll_participant(small_study)
    small_study.title, small_study.status = "Renamed", Study.Status.CLOSED
    small_study.max_participants, small_study.completion_url = 30, "https://example.org/done"
    small_study.full_clean()
    small_study.save()

    stored = Study.objects.get(pk=small_study.pk)
    assert (stored.title, stored.status, stored.max_participants, stored.completion_url) == (
        "Renamed",
        Study.Status.CLOSED,
        30,
        "https://example.org/done",
    )


@pytest.mark.django_db
def test_design_settings_can_change_while_nobody_has_joined(small_study):
    # 2afc refuses the new control group and catch trials: the protocol changes on its own, after the rest.
    changes = {field: value for field, value in NEW_DESIGN_VALUES.items() if field != "protocol"}
    for field, value in changes.items():
        setattr(small_study, field, value)
    # Attention checks are drawn from the catch scenes the import reserved, five per check, and small has none.
    with pytest.raises(ValidationError, match="5 catch scenes are needed for 1 attention check"):
        small_study.full_clean()
    del changes["catch_trials"]
    small_study.catch_trials = 0
    small_study.full_clean()
    small_study.save()
    assert Study.objects.filter(pk=small_study.pk, **changes).exists()
    small_study.control_fraction = 0
    small_study.protocol = NEW_DESIGN_VALUES["protocol"]
    small_study.full_clean()
    small_study.save()
    assert Study.objects.get(pk=small_study.pk).protocol == NEW_DESIGN_VALUES["protocol"]

    # Deleting the participants (a test run) unlocks the design again.
    enroll_participant(small_study).delete()
    small_study.trials_per_participant = 3
    small_study.save()
    assert Study.objects.get(pk=small_study.pk).trials_per_participant == 3


def test_deleting_answered_trials_in_the_admin_takes_them_off_the_answer_count(admin_client, small_study):
    person = enroll_participant(small_study)
    answer(person, 3)
    Participant.objects.filter(pk=person.pk).update(answer_count=3)
    answered = list(person.trials.exclude(answer="").order_by("pk"))
    open_trial = person.trials.filter(answer="").first()
    admin_client.post(reverse("admin:turing_trial_delete", args=[answered[0].pk]), {"post": "yes"})
    admin_client.post(
        reverse("admin:turing_trial_changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [answered[1].pk, open_trial.pk]},
    )
    person.refresh_from_db()
    assert person.answer_count == 1 == person.trials.exclude(answer="").count()

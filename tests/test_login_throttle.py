"""Staff login throttling (django-axes): ten wrong passwords lock out that username from that address, even
for the right password, until an admin unlocks it."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db
PASSWORD = "the-right-password-1"


@pytest.fixture
def researcher():
    return get_user_model().objects.create_user("researcher", password=PASSWORD, is_staff=True)


def log_in(client, password, address="10.0.0.5"):
    return client.post(reverse("admin:login"), {"username": "researcher", "password": password}, REMOTE_ADDR=address)


def test_ten_wrong_passwords_lock_the_right_one_out_until_an_admin_unlocks(client, researcher, settings):
    assert settings.AXES_FAILURE_LIMIT == 10
    for _ in range(9):
        assert log_in(client, "wrong").status_code == 200  # the login form again, with its error
    assert log_in(client, "wrong").status_code == 429  # the tenth failure locks
    locked = log_in(client, PASSWORD)
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    # Another address may still try the username: the lockout is per username and address.
    assert log_in(client, PASSWORD, address="10.0.0.6").status_code == 302
    client.logout()
    call_command("axes_reset_username", "researcher")
    assert not AccessAttempt.objects.exists()
    assert log_in(client, PASSWORD).status_code == 302


def test_a_forged_forwarded_for_header_does_not_escape_the_lockout(client, researcher):
    for attempt in range(10):
        client.post(
            reverse("admin:login"),
            {"username": "researcher", "password": "wrong"},
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}",
        )
    assert log_in(client, PASSWORD).status_code == 429


def test_a_right_password_clears_earlier_failures(client, researcher):
    for _ in range(9):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(9):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD).status_code == 302

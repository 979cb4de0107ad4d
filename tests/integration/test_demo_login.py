"""`manage.py demo` never changes an account it did not create; the staff account it creates keeps its login."""

import io
import stat

import pytest
from django.contrib.auth import get_user_model

from turing.management.commands.demo import STAFF_LOGIN_FILE, Command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_demo_env(monkeypatch):
    # The developer's own DEMO_ADMIN_* must not decide what these tests see.
    monkeypatch.delenv("DEMO_ADMIN_USER", raising=False)
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)


def staff_login(workdir, reset=False):
    return "\n".join(Command(stdout=io.StringIO()).staff_login(workdir, reset=reset))


def test_an_existing_account_keeps_its_password_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "chosen-for-the-demo")
    user = get_user_model().objects.create_user("admin", password="their-own", is_staff=True, is_superuser=False)
    hashed = user.password

    login = staff_login(tmp_path)

    user.refresh_from_db()
    assert user.password == hashed and user.check_password("their-own")
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, False, True)
    assert "admin with its own password" in login
    assert "their-own" not in login and "chosen-for-the-demo" not in login


def test_an_account_the_demo_did_not_create_stays_untouched_despite_a_record_with_its_name(tmp_path):
    # A record left by an earlier demo whose database was since replaced: the account of that name now is
    # somebody else's.
    (tmp_path / STAFF_LOGIN_FILE).write_text('{"admin": "the-demo-s-old-password"}')
    user = get_user_model().objects.create_superuser("admin", password="their-own")
    hashed = user.password

    login = staff_login(tmp_path)

    user.refresh_from_db()
    assert user.password == hashed
    assert "admin with its own password" in login and "the-demo-s-old-password" not in login


def test_the_demo_creates_its_account_once_and_shows_the_same_login_on_every_run(tmp_path):
    first = staff_login(tmp_path)

    user = get_user_model().objects.get(username="admin")
    assert user.is_staff and user.is_superuser and user.is_active
    record = tmp_path / STAFF_LOGIN_FILE
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    password = first.split(" / ")[1].split()[0]
    assert user.check_password(password) and password in record.read_text()
    hashed = user.password

    second = staff_login(tmp_path)

    user.refresh_from_db()
    assert user.password == hashed
    assert f"admin / {password}" in second and "unchanged" in second


def test_demo_admin_password_creates_the_account_but_never_resets_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "first-choice")
    assert "admin / first-choice" in staff_login(tmp_path)
    hashed = get_user_model().objects.get(username="admin").password

    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "second-choice")
    login = staff_login(tmp_path)

    user = get_user_model().objects.get(username="admin")
    assert user.password == hashed and user.check_password("first-choice")
    assert "admin / first-choice" in login and "second-choice" not in login
    assert "DEMO_ADMIN_PASSWORD is ignored" in login and "python manage.py demo --reset-password" in login

    # Asked for: the demo's own account gets the new password, recorded beside the old record.
    login = staff_login(tmp_path, reset=True)
    user.refresh_from_db()
    assert user.check_password("second-choice") and "admin / second-choice" in login
    assert "admin / second-choice" in staff_login(tmp_path)


def test_reset_password_never_touches_an_account_the_demo_did_not_create(tmp_path):
    user = get_user_model().objects.create_user("admin", password="their-own", is_staff=True)
    hashed = user.password
    login = staff_login(tmp_path, reset=True)
    user.refresh_from_db()
    assert user.password == hashed and "its own password" in login


def test_an_existing_account_without_staff_status_is_not_promoted(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_USER", "alice")
    user = get_user_model().objects.create_user("alice", password="hers")
    hashed = user.password

    login = staff_login(tmp_path)

    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser, user.password) == (False, False, hashed)
    assert "'alice' is not an active staff account" in login and "DEMO_ADMIN_USER" in login
    assert not (tmp_path / STAFF_LOGIN_FILE).exists()

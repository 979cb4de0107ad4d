"""The production settings module, checked the way an operator would: in a fresh process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    environment.update(DJANGO_SETTINGS_MODULE="evalsite.settings_production", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_production_settings_pass_check_deploy():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    SECRET_KEY="x" * 20 + "production-secret-for-the-check-0123456789", ALLOWED_HOSTS="poster.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_misspelt_yes_no_setting_stops_start_up_and_names_itself():
    result = manage("check", SECRET_KEY="x" * 50, SECURE_SSL_REDIRECT="ture")
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT='ture' is not a yes/no value" in result.stderr


def test_the_lan_settings_drop_only_what_needs_tls():
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; import django; django.setup(); "
         "print(settings.DEBUG, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, "
         "settings.SECURE_HSTS_SECONDS, settings.X_FRAME_OPTIONS)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "evalsite.settings_lan", "SECRET_KEY": "x" * 50})
    assert result.stdout.split() == ["False", "False", "False", "0", "DENY"], result.stderr

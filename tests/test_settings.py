"""The production settings module, checked the way an operator would: in a fresh process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    environment.update(DJANGO_SETTINGS_MODULE="evalsite.settings_production", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_says_to_collect_the_static_files_first_then_passes(tmp_path):
    environment = dict(
        SECRET_KEY="x" * 20 + "production-secret-for-the-check-0123456789",
        ALLOWED_HOSTS="poster.example.org",
        STATIC_ROOT=str(tmp_path),
    )
    result = manage("check", "--deploy", **environment)
    assert result.returncode != 0
    assert f"(turing.E001) no static files manifest at {tmp_path / 'staticfiles.json'}" in result.stderr
    assert "HINT: run `python manage.py collectstatic --noinput`" in result.stderr

    # What collectstatic leaves for the manifest storage: the check looks for its manifest (turing.checks).
    (tmp_path / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    result = manage("check", "--deploy", "--fail-level", "WARNING", **environment)
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
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; django.setup(); "
            "print(settings.DEBUG, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, "
            "settings.SECURE_HSTS_SECONDS, settings.X_FRAME_OPTIONS)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "evalsite.settings_lan", "SECRET_KEY": "x" * 50},
    )
    assert result.stdout.split() == ["False", "False", "False", "0", "DENY"], result.stderr


def test_without_a_secret_key_a_local_one_is_made_once_owner_only_and_kept(tmp_path):
    from evalsite.settings import local_secret_key

    path = tmp_path / ".secret-key"
    first = local_secret_key(path)
    assert len(first) >= 50 and path.stat().st_mode & 0o777 == 0o600
    assert local_secret_key(path) == first


def test_two_development_processes_share_the_key_without_secret_key_set():
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    keys = [
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; from django.conf import settings; django.setup(); print(settings.SECRET_KEY)",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=environment | {"DJANGO_SETTINGS_MODULE": "evalsite.settings"},
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert keys[0] == keys[1] and len(keys[0].strip()) >= 50

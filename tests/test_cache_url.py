"""CACHE_URL: each form becomes Django's cache backend, a bad one stops start-up naming CACHE_URL, and the
production settings share a database table by default while development keeps one process's memory."""

import os
import sqlite3
import subprocess
import sys
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import RequestFactory

from evalsite.cache_url import cache_from_url
from tests.test_settings import ROOT, manage
from turing.participant import throttle
from turing.participant.throttle import join_allowed

REDIS = "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(
    ("url", "backend", "location"),
    [
        ("redis://127.0.0.1:6380/2", REDIS, "redis://127.0.0.1:6380/2"),
        ("redis://cache.internal", REDIS, "redis://cache.internal:6379/0"),
        ("redis://:s3cret@10.0.0.9:6379/1", REDIS, "redis://:s3cret@10.0.0.9:6379/1"),
        ("rediss://[2001:db8::7]:6390/3", REDIS, "rediss://[2001:db8::7]:6390/3"),
        ("db://turing_cache", "evalsite.database_cache.DatabaseCache", "turing_cache"),
        ("locmem://", "django.core.cache.backends.locmem.LocMemCache", ""),
    ],
)
def test_each_form_names_its_backend_and_location(url, backend, location):
    cache = cache_from_url(url)
    assert (cache["BACKEND"], cache["LOCATION"]) == (backend, location)


@pytest.mark.django_db
def test_the_database_cache_keeps_every_join_count_of_a_launch(settings):
    # 400 clients in one minute: Django's default of 300 entries would cull some counts and let them join again.
    settings.CACHES = {"default": cache_from_url("db://turing_cache")}
    settings.TURING_JOINS_PER_MINUTE = 1
    call_command("createcachetable", verbosity=0)
    clients = [RequestFactory().get("/", REMOTE_ADDR=f"198.51.{n // 250}.{n % 250}") for n in range(400)]
    with mock.patch.object(throttle, "time", SimpleNamespace(time=lambda: 60.0 * 28_000_000 + 1)):
        assert all(join_allowed(client) for client in clients)
        assert not any(join_allowed(client) for client in clients)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("memcached://127.0.0.1:11211", "unknown scheme memcached://"),
        ("127.0.0.1:6379", "unknown scheme"),
        ("redis://127.0.0.1:six/0", "Port could not be cast to integer value"),
        ("redis://127.0.0.1:99999/0", "Port out of range"),
        ("redis:///0", "no host"),
        ("redis://127.0.0.1:6379/zero", "the database 'zero' is not a number"),
        ("db://", "the table name must be letters"),
        ("db://cache; DROP TABLE turing_study", "the table name must be letters"),
        ("locmem://x/y", "locmem:// takes nothing after it"),
    ],
)
def test_a_bad_url_is_refused_naming_cache_url_and_the_problem(url, problem):
    with pytest.raises(ImproperlyConfigured) as refused:
        cache_from_url(url)
    message = str(refused.value)
    assert message.startswith(f"CACHE_URL={url!r}: ") and problem in message
    assert "redis://HOST:PORT/DB, db://TABLE or locmem://" in message


def cache_setting(module, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("CACHE_URL", "DATABASE_URL")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; from django.conf import settings; django.setup(); "
            "print(settings.CACHES['default']['BACKEND'], settings.CACHES['default']['LOCATION'])",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment | {"DJANGO_SETTINGS_MODULE": module, "SECRET_KEY": "x" * 50} | env,
    )


def test_production_and_lan_settings_share_a_database_table_and_development_keeps_its_memory():
    for module in ("evalsite.settings_production", "evalsite.settings_lan"):
        assert cache_setting(module).stdout.split() == ["evalsite.database_cache.DatabaseCache", "turing_cache"]
    assert cache_setting("evalsite.settings").stdout.split() == ["django.core.cache.backends.locmem.LocMemCache"]
    redis = cache_setting("evalsite.settings_production", CACHE_URL="redis://127.0.0.1:6379/0")
    assert redis.stdout.split() == [REDIS, "redis://127.0.0.1:6379/0"]


def test_a_misspelt_cache_url_stops_start_up_and_names_itself():
    result = manage("check", SECRET_KEY="x" * 50, CACHE_URL="redis//127.0.0.1:6379")
    assert result.returncode != 0
    assert "CACHE_URL='redis//127.0.0.1:6379': unknown scheme (none)" in result.stderr


def test_migrate_makes_the_production_cache_table(tmp_path):
    database = tmp_path / "db.sqlite3"
    migrated = manage("migrate", "-v", "0", SECRET_KEY="x" * 50, DATABASE_URL=f"sqlite:///{database}")
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(database) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(turing_cache)")]
    assert columns == ["cache_key", "value", "expires"]

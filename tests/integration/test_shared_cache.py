"""Several server processes count joins together in the cache CACHE_URL names: a real redis-server, or the
database table of the production default, with separate Python processes joining at once."""

import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.integration.test_serving import free_port

ROOT = settings.BASE_DIR
LIMIT = 6
JOINS_PER_PROCESS = 12
PROCESSES = 3
# Each process counts LIMIT*2 joins from one client in a minute fixed by the test, so that a minute turning over
# mid-test cannot reset the count.
JOINING = """
import sys
from types import SimpleNamespace

import django

django.setup()
from django.test import RequestFactory

from turing.participant import throttle

throttle.time = SimpleNamespace(time=lambda: float(sys.argv[1]))
sys.stdin.readline()  # every process starts joining at the same moment
request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=sys.argv[2])
print(sum(throttle.join_allowed(request) for _ in range(int(sys.argv[3]))))
"""


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of the test's own (Debian's), on a free loopback port, keeping nothing on disk."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"redis-server did not start:\n{server.communicate()[0]}")
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/3"
    server.terminate()
    server.wait(timeout=10)


def joins_at_once(env, client_of):
    """Joins each process accepted, PROCESSES processes joining at once, process n for client client_of(n)."""
    environment = os.environ | {
        "DJANGO_SETTINGS_MODULE": "evalsite.settings",
        "TURING_JOINS_PER_MINUTE": str(LIMIT),
        "TRUSTED_PROXIES": "10.0.0.2",
        "CLIENT_IP_HEADER": "X-Forwarded-For",
    }
    minute = str(time.time())
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", JOINING, minute, client_of(n), str(JOINS_PER_PROCESS)],
            cwd=ROOT,
            env=environment | env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    time.sleep(3)  # Django set up in each
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), [error for _, error in results]
    return [int(output) for output, _ in results]


def test_processes_sharing_redis_accept_the_limit_together_and_count_clients_apart(redis_url):
    accepted = joins_at_once({"CACHE_URL": redis_url}, lambda n: "198.51.100.7")
    assert sum(accepted) == LIMIT, accepted
    # Behind the proxy, each client has a bucket of its own in the shared count.
    assert joins_at_once({"CACHE_URL": redis_url}, lambda n: f"198.51.100.{10 + n}") == [LIMIT] * PROCESSES


def test_without_a_shared_cache_each_process_counts_alone():
    # What the production default replaces: the development locmem cache, one count per process.
    assert joins_at_once({"CACHE_URL": "locmem://"}, lambda n: "198.51.100.7") == [LIMIT] * PROCESSES


def accepted_sharing_a_table(database_url):
    env = {"CACHE_URL": "db://turing_cache", "DATABASE_URL": database_url}
    made = subprocess.run(
        [sys.executable, "manage.py", "createcachetable"], cwd=ROOT, env=os.environ | env, capture_output=True
    )
    assert made.returncode == 0, made.stderr
    return joins_at_once(env, lambda n: "198.51.100.7")


def test_processes_sharing_the_database_table_accept_the_limit_together(tmp_path):
    accepted = accepted_sharing_a_table(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert sum(accepted) == LIMIT, accepted


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_processes_sharing_the_postgresql_table_accept_the_limit_together():
    # The test database pytest-django made, which the processes share with this one.
    db = connection.settings_dict
    accepted = accepted_sharing_a_table(
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    assert sum(accepted) == LIMIT, accepted

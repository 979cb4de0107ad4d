"""Participants behind a real nginx (Debian's, on a free loopback port with a configuration of the test's own)
that proxies to Django's live server and appends the client's address to X-Forwarded-For: each client has its
own join bucket, and a client forging the header is counted on the address nginx saw."""

import http.client
import subprocess
import time
from types import SimpleNamespace
from unittest import mock

import pytest

from tests.integration.test_serving import free_port
from turing.participant import throttle

CONFIG = """
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path, live_server):
    """nginx in front of the live server: the port it listens on at 127.0.0.1."""
    port = free_port()
    config = tmp_path / "nginx.conf"
    config.write_text(CONFIG.format(folder=tmp_path, port=port, upstream=live_server.url))
    process = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"nginx did not start:\n{process.communicate()[0]}\n{(tmp_path / 'error.log').read_text()}")
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(autouse=True)
def one_minute():
    # Every join counted in the same minute (the live server runs in this process), however long the test takes.
    with mock.patch.object(throttle, "time", SimpleNamespace(time=lambda: 60.0 * 28_000_000 + 1)):
        yield


def look_up(port, client, label, **headers):
    """The status of a label look-up (counted as a join) sent to nginx from the loopback address client."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(client, 0))
    connection.request("GET", f"/s/small/?participant_label={label}", headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_clients_behind_nginx_have_their_own_join_buckets(nginx, small_study, settings):
    settings.TRUSTED_PROXIES, settings.CLIENT_IP_HEADER = ["127.0.0.1"], "X-Forwarded-For"
    settings.TURING_JOINS_PER_MINUTE = 2
    # Linux answers the whole of 127.0.0.0/8 on loopback: three clients, each with an address of its own.
    assert [look_up(nginx, "127.0.0.2", f"a{n}") for n in range(3)] == [200, 200, 429]
    assert [look_up(nginx, "127.0.0.3", f"b{n}") for n in range(3)] == [200, 200, 429]
    # A new X-Forwarded-For each time: nginx appends the address it saw, and that is the one counted.
    forged = [look_up(nginx, "127.0.0.4", f"c{n}", **{"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(3)]
    assert forged == [200, 200, 429]


def test_without_proxy_settings_everyone_behind_nginx_shares_one_bucket(nginx, small_study, settings):
    # What the issue saw: behind the proxy every participant has nginx's address.
    settings.TURING_JOINS_PER_MINUTE = 2
    assert [look_up(nginx, f"127.0.0.{n}", f"d{n}") for n in (2, 3, 4)] == [200, 200, 429]

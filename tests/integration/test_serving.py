"""The ways a researcher serves a study, as real processes: `manage.py serve` (gunicorn, LAN settings), the
production settings under gunicorn, and a server that refuses to start without collected static files."""

import ipaddress
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zxingcpp
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image

ROOT = settings.BASE_DIR
START_SECONDS = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(tmp_path, **extra):
    """A database, media and static folder of the test's own; the settings module and key from ``extra``."""
    return (
        os.environ
        | {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "SECRET_KEY": "test-" + "k" * 50,
        }
        | extra
    )


def manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def get(url, **headers):
    """(status, body, final URL); redirects are not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), error.headers


def wait_until_healthy(process, base, **headers):
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            if get(f"{base}/healthz", **headers)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail("the server did not answer /healthz within a minute")


@pytest.fixture
def server():
    """Starts a command as a process group and stops the whole group afterwards."""
    started = []

    def start(command, env):
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


# How a terminal draws segno's compact QR code: each character cell is one module wide and two tall, the glyph's
# painted half in the terminal's foreground colour (light on a dark terminal) and the rest its background.
PAINTED = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}


def terminal_qr_codes(output):
    """What a phone's QR scanner reads from the QR code in output as a terminal shows it: the lines drawn with
    block characters are stacked cell by cell exactly as printed, blank lines included."""
    lines = output.splitlines()
    drawn = [i for i, line in enumerate(lines) if line and set(line) <= set(PAINTED) and "█" in line]
    if not drawn:
        return []
    rows = lines[drawn[0] : drawn[-1] + 1]
    width = max(len(row) for row in rows)
    modules = np.zeros((2 * len(rows), width), dtype=np.uint8)
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            modules[2 * y : 2 * y + 2, x] = PAINTED.get(char, (0, 0))
    picture = Image.fromarray(modules * 255).resize((width * 8, 2 * len(rows) * 8), Image.Resampling.NEAREST)
    bordered = Image.new("L", (picture.width + 64, picture.height + 64), 0)
    bordered.paste(picture, (32, 32))
    return [found.text for found in zxingcpp.read_barcodes(bordered)]


def make_study(env):
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", "from turing.models import Study; Study.objects.create(slug='lan', title='LAN')")


def test_serve_runs_gunicorn_with_static_files_and_prints_the_urls(tmp_path, server):
    env = environment(tmp_path)
    make_study(env)
    port = free_port()
    process = server([sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "2"], env)
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(process, base)

    status, page, _ = get(f"{base}/s/lan/")
    assert status == 200 and "LAN" in page
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
    assert re.search(r"\.[0-9a-f]{12}\.css$", stylesheet)  # from collectstatic's manifest, DEBUG off
    status, css, headers = get(base + stylesheet)
    assert status == 200 and css and "max-age" in headers["Cache-Control"]
    status, _, headers = get(f"{base}/staff/")
    assert status == 302 and headers["Location"].startswith("/admin/login/")
    assert get(f"{base}/s/lan/", Host="intruder.example")[0] == 400

    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    join = re.search(r"Participants of 'LAN': (http://\S+/s/lan/)", output).group(1)
    assert terminal_qr_codes(output) == [join]
    assert "/staff/" in output and "gunicorn" in output.lower()


def listening_addresses(port):
    """The local IPv4 and IPv6 addresses something listens on at port, as the kernel lists them."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(str(ipaddress.ip_address(words)))
    return found


def test_serve_binds_only_bind_tells_phones_host_and_its_workers_share_the_join_limit(tmp_path, server):
    env = environment(tmp_path, TURING_JOINS_PER_MINUTE="3")
    make_image_study(env, tmp_path)
    port = free_port()
    command = ["serve", "--port", str(port), "--workers", "3", "--bind", "127.0.0.1", "--host", "192.0.2.50"]
    process = server([sys.executable, "manage.py", *command], env)
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(process, base)
    assert listening_addresses(port) == ["127.0.0.1"]

    # Every join in one minute: three workers counting in the table `serve` made accept three joins in all,
    # where each worker's own memory would have accepted up to three each.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    replies = [get(f"{base}/s/lan/?participant_label=p{n}") for n in range(9)]
    assert [status for status, _, _ in replies] == [200] * 3 + [429] * 6
    assert 'name="join_key"' in replies[0][1]  # the consent form: the study takes joins

    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    assert f"Listening on 127.0.0.1:{port}; phones are told http://192.0.2.50:{port}" in output
    assert (
        f"WARNING: --bind 127.0.0.1 listens for this machine only: no phone can open http://192.0.2.50:{port}" in output
    )


def test_serve_refuses_a_bind_that_is_not_an_address():
    with pytest.raises(CommandError, match=r"--bind study\.example\.org: not an IP address"):
        call_command("serve", bind="study.example.org", port=free_port())


def test_production_settings_under_gunicorn_need_collectstatic_then_serve_participants_and_staff(tmp_path, server):
    env = environment(tmp_path, DJANGO_SETTINGS_MODULE="evalsite.settings_production", ALLOWED_HOSTS="127.0.0.1")
    make_study(env)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "evalsite.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    # Without collectstatic the server stops at start and says what to do.
    stopped = server(command, env)
    output = stopped.communicate(timeout=START_SECONDS)[0]
    assert stopped.returncode != 0 and "no static files manifest" in output and "collectstatic" in output

    manage(env, "collectstatic", "--noinput")
    process = server(command, env)
    base, behind_tls = f"http://127.0.0.1:{port}", {"X-Forwarded-Proto": "https"}
    wait_until_healthy(process, base, **behind_tls)
    status, page, headers = get(f"{base}/s/lan/", **behind_tls)
    assert status == 200 and "LAN" in page and "Strict-Transport-Security" in headers
    assert get(f"{base}/staff/", **behind_tls)[0] == 302
    assert get(f"{base}/admin/login/", **behind_tls)[0] == 200
    # Plain HTTP reaching the app means the proxy is not doing TLS: sent to HTTPS.
    assert get(f"{base}/s/lan/")[0] == 301


def test_the_wsgi_module_loads_every_view_and_no_database_connection(tmp_path):
    # gunicorn --preload imports it in the master before forking: the workers inherit the imports, and a
    # connection opened there would be shared by all of them.
    probe = (
        "import sys, evalsite.wsgi; from django.db import connections; "
        "print(all(c.connection is None for c in connections.all()), 'turing.participant.views' in sys.modules, "
        "'turing.staff.views' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=environment(tmp_path), check=True, capture_output=True, text=True
    )
    assert result.stdout.split() == ["True", "True", "True"]


def make_image_study(env, tmp_path):
    """Study 'lan': 4 scenes of noise, real and one model (the same pixels, so the lightness audit passes),
    2 scored trials each and no practice."""
    images = tmp_path / "images"
    for folder in ("real", "model"):
        (images / folder).mkdir(parents=True)
    for scene in range(4):
        picture = Image.frombytes("RGB", (32, 32), random.Random(scene).randbytes(32 * 32 * 3))
        for folder in ("real", "model"):
            picture.save(images / folder / f"scene{scene}.png")
    manage(env, "migrate", "--noinput")
    manage(
        env,
        "create_study",
        "lan",
        "--title",
        "LAN",
        "--real",
        str(images / "real"),
        "--generated",
        f"model={images / 'model'}",
        "--trials",
        "2",
        "--practice",
        "0",
    )


@pytest.fixture
def restartable(tmp_path, server):
    """serve of study 'lan' without SECRET_KEY in its environment, so that the key kept in .secret-key beside
    manage.py signs the sessions: (base URL, start() -> the process once healthy, stop(process))."""
    env = {name: value for name, value in environment(tmp_path).items() if name != "SECRET_KEY"}
    make_image_study(env, tmp_path)
    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "1", "--host", "127.0.0.1"]
    base = f"http://127.0.0.1:{port}"

    def start():
        process = server(command, env)
        wait_until_healthy(process, base)
        return process

    def stop(process):
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    return SimpleNamespace(base=base, env=env, start=start, stop=stop)


@pytest.mark.browser
def test_a_phone_mid_study_carries_on_through_a_serve_restart_without_a_secret_key_set(restartable):
    from playwright.sync_api import expect, sync_playwright

    from tests.turing.conftest import CHROMIUM, CHROMIUM_ARGS, LOOK_MS, PHONE, start_study

    base = restartable.base
    process = restartable.start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=PHONE).new_page()
        start_study(page, f"{base}/s/lan/")
        page.wait_for_timeout(LOOK_MS)

        restartable.stop(process)
        page.get_by_role("button", name="Real").click()  # sent while the server is down
        expect(page.get_by_text("Connection problem — retrying…")).to_be_visible()
        restartable.start()
        expect(page.locator(".progress")).to_have_text("2 / 2", timeout=40_000)
        # The session survived too: signed with the key kept in .secret-key, not one made up at each start.
        page.reload()
        assert page.url == f"{base}/s/lan/trial/"  # not sent back to the consent page
        expect(page.locator(".progress")).to_have_text("2 / 2")
        page.wait_for_timeout(LOOK_MS)
        page.get_by_role("button", name="Generated").click()
        page.wait_for_url(f"{base}/s/lan/done/")
        browser.close()
    answers = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from turing.models import Participant as P; "
            "print([(p.answer_count, p.trials.exclude(answer='').count()) for p in P.objects.all()])",
        ],
        cwd=ROOT,
        env=restartable.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    assert answers == "[(2, 2)]"  # one participant, both answers once

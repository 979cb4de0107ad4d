"""A poster session under load: simulated phones take a study through a real `manage.py serve` (gunicorn).

    .venv/bin/python -m benchmarks.load [--participants 50] [--arrival-rate 30] [--think-ms 300]
        [--db sqlite|postgres] [--workers N] [--fault none|kill-worker|restart|db-stop]
        [--scenes 60] [--trials 20] [--practice 2] [--seed 0] [--timeout 600] [--json PATH]
        [--calibration-joins 30] [--calibration-votes 200]

Everything is throwaway: a temporary folder with synthetic images, a study made by `create_study`, a SQLite
file or a private PostgreSQL cluster (Debian's binaries, on a free port), and the server process, all
removed at the end.

K participants arrive as a Poisson process and do what a phone running participant.js does, over plain
HTTP/1.1 (asyncio streams, a connection of its own per participant): the join page, Start (the join POST),
the trial page, then per trial the image, a think time, and the vote as JSON, the next image coming from the
vote's reply; at the end the finish page. Some misbehave, chosen with the seed: a vote sent twice at once on
two connections, a reload of the trial page, a vote sent again after it was answered (the back button), and
Start sent twice at once. A lost connection, or a 503 that says to retry, is retried with the same request
after 1 s, 2 s, 4 s ... 15 s, as participant.js does; any other unexpected status is an error, counted by
status, after which the participant reloads the page as a browser would.

It prints (and with --json writes) per request kind (join = the join POST, trial = the trial page, image,
vote) the 50th, 95th and 99th percentile latency of successful requests, votes and joins per second, and
what the database holds afterwards: votes acknowledged but not stored (lost_votes), votes or participants
stored twice (duplicate_votes), participants who finished. CPU per join and per vote comes from a short
sequential calibration after the main run (server and database processes, read from /proc), beside a floor:
the same number of GET /healthz, a bare view with one query. `--fault` breaks something when about half the
votes are in: one gunicorn worker killed, the whole server restarted, or the database stopped for 10 s.

cpu_ms_per_vote covers two requests (the image and the vote), floor_cpu_ms_per_request one.

Exit status 0 however slow it was; 1 when a vote was lost or stored twice, or a participant did not finish.
"""

import argparse
import asyncio
import glob
import http.client
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from turing.vocabulary import ANSWERS

ROOT = Path(__file__).resolve().parent.parent
SLUG = "load"
HOST = "127.0.0.1"
MAX_PARTICIPANTS = 1000
# The request kinds whose latency is reported; the join page, finish page and /healthz are sent but not reported.
MEASURED = ("join", "trial", "image", "vote")
# Misbehaving participants: share of all participants doing each (at least one each, so that a small run
# exercises every path too).
MISBEHAVIOUR = {"double_vote": 0.10, "reload": 0.05, "go_back": 0.05, "double_join": 0.05}
RETRY_FIRST_S, RETRY_MAX_S = 1, 15  # participant.js's backoff
# One request that takes longer than this is treated as a lost connection and sent again (a phone's browser
# would give up on it too); far above any healthy latency, so it only fires when the server is stuck.
REQUEST_TIMEOUT_S = 60
# A participant who meets this many unexpected statuses stops (a person would give up long before).
MAX_ERRORS_PER_PARTICIPANT = 10
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
DB_STOP_SECONDS = 10
CALIBRATION_TIMEOUT_S = 180
FLOOR_MIN_REQUESTS = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- options


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50, help="simulated participants (at most 1000)")
    parser.add_argument("--arrival-rate", type=float, default=30.0, help="joins per second (Poisson arrivals)")
    parser.add_argument("--think-ms", type=float, default=300.0, help="mean think time per image, jittered ±50%%")
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--trials", type=int, default=20, help="scored trials per participant")
    parser.add_argument("--practice", type=int, default=2, help="practice trials per participant")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: serve's default)")
    parser.add_argument("--fault", choices=("none", "kill-worker", "restart", "db-stop"), default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on the main run in seconds")
    parser.add_argument("--calibration-joins", type=int, default=30)
    parser.add_argument("--calibration-votes", type=int, default=200)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.participants <= MAX_PARTICIPANTS:
        parser.error(f"--participants must be between 1 and {MAX_PARTICIPANTS}")
    if args.arrival_rate <= 0 or args.think_ms < 0 or args.timeout <= 0:
        parser.error("--arrival-rate and --timeout must be positive, --think-ms not negative")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.calibration_joins < 1 or args.calibration_votes < 1:
        parser.error("--calibration-joins and --calibration-votes must be at least 1")
    if args.fault == "db-stop" and args.db != "postgres":
        parser.error(
            "--fault db-stop needs --db postgres: SQLite is a file inside the server, there is no "
            "database server to stop"
        )
    return args


# ---------------------------------------------------------------- processes and their CPU


def free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def proc_stat(pid):
    """(parent pid, own utime+stime, reaped children's cutime+cstime) in clock ticks, or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def tree_ticks(root):
    """CPU ticks of a server process: its own, its live children's (gunicorn workers, PostgreSQL backends), and
    those of children it has already reaped (a killed worker, a closed backend)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat:
                stats[int(entry)] = stat
    if root not in stats:
        return None
    _, own, reaped = stats[root]
    children = sum(own + reaped for parent, own, reaped in stats.values() if parent == root)
    return own + reaped + children


def children_of(root):
    return [
        int(entry) for entry in os.listdir("/proc") if entry.isdigit() and (proc_stat(int(entry)) or (None,))[0] == root
    ]


class CpuMeter:
    """CPU seconds spent by the server and the database between two readings. A reading is (pid, ticks) per
    side, so a process that was replaced in between (a restart) gives None rather than a wrong figure."""

    def __init__(self, server, database):
        self.server, self.database = server, database

    def read(self):
        return {
            side: (pid, tree_ticks(pid) if pid else 0)
            for side, pid in (("server", self.server.pid), ("db", self.database.pid()))
        }

    @staticmethod
    def seconds(before, after):
        spent = {}
        for side in before:
            (pid0, ticks0), (pid1, ticks1) = before[side], after[side]
            ok = pid0 == pid1 and ticks0 is not None and ticks1 is not None
            spent[side] = (ticks1 - ticks0) / CLOCK_TICKS if ok else None
        return spent


class SqliteDatabase:
    """A SQLite file in the work dir: no process of its own, its CPU is the server's."""

    name = "sqlite"

    def __init__(self, workdir):
        self.url = f"sqlite:///{workdir / 'load.sqlite3'}"

    def start(self):
        pass

    def stop(self):
        pass

    def pid(self):
        return None


class PrivatePostgres:
    """A PostgreSQL cluster of this run's own (initdb in the work dir, a free port, trust auth on 127.0.0.1),
    so nothing is shared with a system cluster and everything goes with the work dir."""

    name = "postgres"

    def __init__(self, workdir):
        self.bin = postgres_binaries()
        self.home = workdir / "postgres"
        self.data = self.home / "data"
        self.port = free_port()
        self.url = f"postgres://bench@{HOST}:{self.port}/bench"
        self.running = False
        # initdb and the server refuse to run as root: as root, run them as the postgres user.
        self.as_user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
        self.home.mkdir()
        if self.as_user:
            workdir.chmod(0o711)  # the postgres user must reach its folder inside root's private work dir
            shutil.chown(self.home, "postgres", "postgres")

    def run(self, *command, timeout=120):
        subprocess.run(
            [str(self.bin / command[0]), *command[1:]],
            check=True,
            timeout=timeout,
            capture_output=True,
            text=True,
            cwd=self.home,
            **self.as_user,
        )

    def start(self):
        if not self.data.exists():
            self.run("initdb", "-D", str(self.data), "-U", "bench", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.home / "log"),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {self.port} -k {self.home} -c listen_addresses={HOST}",
        )
        self.running = True
        if not (self.home / "created").exists():
            self.run("createdb", "-h", HOST, "-p", str(self.port), "-U", "bench", "bench")
            (self.home / "created").touch()

    def stop(self, mode="fast"):
        if self.running:
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    def pid(self):
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None


def postgres_binaries():
    """Debian's PostgreSQL binaries, newest version; installed by .ci/postgres when missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        print("PostgreSQL is not installed: running .ci/postgres", file=sys.stderr)
        subprocess.run(["bash", ".ci/postgres"], cwd=ROOT, check=True, timeout=900)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class Server:
    """`manage.py serve` as a process group of its own. serve execs gunicorn, so the process started here is
    gunicorn's master and its children are the workers."""

    def __init__(self, workdir, env, port, workers):
        self.env, self.port, self.workers = env, port, workers
        self.log_path = workdir / "server.log"
        self.process = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self):
        command = [sys.executable, "manage.py", "serve", "--port", str(self.port)]
        if self.workers:
            command += ["--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.wait_healthy()

    def wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            if healthz_status(self.port) == 200:
                time.sleep(1)  # gunicorn forks its workers one after another: let it finish
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer /healthz within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def worker_pids(self):
        return children_of(self.pid) if self.pid else []

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def healthz_status(port):
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def server_environment(workdir, database):
    environment = dict(os.environ)
    # serve sets the settings module itself (the LAN settings, DEBUG off); a DEBUG inherited from the shell
    # would make those settings refuse to start.
    for name in ("DJANGO_SETTINGS_MODULE", "DEBUG"):
        environment.pop(name, None)
    return environment | {
        "DATABASE_URL": database.url,
        "MEDIA_ROOT": str(workdir / "media"),
        "STATIC_ROOT": str(workdir / "static"),
        # Fixed for the run, so a restarted server reads the sessions the first one wrote.
        "SECRET_KEY": "load-benchmark-" + "k" * 50,
        # Every simulated phone comes from 127.0.0.1, which the per-address join limit would count as one
        # client and refuse after 30 joins a minute: off, as it would not bind real phones behind a NAT either.
        "TURING_JOINS_PER_MINUTE": "0",
    }


# ---------------------------------------------------------------- the study


def make_images(workdir, scenes, seed):
    """Noise images, one per scene, the same pixels for "real" and both "models" (so the lightness audit
    passes), with the entropy of a photo so the image requests carry a photo's bytes."""
    # Pillow comes with the server's venv; only the setup uses it, never the load generator.
    from PIL import Image

    rng = random.Random(seed)
    folders = {name: workdir / "images" / name for name in ("real", "perceptual", "koalarization")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for scene in range(scenes):
        image = Image.frombytes("RGB", (64, 64), rng.randbytes(64 * 64 * 3)).resize((256, 256), Image.BICUBIC)
        for folder in folders.values():
            image.save(folder / f"scene-{scene:03d}.png")
    return folders


def manage(env, *arguments, timeout=300):
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {arguments[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def build_study(workdir, env, args):
    """Create the study; returns the trials each participant gets (practice + scored + catch), as create_study
    prints them."""
    folders = make_images(workdir, args.scenes, args.seed)
    manage(env, "migrate", "--noinput")
    output = manage(
        env,
        "create_study",
        SLUG,
        "--title",
        "Load benchmark",
        "--real",
        str(folders["real"]),
        "--generated",
        f"perceptual={folders['perceptual']}",
        "--generated",
        f"koalarization={folders['koalarization']}",
        "--trials",
        str(args.trials),
        "--practice",
        str(args.practice),
        "--control-fraction",
        "0.2",
        "--seed",
        "0",
    )
    counts = re.search(r"each participant: (\d+) practice, (\d+) scored and (\d+) catch", output)
    if counts is None:
        raise RuntimeError(f"create_study did not say how many trials each participant gets:\n{output}")
    return sum(int(count) for count in counts.groups())


# ---------------------------------------------------------------- HTTP/1.1 client


class Response:
    def __init__(self, status, headers, cookies, body):
        self.status, self.headers, self.cookies, self.body = status, headers, cookies, body
        self.elapsed = 0.0

    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body as JSON, or None when it is not JSON."""
        if not self.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Connection:
    """One keep-alive HTTP/1.1 connection, opened on first use and again after the server closes it
    (gunicorn's sync workers close after every response)."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None
        self.reused = False

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, method, path, headers, body=b""):
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        data = head.encode("latin-1") + b"\r\n" + body
        try:
            try:
                return await self.exchange(data, method)
            except (ConnectionError, asyncio.IncompleteReadError):
                if not self.reused:
                    raise
                # A kept-alive connection the server had closed: send again at once on a new one, as browsers do.
                self.close()
                return await self.exchange(data, method)
        except BaseException:  # a half-read response (or a timeout) leaves the connection unusable
            self.close()
            raise

    async def exchange(self, data, method):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            self.reused = False
        self.writer.write(data)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed before a response")
        version, status = status_line.split(None, 2)[:2]
        headers, cookies = {}, []
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            headers[name] = value
        body = await self.read_body(int(status), headers, method)
        if headers.get("connection", "").lower() == "close" or version == b"HTTP/1.0":
            self.close()
        else:
            self.reused = True
        return Response(int(status), headers, cookies, body)

    async def read_body(self, status, headers, method):
        if method == "HEAD" or status in (204, 304) or status < 200:
            return b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readline()
            while await self.reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        body = await self.reader.read()
        self.close()
        return body


class GaveUp(Exception):
    """The participant stops: the run's deadline passed, or too many errors."""


class Unexpected(Exception):
    """A response with a status the participant did not expect (already counted as an error)."""


class Recorder:
    """What the load generator saw: latencies, statuses, errors, retries, acknowledged votes."""

    def __init__(self):
        self.latencies = defaultdict(list)
        self.statuses = Counter()
        self.errors = Counter()
        self.errors_by_kind = Counter()
        self.retries = 0
        self.connection_errors = 0
        self.acknowledged = defaultdict(set)  # trial id -> answers the server said 200 to
        self.join_span = [math.inf, -math.inf]
        self.vote_span = [math.inf, -math.inf]

    def widen(self, span, start, end):
        span[0], span[1] = min(span[0], start), max(span[1], end)


class Browser:
    """A phone's browser: a cookie jar and two connections (a second one for a double tap)."""

    def __init__(self, port, recorder, deadline):
        self.port, self.recorder, self.deadline = port, recorder, deadline
        self.cookies = {}
        self.connections = [Connection(port), Connection(port)]

    def close(self):
        for connection in self.connections:
            connection.close()

    def headers(self, accept, body, content_type):
        headers = {"Host": f"{HOST}:{self.port}", "User-Agent": "benchmarks.load", "Accept": accept}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if body:
            headers |= {
                "Content-Type": content_type,
                "Content-Length": str(len(body)),
                "Origin": f"http://{HOST}:{self.port}",
            }
        return headers

    def keep_cookies(self, response):
        for cookie in response.cookies:
            pair, _, attributes = cookie.partition(";")
            name, _, value = pair.strip().partition("=")
            if not value or "max-age=0" in attributes.lower().replace(" ", ""):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def fetch(self, method, path, *, form=None, accept="text/html", extra_headers=None, second=False):
        """Send one request until it gets an answer that is not "try again": a lost connection or a 503 that
        says to retry (JSON {"retry": true} to a JSON request, a self-reloading page otherwise) is sent again
        after 1 s, 2 s, 4 s ... 15 s, until the run's deadline."""
        body = urlencode(form).encode() if form is not None else b""
        connection = self.connections[1 if second else 0]
        wait = RETRY_FIRST_S
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise GaveUp("deadline")
            headers = self.headers(accept, body, "application/x-www-form-urlencoded") | (extra_headers or {})
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    connection.send(method, path, headers, body), min(REQUEST_TIMEOUT_S, left)
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                response = None
                self.recorder.connection_errors += 1
            if response is not None:
                response.elapsed = time.perf_counter() - started
                self.recorder.statuses[response.status] += 1
                self.keep_cookies(response)
                if not says_retry(response, accept):
                    return response
            self.recorder.retries += 1
            if time.monotonic() + wait > self.deadline:
                raise GaveUp("deadline")
            await asyncio.sleep(wait)
            wait = min(2 * wait, RETRY_MAX_S)


def says_retry(response, accept):
    if response.status != 503:
        return False
    if accept == "application/json":
        return bool((response.json() or {}).get("retry"))
    return "retry-after" in response.headers  # the "Connection problem" page, which reloads itself


class FormFields(HTMLParser):
    """What a browser submits from a page's first POST form: hidden inputs as they are, checkboxes ticked,
    one choice per radio group (drawn with rng)."""

    def __init__(self, rng):
        super().__init__()
        self.rng, self.fields, self.radios = rng, {}, defaultdict(list)
        self.state = "before"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.state == "before" and attrs.get("method", "").lower() == "post":
            self.state = "inside"
        elif tag == "input" and self.state == "inside" and attrs.get("name"):
            kind, name = attrs.get("type", "text").lower(), attrs["name"]
            if kind == "radio":
                self.radios[name].append(attrs.get("value", "on"))
            elif kind == "checkbox":
                self.fields[name] = attrs.get("value", "on")
            elif kind in ("hidden", "text"):
                self.fields[name] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form" and self.state == "inside":
            self.state = "after"

    @classmethod
    def of(cls, html, rng):
        parser = cls(rng)
        parser.feed(html)
        return parser.fields | {name: rng.choice(values) for name, values in parser.radios.items()}


TRIAL_DATA = re.compile(r'<script id="trial-data" type="application/json">(.*?)</script>', re.DOTALL)
VOTE_TRIAL = re.compile(r"/vote/(\d+)/")


# ---------------------------------------------------------------- a participant


class Participant:
    """One simulated phone. plan maps a misbehaviour to the vote (0-based) at which it happens."""

    def __init__(self, port, recorder, deadline, rng, plan, think_ms):
        self.browser = Browser(port, recorder, deadline)
        self.recorder, self.rng, self.plan, self.think_ms = recorder, rng, plan, think_ms
        self.csrf_token = None
        self.errors = 0

    def expect(self, response, kind, *statuses):
        """The response if its status is one of statuses (its latency recorded); else count an error and raise
        Unexpected, or GaveUp after too many."""
        if response.status in statuses:
            if kind in MEASURED:
                self.recorder.latencies[kind].append(response.elapsed)
            return response
        self.fail(kind, response.status)

    def fail(self, kind, what):
        """Count an unexpected answer (a status, or what was wrong with a 200) and raise Unexpected."""
        self.recorder.errors[what] += 1
        self.recorder.errors_by_kind[f"{kind} {what}"] += 1
        self.errors += 1
        if self.errors >= MAX_ERRORS_PER_PARTICIPANT:
            raise GaveUp("too many errors")
        raise Unexpected(f"{kind}: {what}")

    async def twice_at_once(self, send):
        """send(second) for both connections at the same time (a double tap); the first result, after both
        are done."""
        results = await asyncio.gather(send(False), send(True), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results[0]

    # -- joining

    async def join_form(self):
        """The join page's form fields (a fresh join_key each time the page is loaded)."""
        while True:
            page = await self.browser.fetch("GET", f"/s/{SLUG}/")
            try:
                self.expect(page, "join_page", 200)
            except Unexpected:
                await asyncio.sleep(1)  # a person reloads the page
                continue
            return FormFields.of(page.text(), self.rng)

    async def submit_join(self, fields, double=False):
        async def post(second):
            started = time.monotonic()
            response = await self.browser.fetch("POST", f"/s/{SLUG}/", form=fields, second=second)
            self.expect(response, "join", 302)
            self.recorder.widen(self.recorder.join_span, started, time.monotonic())

        await (self.twice_at_once(post) if double else post(False))

    async def join(self):
        double = "double_join" in self.plan
        while True:
            try:
                await self.submit_join(await self.join_form(), double)
                return
            except Unexpected:
                await asyncio.sleep(1)
                double = False

    # -- trials

    async def open_trial(self):
        """The trial page's data (vote_url, image_url, ...), or None when the study is done (a redirect to
        the finish page)."""
        while True:
            page = await self.browser.fetch("GET", f"/s/{SLUG}/trial/")
            if page.status == 302 and urlsplit(page.headers.get("location", "")).path.endswith("/done/"):
                return None
            try:
                self.expect(page, "trial", 200)
                found = TRIAL_DATA.search(page.text())
                if found is None:
                    self.fail("trial", "no-trial-data")
            except Unexpected:
                await asyncio.sleep(1)
                continue
            self.csrf_token = FormFields.of(page.text(), self.rng).get("csrfmiddlewaretoken")
            return json.loads(found.group(1))

    async def send_vote(self, vote_url, form, second=False):
        started = time.monotonic()
        response = await self.browser.fetch(
            "POST",
            vote_url,
            form=form,
            accept="application/json",
            second=second,
            extra_headers={"X-CSRFToken": self.csrf_token or ""},
        )
        self.expect(response, "vote", 200)
        reply = response.json()
        if reply is None:
            self.fail("vote", "not-json")
        self.recorder.acknowledged[int(VOTE_TRIAL.search(vote_url).group(1))].add(form["answer"])
        self.recorder.widen(self.recorder.vote_span, started, time.monotonic())
        return reply

    async def answer(self, data, step):
        """Look at the image, think, vote; returns the next trial's data (None after the last vote)."""
        image = await self.browser.fetch("GET", data["image_url"], accept="image/avif,image/webp,*/*")
        self.expect(image, "image", 200)
        think = self.think_ms * self.rng.uniform(0.5, 1.5)
        await asyncio.sleep(think / 1000)
        form = {"answer": self.rng.choice(ANSWERS), "response_ms": str(round(think))}
        if self.plan.get("double_vote") == step:
            reply = await self.twice_at_once(lambda second: self.send_vote(data["vote_url"], form, second))
        else:
            reply = await self.send_vote(data["vote_url"], form)
        if self.plan.get("go_back") == step:
            # Back to the image just answered and the same button again: accepted, nothing changes.
            await self.send_vote(data["vote_url"], form)
        if self.plan.get("reload") == step and reply["next"]:
            return await self.open_trial()
        return reply["next"]

    async def take_part(self):
        """The whole visit; True when the finish page was reached."""
        try:
            await self.join()
            data, step = await self.open_trial(), 0
            while data is not None:
                try:
                    data = await self.answer(data, step)
                except Unexpected:
                    # participant.js, refused: it loads the trial page, which shows what is current.
                    data = await self.open_trial()
                step += 1
            while True:
                try:
                    self.expect(await self.browser.fetch("GET", f"/s/{SLUG}/done/"), "finish", 200)
                    return True
                except Unexpected:
                    await asyncio.sleep(1)
        except GaveUp:
            return False
        finally:
            self.browser.close()


def misbehaviour_plans(count, n_trials, rng):
    """Per participant, {misbehaviour: vote index}: each misbehaviour for its share of the participants (at
    least one), at a vote drawn at random (not the first, so that a go-back has an answered trial behind it)."""
    plans = [{} for _ in range(count)]
    for name, share in MISBEHAVIOUR.items():
        for index in rng.sample(range(count), min(count, max(1, round(share * count)))):
            plans[index][name] = rng.randrange(1, n_trials) if n_trials > 1 else 0
    return plans


# ---------------------------------------------------------------- the runs


class Run:
    """What the main run shares: the server, the database, the clock, the recorder."""

    def __init__(self, args, server, database, n_trials):
        self.args, self.server, self.database, self.n_trials = args, server, database, n_trials
        self.recorder = Recorder()
        self.expected_votes = args.participants * n_trials
        self.voting_over = asyncio.Event()


async def warm_up(port, workers, deadline):
    """Load the join page with every worker before measuring: a worker's first request opens its database
    connection and compiles the templates, a cost a server serving for hours pays once. Sync workers take one
    request at a time, so a few rounds of twice as many concurrent requests as workers reach every one."""
    recorder = Recorder()
    for _ in range(3):
        browsers = [Browser(port, recorder, deadline) for _ in range(2 * workers)]
        # A server that cannot even answer these is found out by the main run, which counts what went wrong.
        await asyncio.gather(*(browser.fetch("GET", f"/s/{SLUG}/") for browser in browsers), return_exceptions=True)
        for browser in browsers:
            browser.close()


async def main_run(run):
    """All participants, arriving at random (Poisson), and the fault; returns (participants who finished, what
    the fault did, how many participants did each misbehaviour)."""
    args = run.args
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.timeout
    plans = misbehaviour_plans(args.participants, run.n_trials, rng)
    arrivals, at = [], 0.0
    for _ in range(args.participants):
        arrivals.append(at)
        at += rng.expovariate(args.arrival_rate)

    async def arrive(index):
        await asyncio.sleep(arrivals[index])
        participant = Participant(
            run.server.port, run.recorder, deadline, random.Random(f"{args.seed}:{index}"), plans[index], args.think_ms
        )
        return await participant.take_part()

    fault = asyncio.create_task(inject_fault(run))
    outcomes = await asyncio.gather(*(arrive(index) for index in range(args.participants)))
    run.voting_over.set()
    return sum(outcomes), await fault, Counter(name for plan in plans for name in plan)


async def inject_fault(run):
    """Break something once about half the votes are acknowledged; returns what happened."""
    if run.args.fault == "none":
        return "none"
    started = time.monotonic()
    while len(run.recorder.acknowledged) < run.expected_votes / 2:
        if run.voting_over.is_set():
            return "not injected: voting ended first"
        await asyncio.sleep(0.05)
    at = time.monotonic() - started
    action = {"kill-worker": kill_worker, "restart": restart_server, "db-stop": stop_database}[run.args.fault]
    return f"{await asyncio.to_thread(action, run)} at {at:.1f} s"


def kill_worker(run):
    workers = run.server.worker_pids()
    if not workers:
        return "no worker to kill"
    victim = random.Random(run.args.seed).choice(sorted(workers))
    os.kill(victim, signal.SIGKILL)
    return f"SIGKILL to worker {victim} of {len(workers)}"


def restart_server(run):
    down = time.monotonic()
    run.server.stop()
    run.server.start()  # same port, same SECRET_KEY: sessions survive
    return f"server restarted, down {time.monotonic() - down:.1f} s"


def stop_database(run):
    run.database.stop(mode="fast")
    time.sleep(DB_STOP_SECONDS)
    run.database.start()
    return f"database stopped for {DB_STOP_SECONDS} s"


async def calibrate(args, server, meter):
    """CPU per join, per vote and per bare request, each measured alone and sequentially: in the main run joins
    and votes overlap, so their costs cannot be told apart there."""
    recorder = Recorder()
    deadline = time.monotonic() + CALIBRATION_TIMEOUT_S
    people = [
        Participant(server.port, recorder, deadline, random.Random(f"calibration:{args.seed}:{index}"), {}, 0)
        for index in range(args.calibration_joins)
    ]
    forms = [await person.join_form() for person in people]  # outside the measured window

    before = meter.read()
    for person, fields in zip(people, forms):
        await person.submit_join(fields)
    join_cpu = meter.seconds(before, meter.read())

    pending = [await person.open_trial() for person in people]
    votes = 0
    before = meter.read()
    for index, person in enumerate(people):
        while pending[index] is not None and votes < args.calibration_votes:
            try:
                pending[index] = await person.answer(pending[index], step=-1)
            except Unexpected:
                pending[index] = await person.open_trial()
            votes += 1
    vote_cpu = meter.seconds(before, meter.read())

    floor = Browser(server.port, recorder, deadline)
    # /proc counts CPU in clock ticks (10 ms): a floor of a few cheap requests could read as 0.
    floor_requests = max(votes, FLOOR_MIN_REQUESTS)
    before = meter.read()
    for _ in range(floor_requests):
        if (await floor.fetch("GET", "/healthz", accept="text/plain")).status != 200:
            recorder.errors["healthz"] += 1
    floor_cpu = meter.seconds(before, meter.read())
    for person in people:
        person.browser.close()
    floor.close()
    return {
        "calibration_joins": len(people),
        "calibration_votes": votes,
        "cpu_ms_per_join": per_item_ms(join_cpu, len(people)),
        "cpu_ms_per_vote": per_item_ms(vote_cpu, votes),
        "floor_cpu_ms_per_request": per_item_ms(floor_cpu, floor_requests),
        "db_cpu_ms_per_join": per_item_ms({"db": join_cpu["db"]}, len(people)),
        "db_cpu_ms_per_vote": per_item_ms({"db": vote_cpu["db"]}, votes),
        "calibration_errors": dict(recorder.errors),
    }


def per_item_ms(spent, count):
    if any(seconds is None for seconds in spent.values()) or not count:
        return None
    return round(1000 * sum(spent.values()) / count, 2)


# ---------------------------------------------------------------- what the database holds


def read_database(database_url):
    """Stored answers {trial id: answer} and per participant (answer_count, answered trials, finished,
    join_key), read with the ORM in this process."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalsite.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connections
    from django.db.models import Count, Q

    from turing.models import Participant, Trial

    try:
        stored = dict(
            Trial.objects.filter(participant__study__slug=SLUG).exclude(answer="").values_list("pk", "answer")
        )
        participants = list(
            Participant.objects.filter(study__slug=SLUG)
            .annotate(answered=Count("trials", filter=~Q(trials__answer="")))
            .values_list("answer_count", "answered", "finished_at", "join_key")
        )
    finally:
        connections.close_all()
    return stored, participants


def correctness(recorder, stored, participants, expected_participants):
    lost = sum(1 for trial, answers in recorder.acknowledged.items() if stored.get(trial) not in answers)
    # A trial answered twice with different answers would also show up here: both were acknowledged.
    lost += sum(len(answers) - 1 for answers in recorder.acknowledged.values())
    twice_counted = sum(max(0, count - answered) for count, answered, _, _ in participants)
    per_join_key = Counter(join_key for *_, join_key in participants)
    twin_participants = sum(count - 1 for count in per_join_key.values())
    return {
        "votes": len(stored),
        "lost_votes": lost,
        "duplicate_votes": twice_counted + twin_participants,
        "duplicate_participants": twin_participants,
        "participants_in_db": len(participants),
        "finished_in_db": sum(1 for *_, finished_at, _ in participants if finished_at is not None),
        "unacknowledged_votes": sum(1 for trial in stored if trial not in recorder.acknowledged),
        "expected_participants": expected_participants,
    }


# ---------------------------------------------------------------- report


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


def rate(count, span):
    seconds = span[1] - span[0]
    return round(count / seconds, 1) if seconds > 0 else None


def report(
    args, workers, n_trials, recorder, seconds, finished, fault, misbehaving, db, main_cpu, client_cpu, calibration
):
    figures = {
        "participants": args.participants,
        "db": args.db,
        "workers": workers,
        "fault": args.fault,
        "fault_detail": fault,
        "trials_per_participant": n_trials,
        "votes": db["votes"],
        "expected_votes": args.participants * n_trials,
        "seconds": round(seconds, 1),
        "votes_per_s": rate(db["votes"], recorder.vote_span),
        "joins_per_s": rate(db["participants_in_db"], recorder.join_span),
    }
    for kind in MEASURED:
        for q in (50, 95, 99):
            figures[f"{kind}_p{q}_ms"] = percentile(recorder.latencies[kind], q / 100)
    figures |= {
        "lost_votes": db["lost_votes"],
        "duplicate_votes": db["duplicate_votes"],
        "duplicate_participants": db["duplicate_participants"],
        "unacknowledged_votes": db["unacknowledged_votes"],
        "finished": finished,
        "finished_in_db": db["finished_in_db"],
        "errors": {str(status): count for status, count in sorted(recorder.errors.items())},
        "errors_by_kind": dict(sorted(recorder.errors_by_kind.items())),
        "statuses": {str(status): count for status, count in sorted(recorder.statuses.items())},
        "retries": recorder.retries,
        "connection_errors": recorder.connection_errors,
        "misbehaving": dict(sorted(misbehaving.items())),
    }
    figures |= {
        key: calibration.get(key)
        for key in (
            "cpu_ms_per_vote",
            "cpu_ms_per_join",
            "floor_cpu_ms_per_request",
            "db_cpu_ms_per_vote",
            "db_cpu_ms_per_join",
            "calibration_votes",
            "calibration_joins",
            "calibration_errors",
        )
    }
    figures |= {
        "server_cpu_s": rounded(main_cpu["server"]),
        "db_cpu_s": rounded(main_cpu["db"]),
        "client_cpu_s": round(client_cpu, 2),
    }
    return figures


def rounded(value):
    return None if value is None else round(value, 2)


def show(value):
    if isinstance(value, dict):
        return ", ".join(f"{key}={count}" for key, count in value.items()) or "none"
    return "-" if value is None else str(value)


def failed(figures):
    return (
        figures["lost_votes"] > 0
        or figures["duplicate_votes"] > 0
        or figures["finished"] < figures["participants"]
        or figures["finished_in_db"] < figures["participants"]
    )


# ---------------------------------------------------------------- main


def raise_open_file_limit():
    # Up to two sockets per participant: 1000 participants need more than the usual 1024 descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard) if hard != resource.RLIM_INFINITY else 4096, hard))


def stop_on_sigterm():
    # A SIGTERM (a test's timeout) unwinds through the finally blocks, which stop the server and the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def benchmark(args, workdir):
    database = PrivatePostgres(workdir) if args.db == "postgres" else SqliteDatabase(workdir)
    server = None
    try:
        database.start()
        env = server_environment(workdir, database)
        n_trials = build_study(workdir, env, args)
        server = Server(workdir, env, free_port(), args.workers)
        server.start()
        workers = len(server.worker_pids())
        meter = CpuMeter(server, database)
        asyncio.run(warm_up(server.port, workers, time.monotonic() + START_TIMEOUT_S))
        run = Run(args, server, database, n_trials)

        cpu_before, client_before, started = meter.read(), time.process_time(), time.monotonic()
        finished, fault, misbehaving = asyncio.run(main_run(run))
        seconds, client_cpu = time.monotonic() - started, time.process_time() - client_before
        main_cpu = meter.seconds(cpu_before, meter.read())

        db = correctness(run.recorder, *read_database(database.url), args.participants)
        try:
            calibration = asyncio.run(calibrate(args, server, meter))
        except (GaveUp, Unexpected) as error:
            print(f"calibration stopped: {error}", file=sys.stderr)
            calibration = {"calibration_errors": {str(error): 1}}
        return report(
            args,
            workers,
            n_trials,
            run.recorder,
            seconds,
            finished,
            fault,
            misbehaving,
            db,
            main_cpu,
            client_cpu,
            calibration,
        ), server
    finally:
        if server is not None:
            server.stop()
        database.stop()


def main(argv=None):
    args = parse_args(argv)
    raise_open_file_limit()
    stop_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="load-benchmark-"))
    try:
        figures, server = benchmark(args, workdir)
        if figures["errors"] or figures["finished"] < args.participants:
            print(f"server log (last lines):\n{server.log_tail()}\n", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for key, value in figures.items():
        print(f"{key}: {show(value)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if failed(figures) else 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/load.py end to end, small: a real `manage.py serve` on SQLite, simulated phones, and what the
database holds afterwards (every acknowledged vote stored once, everyone finished) with a gunicorn worker
killed halfway."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

PARTICIPANTS, TRIALS, PRACTICE = 6, 4, 2
RUN_SECONDS = 180


def run_benchmark(tmp_path, *extra):
    figures_path = tmp_path / "load.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.load",
        "--participants",
        str(PARTICIPANTS),
        "--trials",
        str(TRIALS),
        "--practice",
        str(PRACTICE),
        "--scenes",
        "8",
        "--think-ms",
        "20",
        "--calibration-joins",
        "10",
        "--calibration-votes",
        "20",
        "--timeout",
        "120",
        "--json",
        str(figures_path),
        *extra,
    ]
    process = subprocess.Popen(
        command, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = process.communicate(timeout=RUN_SECONDS)[0]
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: the benchmark stops its server and removes its work dir
        output = process.communicate(timeout=60)[0]
        pytest.fail(f"the load benchmark did not finish within {RUN_SECONDS} s:\n{output}")
    assert process.returncode == 0, output
    return json.loads(figures_path.read_text()), output


def assert_every_vote_stored_once(figures, output):
    assert figures["lost_votes"] == 0, output
    assert figures["duplicate_votes"] == 0, output
    assert figures["finished"] == figures["finished_in_db"] == PARTICIPANTS, output
    assert figures["votes"] == PARTICIPANTS * (TRIALS + PRACTICE), output


def test_load_benchmark_reports_latencies_and_a_worker_killed_halfway_loses_no_vote(tmp_path):
    # One run, with the fault: starting the server, a study and the calibration costs more than the phones.
    figures, output = run_benchmark(tmp_path, "--fault", "kill-worker")
    assert figures["fault_detail"].startswith("SIGKILL to worker"), output
    assert_every_vote_stored_once(figures, output)
    # The killed worker's requests were retried as participant.js retries them, not counted as errors.
    assert figures["errors"] == {}, output
    for kind in ("join", "trial", "image", "vote"):
        assert figures[f"{kind}_p50_ms"] > 0, output
    # The misbehaviours ran: a double tap on a vote and on Start, a reload, a back button.
    assert set(figures["misbehaving"]) == {"double_vote", "double_join", "reload", "go_back"}
    for key in ("votes_per_s", "joins_per_s", "cpu_ms_per_vote", "cpu_ms_per_join", "floor_cpu_ms_per_request"):
        assert figures[key] > 0, (key, output)
    assert "lost_votes: 0" in output

"""What the staff report costs on a study with N votes, against the raw SQL fetch of those votes.

    .venv/bin/python -m benchmarks.report --votes 1000000 [--db postgres] [--json PATH]

Builds a throwaway SQLite study (--db postgres: a fresh PostgreSQL database, BENCH_POSTGRES_URL, by default
turing_report_bench on 127.0.0.1) (1,000 scenes x real + 2 models, 50 scored votes per participant, a
fifth of them in the control group) in a child process, then measures in this one, as CPU seconds
(time.process_time), DEBUG off:
    fetch_s    the floor: SELECT participant_id, stimulus_id, answer of the study's scored answered
               trials through a raw cursor, fetchall();
    report_s   GET of the report page, cold (the report cache cleared; the process has served one before);
    cached_s   the same GET again, votes unchanged;
    dashboard_cold_s  GET of the live dashboard with the caches empty: what its first update after a vote costs;
    dashboard_s  the same again, votes unchanged (its 5-s updates fetch the same figures alone);
    export_s   GET of the votes CSV;
    copy_s     (PostgreSQL only) the export's floor: COPY of the same trial rows (every column of the study's
               scored answered trials) to CSV, read by this process; export_over_copy = export_s / copy_s;
    chart_s    GET of the report's chart PNG;
    report_rss_mib  peak resident memory of this process after the report pages, before the export;
    max_rss_mib  the same after the export too.
Targets (issue 10) at 10^6 votes on a 2-core machine: report_s <= 2 s and <= 3 x fetch_s, cached_s < 0.05 s,
memory < 1 GiB; (issue 23) report_s <= 2.5 x fetch_s at 10^5 and 10^6 votes, chart_s <= 0.15 s, export_s <= 2 x
copy_s.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENES = 1000
MODELS = ("perceptual", "koalarization")
VOTES_PER_PARTICIPANT = 50
CONTROL_SHARE = 0.2
BATCH = 20_000
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://turing:turing@127.0.0.1:5432/turing_report_bench")


def fresh_postgres(url):
    """Drop and create the benchmark's database, through the server's maintenance database."""
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(workdir, db="sqlite"):
    os.environ["DATABASE_URL"] = POSTGRES_URL if db == "postgres" else f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ["DEBUG"] = "0"
    os.environ["ALLOWED_HOSTS"] = "localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create(workdir, n_votes, seed=0):
    """The study: participants vote on distinct scenes, p(real) 0.7 for reals, 0.35 / 0.25 for the models."""
    import numpy as np
    from django.core.management import call_command
    from django.utils import timezone

    from turing.models import Participant, Stimulus, Study, Trial

    call_command("migrate", verbosity=0)
    study = Study.objects.create(slug="bench", title="Benchmark", trials_per_participant=VOTES_PER_PARTICIPANT)
    sources = ("real", *MODELS)
    Stimulus.objects.bulk_create(
        Stimulus(
            study=study, scene=f"scene-{i:04d}", source=source, image=f"bench/{source}/{i}.png", width=64, height=64
        )
        for i in range(SCENES)
        for source in sources
    )
    stimuli = {(s.scene, s.source): s.pk for s in study.stimuli.all()}
    rng = np.random.default_rng(seed)
    n_people = n_votes // VOTES_PER_PARTICIPANT
    control = rng.random(n_people) < CONTROL_SHARE
    Participant.objects.bulk_create(
        (
            Participant(study=study, label=f"p{i}", group="control" if control[i] else "treatment")
            for i in range(n_people)
        ),
        batch_size=BATCH,
    )
    people = list(study.participants.order_by("pk").values_list("pk", flat=True))
    p_real = {"real": 0.7, "perceptual": 0.35, "koalarization": 0.25}
    now = timezone.now()

    def trials():
        for i, pk in enumerate(people):
            scenes = rng.choice(SCENES, VOTES_PER_PARTICIPANT, replace=False)
            plan = (
                ["real"] * VOTES_PER_PARTICIPANT if control[i] else ["real"] * 20 + [MODELS[0]] * 15 + [MODELS[1]] * 15
            )
            said_real = rng.random(VOTES_PER_PARTICIPANT)
            for position, (scene, source) in enumerate(zip(scenes, plan), start=1):
                yield Trial(
                    participant_id=pk,
                    position=position,
                    stimulus_id=stimuli[(f"scene-{scene:04d}", source)],
                    answer="real" if said_real[position - 1] < p_real[source] else "generated",
                    response_ms=1500,
                    answered_at=now,
                )

    Trial.objects.bulk_create(trials(), batch_size=BATCH)


def cpu_seconds(call):
    start = time.process_time()
    result = call()
    return time.process_time() - start, result


def measure(workdir):
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from turing.models import Study

    study = Study.objects.get(slug="bench")
    staff = get_user_model().objects.create_user("bench-staff", is_staff=True)
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)

    def fetch():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.participant_id, t.stimulus_id, t.answer FROM turing_trial t "
                "JOIN turing_participant p ON p.id = t.participant_id "
                "WHERE p.study_id = %s AND t.kind = 'scored' AND t.answer <> ''",
                [study.pk],
            )
            return cursor.fetchall()

    def get(name, **query):
        def call():
            response = client.get(reverse(name, args=[study.slug]), query, secure=True)
            assert response.status_code == 200, (name, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            return len(body)

        return call

    def copy():
        size = 0
        with connection.cursor() as cursor:
            rows = (
                "SELECT t.* FROM turing_trial t JOIN turing_participant p ON p.id = t.participant_id "
                "WHERE p.study_id = %s AND t.kind = 'scored' AND t.answer <> ''"
            )
            with cursor.cursor.copy(f"COPY ({rows}) TO STDOUT WITH (FORMAT csv, HEADER)", [study.pk]) as stream:
                for block in stream:
                    size += len(block)
        return size

    figures = {}
    # One untimed round first: the database file's pages, the URLconf and the compiled templates are then
    # loaded for the floor and for the report alike. "Cold" below means the report's cache is empty.
    fetch()
    get("staff:report")()
    figures["fetch_s"], rows = cpu_seconds(fetch)
    figures["votes"] = len(rows)
    del rows
    cache.clear()
    figures["report_s"], _ = cpu_seconds(get("staff:report"))
    figures["cached_s"], _ = cpu_seconds(get("staff:report"))
    cache.clear()
    figures["dashboard_cold_s"], _ = cpu_seconds(get("staff:dashboard"))
    figures["dashboard_s"], _ = cpu_seconds(get("staff:dashboard"))
    figures["chart_s"], _ = cpu_seconds(get("staff:report_chart"))
    figures["report_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["export_s"], size = cpu_seconds(get("staff:export_votes"))
    figures["export_mib"] = size / 2**20
    if connection.vendor == "postgresql":
        copy()
        figures["copy_s"], _ = cpu_seconds(copy)
        figures["export_over_copy"] = figures["export_s"] / figures["copy_s"]
    figures["report_over_fetch"] = figures["report_s"] / figures["fetch_s"]
    figures["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", metavar="PATH", help="Also write the figures as JSON.")
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--create-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.create_only:
        setup_django(Path(args.workdir), args.db)
        create(Path(args.workdir), args.votes)
        return
    workdir = Path(tempfile.mkdtemp(prefix="report-bench-"))
    if args.db == "postgres":
        fresh_postgres(POSTGRES_URL)
    # A child process builds the study, so that its memory is not counted against the report.
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.report",
            "--create-only",
            "--votes",
            str(args.votes),
            "--workdir",
            str(workdir),
            "--db",
            args.db,
        ],
        check=True,
        cwd=ROOT,
    )
    print(f"built {args.votes} votes in {time.perf_counter() - started:.0f} s (wall) in {workdir}")
    setup_django(workdir, args.db)
    figures = measure(workdir)
    for name, value in figures.items():
        print(f"{name:18} {value:10.3f}" if isinstance(value, float) else f"{name:18} {value:10d}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Votes per second through the real participant views (join, trial page, image, vote), on a throwaway SQLite.

    .venv/bin/python -m benchmarks.vote_throughput [--bots 40] [--scenes 60] [--trials 20]

A poster session of 30 phones voting every ~2 s needs about 15 votes/s; the figure printed here is for one
process answering sequentially, so it is a floor for what a multi-worker server does.
"""

import argparse
import os
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=40)
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="vote-bench-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.core.management import call_command
    from PIL import Image

    from turing.models import Trial

    colors = [(37 * i % 256, 91 * i % 256, 53 * i % 256) for i in range(args.scenes)]
    for folder in ("real", "perceptual", "koalarization"):
        (workdir / folder).mkdir()
        for i, color in enumerate(colors):
            Image.new("RGB", (64, 64), color).save(workdir / folder / f"scene-{i:03d}.png")

    quiet = StringIO()
    call_command("migrate", verbosity=0)
    call_command(
        "create_study",
        "bench",
        title="Benchmark",
        real=str(workdir / "real"),
        generated=[f"perceptual={workdir / 'perceptual'}", f"koalarization={workdir / 'koalarization'}"],
        trials=args.trials,
        practice=0,
        control_fraction=0.2,
        seed=0,
        stdout=quiet,
    )
    start = time.perf_counter()
    call_command("simulate_participants", "bench", n=args.bots, seed=0, stdout=quiet)
    seconds = time.perf_counter() - start
    votes = Trial.objects.exclude(answer="").count()
    print(
        f"{args.bots} participants, {votes} votes in {seconds:.1f} s: {votes / seconds:.1f} votes/s "
        f"({1000 * seconds / votes:.1f} ms per vote including the trial page and image requests)"
    )


if __name__ == "__main__":
    main()

"""The library's grid, in requests per second, at 50 and at 5,000 clips, against a trivial
view in the same gunicorn.

Run from anywhere: `.venv/bin/python bench/gallery.py [--seconds 10] [--clients 4]`. It makes,
in a temp directory, a SQLite database with two creators, one with 50 finished clips and one
with 5,000 (and three failed jobs each, in their tray), then starts gunicorn as
`manage.py serve` does (two sync workers) with one extra URL, `/trivial/`, a view that
returns "ok" through the same middleware. Then, for `--seconds` each, `--clients` processes
request the first page of each creator's library (`/library/`, 24 tiles and the tray) and the
trivial view, as fast as the server answers.

It prints each one's requests per second, its ratio to the trivial view and its database
queries per request (counted in-process with Django's test client on the same database).
Goals (issue 15): the library ≥ 40 % of the trivial view, ≤ 6 queries, and the same cost at
50 and at 5,000 clips. The load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import environment, gunicorn, rates

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.40
MOST_QUERIES = 6


def make_library(creator, clips: int) -> None:
    """`clips` finished jobs with their clips (rows only: the grid reads no file) and three
    failed jobs, made in bulk."""
    from django.utils import timezone

    from studio.models import Clip, Job

    now = timezone.now()
    jobs = Job.objects.bulk_create(
        Job(
            creator=creator, prompt=f"Slow push in on the harbour at dawn, take {i}",
            mode="text", duration=8, resolution="720p", aspect="9:16" if i % 3 else "16:9",
            audio=True, provider="local", status=Job.Status.SUCCEEDED, charge="settled",
            created_at=now, finished_at=now,
        )
        for i in range(clips)
    )  # fmt: skip
    Clip.objects.bulk_create(
        Clip(
            job=job, file=f"clips/{creator.pk}/job-{job.pk}.mp4",
            poster=f"clips/{creator.pk}/job-{job.pk}.jpg",
            width=720 if job.aspect == "9:16" else 1280,
            height=1280 if job.aspect == "9:16" else 720,
            duration=8.0, fps=24.0, has_audio=True, size_bytes=2_000_000, favourite=i % 7 == 0,
        )
        for i, job in enumerate(jobs)
    )  # fmt: skip
    Job.objects.bulk_create(
        Job(
            creator=creator, prompt=f"A refused clip {i}", mode="text", duration=8,
            resolution="720p", aspect="16:9", provider="local", status=Job.Status.FAILED,
            charge="refunded", error="The provider refused the prompt. You were not charged.",
        )
        for i in range(3)
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="studio-bench-gallery-"))
    env = environment(work)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    try:
        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        cookies, queries = {}, {}
        for name, count in (("50 clips", 50), ("5,000 clips", 5000)):
            creator = get_user_model().objects.create_user(
                f"bench-{count}", password=secrets.token_hex(8)
            )
            make_library(creator, count)
            client = Client()
            client.force_login(creator)
            cookies[name] = f"sessionid={client.cookies['sessionid'].value}"
            client.get("/library/")  # warm
            with CaptureQueriesContext(connection) as captured:
                response = client.get("/library/")
            assert response.status_code == 200, response.status_code
            assert response.content.count(b'data-testid="tile"') == 24
            queries[name] = len(captured.captured_queries)
        queries["trivial"] = 0

        with gunicorn(env) as base:
            found = rates(
                base,
                {
                    "trivial": ("/trivial/", cookies["50 clips"], False),
                    "50 clips": ("/library/", cookies["50 clips"], False),
                    "5,000 clips": ("/library/", cookies["5,000 clips"], False),
                },
                seconds=args.seconds,
                clients=args.clients,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"The library's first page against a trivial view, gunicorn with 2 sync workers, "
        f"{args.clients} clients, {args.seconds:.0f} s each"
    )
    print(f"(load average {load[0]:.2f} / {load[1]:.2f}, 1 / 5 min; {os.cpu_count()} cores)")
    print(f"{'page':12} {'req/s':>8} {'of trivial':>11} {'queries':>8}   goal")
    for name, value in found.items():
        share = value / found["trivial"]
        verdict = ""
        if name != "trivial":
            met = share >= GOAL and queries[name] <= MOST_QUERIES
            verdict = f"≥ {GOAL:.0%}, ≤ {MOST_QUERIES} queries: {'met' if met else 'MISSED'}"
        print(f"{name:12} {value:8.0f} {share:11.0%} {queries[name]:8}   {verdict}")
    ratio = found["5,000 clips"] / found["50 clips"]
    print(f"5,000 clips against 50: {ratio:.0%} of the rate (the same cost: about 100%)")


if __name__ == "__main__":
    main()

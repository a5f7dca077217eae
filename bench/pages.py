"""The creator's busiest pages, in requests per second, against a trivial view in the same gunicorn.

Run from anywhere: `.venv/bin/python bench/pages.py [--seconds 10] [--clients 4]`. It makes,
in a temp directory, a SQLite database with one signed-in creator who has a month of history
(200 jobs, one of them generating at fal), then starts gunicorn as `manage.py serve` does
(two sync workers) with one extra URL, `/trivial/`, a view that returns "ok" through the same
middleware (session, auth, CSRF, htmx). Then, for `--seconds` each, `--clients` processes
request, as fast as the server answers:

- the create page (`/`), a full page;
- the options panel (`/options/?…`), what the page asks for on every change;
- a job's status partial (`/jobs/N/` with HX-Request), what the job page polls every second;
- `/trivial/`.

It prints each one's requests per second, its ratio to the trivial view and its database
queries per request (counted in-process with Django's test client on the same database).
Goals (issue 14): create ≥ 25 %, options ≥ 40 %, status ≥ 60 % of the trivial view. The
clients share the machine's cores with the server, as they do for every row alike; the load
average is printed with the figures: on a busy machine they are not comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"create": 0.25, "options": 0.40, "status": 0.60}
OPTIONS_QUERY = (
    "mode=image&duration=8&resolution=720p&aspect=auto&audio=on&provider=fal"
    "&rendered_for=fal&prompt=Slow+push+in&copies=1"
)
# The bench's own URL conf and settings: Studio's, plus the trivial view.
URLS = """
from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("trivial/", lambda request: HttpResponse("ok")),
    path("", include("studio.urls")),
]
"""
SETTINGS = """
from studio.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hammer(url: str, cookie: str, htmx: bool, seconds: float, counts) -> None:
    """One client: request `url` again and again for `seconds`; add how many were answered."""
    headers = {"Cookie": cookie}
    if htmx:
        headers["HX-Request"] = "true"
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            response.read()
            if response.status in (200, 286):
                done += 1
    counts.put(done)


def rate(url: str, cookie: str, *, htmx: bool, seconds: float, clients: int) -> float:
    counts: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=hammer, args=(url, cookie, htmx, seconds, counts))
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    total = sum(counts.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


def environment(work: Path, **extra: str) -> dict[str, str]:
    """Studio's environment for a bench in `work` (a throwaway SQLite database and media,
    the bench's URL conf and settings), set in this process too, before django.setup()."""
    (work / "bench_urls.py").write_text(URLS)
    (work / "bench_settings.py").write_text(SETTINGS)
    env = {
        **os.environ,
        "PYTHONPATH": f"{work}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "MEDIA_ROOT": str(work / "media"),
        "STATIC_ROOT": str(work / "static"),
        "DEBUG": "false",
        **extra,
    }
    os.environ.update(env)
    sys.path[:0] = [str(work), str(ROOT)]
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[str]:
    """gunicorn with two sync workers, as `manage.py serve` runs it; yields its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--log-level", "warning"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz").read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def rates(
    base: str, pages: dict[str, tuple[str, str, bool]], *, seconds: float, clients: int
) -> dict[str, float]:
    """Requests per second for each page (path, cookie, htmx), after a second to warm up."""
    found = {}
    for name, (path, cookie, htmx) in pages.items():
        rate(base + path, cookie, htmx=htmx, seconds=1, clients=clients)
        found[name] = rate(base + path, cookie, htmx=htmx, seconds=seconds, clients=clients)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="studio-bench-pages-"))
    # A hosted provider set up, as on a real Studio.
    env = environment(work, FAL_KEY="bench-key")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from studio import jobs
    from studio.models import Job, Quota
    from studio.options import ClipOptions

    try:
        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        creator = get_user_model().objects.create_user("bench", password=secrets.token_hex(8))
        Quota.objects.create(
            creator=creator,
            monthly_budget=Decimal("100000"),
            monthly_seconds=100_000,
            concurrent_jobs=500,
        )
        clip = ClipOptions(
            prompt="", mode="text", duration=4, resolution="720p", aspect="16:9", audio=False
        )
        made = jobs.create_jobs(
            creator=creator,
            provider="local",
            batch=[
                clip.replace(prompt=f"Slow push in on the harbour, take {i}") for i in range(199)
            ],
        )
        Job.objects.filter(pk__in=[job.pk for job in made]).update(
            status=Job.Status.FAILED, finished_at=timezone.now()
        )
        running = jobs.create_job(
            creator=creator, provider="fal", options=clip.replace(prompt="A storm, generating")
        )
        Job.objects.filter(pk=running.pk).update(
            status=Job.Status.RUNNING,
            submitted_at=timezone.now(),
            provider_job_id="bench",
            progress=40,
        )

        client = Client()
        client.force_login(creator)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        pages = {
            "trivial": ("/trivial/", False),
            "create": ("/", False),
            "options": (f"/options/?{OPTIONS_QUERY}", True),
            "status": (f"/jobs/{running.pk}/", True),
        }
        queries = {}
        for name, (path, htmx) in pages.items():
            extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
            client.get(path, **extra)  # warm
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, **extra)
            assert response.status_code in (200, 286), (name, response.status_code)
            queries[name] = len(captured.captured_queries)

        with gunicorn(env) as base:
            found = rates(
                base,
                {name: (path, cookie, htmx) for name, (path, htmx) in pages.items()},
                seconds=args.seconds,
                clients=args.clients,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"Pages against a trivial view, gunicorn with 2 sync workers, {args.clients} clients, "
        f"{args.seconds:.0f} s each"
    )
    print(f"(load average {load[0]:.2f} / {load[1]:.2f}, 1 / 5 min; {os.cpu_count()} cores)")
    print(f"{'page':10} {'req/s':>8} {'of trivial':>11} {'queries':>8}   goal")
    for name, value in found.items():
        share = value / found["trivial"]
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"≥ {goal:.0%} {'met' if share >= goal else 'MISSED'}"
        print(f"{name:10} {value:8.0f} {share:11.0%} {queries[name]:8}   {verdict}")


if __name__ == "__main__":
    main()

"""Run the web server and the django-q2 worker together, as `make run` does."""

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Start gunicorn and the django-q2 cluster together; stop both on Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args: Any, host: str, port: int, web_workers: int, **options: Any) -> None:
        if not settings.DEBUG and not (settings.STATIC_ROOT / "staticfiles.json").exists():
            raise CommandError(
                "Static files are not collected: run `python manage.py collectstatic`."
            )
        with socket.socket() as probe:
            # As gunicorn binds: a port left in TIME_WAIT by a previous run is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise CommandError(
                    f"Port {port} on {host} is in use; stop what holds it or choose another "
                    "with PORT=8001."
                ) from None
        python = sys.executable
        web = subprocess.Popen([
            python, "-m", "gunicorn", "studio.wsgi",
            "--bind", f"{host}:{port}",
            "--workers", str(web_workers),
            "--threads", "4",
            "--access-logfile", "-",
            "--error-logfile", "-",
        ])  # fmt: skip
        worker = subprocess.Popen([python, "manage.py", "qcluster"], cwd=settings.BASE_DIR)
        children = [web, worker]
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        self.stdout.write(self.style.SUCCESS(f"Studio is running at http://{shown}:{port}/"))
        self.stdout.write("Press Ctrl-C to stop the web server and the worker.")
        self.stdout.flush()
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            name = "web server" if failed[0] is web else "worker"
            raise CommandError(
                f"The {name} stopped unexpectedly (exit status {failed[0].returncode})."
            )

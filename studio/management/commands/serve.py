"""Run the web server and the django-q2 worker together, as `make run` does.

Each runs in a process group of its own, so Ctrl-C (SIGINT to the terminal's foreground
group) reaches this command alone, and it stops them in order: SIGTERM to gunicorn's whole
group (master and workers each stop gracefully, even when the master is stuck) and to the
cluster's leader (django-q2's own processes die at once on SIGTERM, so the leader stops them
in turn), then waits a deadline, then kills whatever is left in either group, and says so.
Before this, a terminal's SIGINT reached every process at once and could leave a gunicorn
worker holding the port after its master was killed.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

# How long the web server and the worker get to stop by themselves (gunicorn's own graceful
# timeout is shorter, so its requests end first).
STOP_SECONDS = 20
GRACEFUL_SECONDS = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    # Whether SIGTERM goes to every process of its group, or to its leader only.
    whole_group: bool

    @property
    def group(self) -> int:
        return self.process.pid  # the leader of a group of its own

    def signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            if self.whole_group:
                os.killpg(self.group, signum)
            else:
                self.process.send_signal(signum)

    def group_alive(self) -> bool:
        """Whether any process of its group is still running (the leader reaped or not)."""
        self.process.poll()
        try:
            os.killpg(self.group, 0)
        except ProcessLookupError:
            return False
        return True

    def kill_group(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.group, signal.SIGKILL)


def gunicorn_command(host: str, port: int, workers: int) -> list[str]:
    """The web server as `make run` runs it."""
    return [
        sys.executable, "-m", "gunicorn", "studio.wsgi",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--threads", "4",
        "--graceful-timeout", str(GRACEFUL_SECONDS),
        "--access-logfile", "-",
        "--error-logfile", "-",
    ]  # fmt: skip


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    """A child in a process group of its own, which ends if this command dies."""
    return subprocess.Popen(
        command, cwd=settings.BASE_DIR, process_group=0, preexec_fn=_die_with_parent
    )


def _die_with_parent() -> None:
    """In a child, before exec: have Linux send SIGTERM if this command dies (a kill -9
    would otherwise leave the child's group running)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


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
        signals: list[int] = []
        for signum in STOP_SIGNALS:  # before any child starts, so none is missed
            signal.signal(signum, lambda signum, _: signals.append(signum))
        web = _start(gunicorn_command(host, port, web_workers))
        worker = _start([sys.executable, "manage.py", "qcluster"])
        children = [
            Child("web server", web, whole_group=True),
            Child("worker", worker, whole_group=False),
        ]
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        self.stdout.write(self.style.SUCCESS(f"Studio is running at http://{shown}:{port}/"))
        self.stdout.write("Press Ctrl-C to stop the web server and the worker.")
        self.stdout.flush()
        try:
            while not signals and all(c.process.poll() is None for c in children):
                time.sleep(0.2)
        finally:
            self._stop(children, signals)
        failed = [c for c in children if c.process.returncode not in (0, -signal.SIGTERM)]
        if failed and not signals:
            raise CommandError(
                f"The {failed[0].name} stopped unexpectedly (exit status "
                f"{failed[0].process.returncode})."
            )

    def _stop(self, children: list[Child], signals: list[int]) -> None:
        """Stop every child and everything in its group, within STOP_SECONDS, and say so."""
        self.stdout.write("Stopping the web server and the worker… (Ctrl-C again to force)")
        self.stdout.flush()
        asked = len(signals)
        for child in children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while any(c.group_alive() for c in children):
            if time.monotonic() > deadline or len(signals) > asked:
                break
            time.sleep(0.1)
        for child in children:
            if child.process.poll() is None:
                why = "when asked again" if len(signals) > asked else f"within {STOP_SECONDS} s"
                self.stdout.write(f"The {child.name} did not stop {why}: killed it.")
            elif child.group_alive():
                # Its leader is gone but a process it started is not (an orphaned gunicorn
                # worker would hold the port).
                self.stdout.write(f"The {child.name} left processes running: killed them.")
            else:
                continue
            child.kill_group()
        until = time.monotonic() + 5
        for child in children:
            child.process.wait()
            while child.group_alive() and time.monotonic() < until:
                time.sleep(0.05)
        self.stdout.write("Stopped the web server and the worker.")
        self.stdout.flush()

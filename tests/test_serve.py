"""`manage.py serve` (what `make run` runs) stops the web server and the worker together,
every time: Ctrl-C in a terminal sends SIGINT to the whole foreground process group, and
after each one the port is free and no process of the run is left. (Before, 3 runs of
this test in 8 found the port held after a Ctrl-C that came as gunicorn's workers booted.)"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def processes_of(run: str) -> list[tuple[int, str]]:
    """Every live process (pid, command line) with STUDIO_SERVE_RUN=run in its environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"STUDIO_SERVE_RUN={run}".encode() in environ.split(b"\0") and state != "Z":
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            found.append((int(entry.name), command))
    return found


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    var = tmp_path_factory.mktemp("serve")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "serve-test-secret-" + "k" * 40,
        "DATABASE_URL": f"sqlite:///{var / 'studio.sqlite3'}",
        "MEDIA_ROOT": str(var / "media"),
        "STATIC_ROOT": str(var / "static"),
        "Q_WORKERS": "1",
    }
    for command in (["migrate", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], env=env, cwd=ROOT, check=True,
            capture_output=True,
        )  # fmt: skip
    return env, var


def test_ctrl_c_stops_web_and_worker_together_every_time(environment):
    env, var = environment
    port = free_port()
    for round_ in range(1, ROUNDS + 1):
        run = uuid.uuid4().hex
        log = var / f"serve-{round_}.log"
        with open(log, "wb") as out:
            serve = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(port)],
                env={**env, "STUDIO_SERVE_RUN": run}, cwd=ROOT, stdout=out, stderr=out,
                start_new_session=True,  # its own process group, as a terminal's job is
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                # Odd rounds press Ctrl-C while gunicorn's workers are still booting (where
                # the old serve left one holding the port), a little later each time; even
                # rounds once the web answers and the worker's cluster is running.
                if round_ % 2 and b"Booting worker" in log.read_bytes():
                    time.sleep(0.05 * round_)
                    break
                try:
                    up = httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
                except httpx.TransportError:
                    up = False
                # With one worker, django-q2 runs five processes: the cluster, its sentinel,
                # the pusher, the monitor and the worker.
                cluster = [c for _, c in processes_of(run) if "qcluster" in c]
                if up and len(cluster) >= 5:
                    break
                assert serve.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C does
            assert serve.wait(timeout=30) == 0, log.read_text()
            assert port_is_free(port), f"round {round_}: the port is held\n{log.read_text()}"
            left = processes_of(run)
            assert not left, f"round {round_}: left running {left}\n{log.read_text()}"
            said = log.read_text()
            assert "Stopping the web server and the worker" in said
            assert "Stopped the web server and the worker." in said
        finally:
            if serve.poll() is None:
                os.killpg(serve.pid, signal.SIGKILL)
            for pid, _ in processes_of(run):  # what a failed round left, so the next can run
                os.kill(pid, signal.SIGKILL)

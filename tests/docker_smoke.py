"""`make docker-test`: build Studio's image and make one clip with it, over HTTP.

1. A Docker engine: the running one, or Debian's `dockerd` started here (and stopped after).
2. The base image `studio-base:bookworm`, made once per machine and then kept in Docker's own
   store: `debootstrap --variant=minbase` (Python 3.11, venv, CA certificates, passwd), then
   `docker import`. There is no Docker Hub from our machines; the Dockerfile's default base
   (python:3.11-slim) is for everyone else.
3. A wheelhouse of Studio and its dependencies, made by the host's pip (containers cannot
   reach the package registries over TLS), at the versions the test environment has.
4. The image, built with BASE_IMAGE and that wheelhouse.
5. A throwaway PostgreSQL, Redis and S3 server (tests/stack.py) on 127.0.0.1; containers on the
   host network: `migrate` and `demo_account`, then the web server and the worker.
6. Signed in as the demo creator over HTTP: upload a still with the create form, submit it to
   the local renderer, poll the job page until it has succeeded, and fetch the MP4 (an MP4 of
   the asked-for size and length, read with PyAV).
7. Everything it started is stopped and removed, however it ends; the base image stays.

Run as `python -m tests.docker_smoke` from the project folder (as root, or with access to a
Docker engine). Prints how long each step took.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "studio-base:bookworm"
IMAGE = "studio:smoke-test"
WHEELHOUSE = ROOT / "var" / "wheelhouse"
PACKAGES = "python3,python3-venv,ca-certificates,passwd"
MIRROR = "http://deb.debian.org/debian"
STEP_LIMIT = 600


def docker_binary() -> str:
    # Debian's client matches Debian's engine; another client on PATH may be newer.
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise SystemExit("No docker client: install Debian's docker.io (make docker-test does).")


DOCKER = docker_binary()


def run(*command: str, timeout: float = STEP_LIMIT, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")  # fmt: skip
    return done


def docker(*args: str, timeout: float = STEP_LIMIT) -> str:
    return run(DOCKER, *args, timeout=timeout).stdout.strip()


def engine_up() -> bool:
    return subprocess.run([DOCKER, "info"], capture_output=True, timeout=30).returncode == 0


@contextlib.contextmanager
def docker_engine() -> Iterator[None]:
    """The running engine, or dockerd started for this run and stopped after it."""
    if engine_up():
        yield
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.path.exists(dockerd):
        raise SystemExit("No dockerd: install Debian's docker.io (make docker-test does).")
    log = open(ROOT / "var" / "dockerd.log", "ab")  # noqa: SIM115 (open while dockerd runs)
    process = subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not engine_up():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("dockerd did not start: see var/dockerd.log")
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def base_image() -> None:
    """Make the Debian base once; Docker keeps it for the next run on this machine."""
    if subprocess.run([DOCKER, "image", "inspect", BASE], capture_output=True).returncode == 0:
        print(f"  base image {BASE}: cached")
        return
    rootfs = Path(tempfile.mkdtemp(prefix="studio-rootfs-"))
    try:
        run(
            "debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm",
            str(rootfs), MIRROR,
        )  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run(DOCKER, "import", "-", BASE, stdin=tar.stdout)
        tar.wait()
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    print(f"  base image {BASE}: made with debootstrap")


def wheelhouse() -> None:
    """Wheels of Studio and everything it needs, at the versions this environment runs."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for old in WHEELHOUSE.glob("studio-*.whl"):
        old.unlink()
    pins = WHEELHOUSE / "constraints.txt"
    frozen = run(sys.executable, "-m", "pip", "freeze", "--exclude-editable").stdout
    pins.write_text(frozen)
    # The base's Python is Debian's 3.11.2, where redis also needs async-timeout (a marker
    # this host's newer 3.11 skips).
    run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE),
        "--constraint", str(pins), str(ROOT), "async-timeout>=4.0.3",
    )  # fmt: skip


def build() -> None:
    docker(
        "build", "--build-arg", f"BASE_IMAGE={BASE}", "--build-arg", "WHEELHOUSE=var/wheelhouse/",
        "--tag", IMAGE, str(ROOT),
    )  # fmt: skip


class Containers:
    """Containers of this run: started detached on the host network, removed at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.names: list[str] = []

    def _env_args(self) -> list[str]:
        return [arg for name in self.env for arg in ("--env", name)]

    def once(self, *command: str) -> str:
        return run(
            DOCKER, "run", "--rm", "--network", "host", *self._env_args(), IMAGE, *command,
            env={**os.environ, **self.env},
        ).stdout  # fmt: skip

    def start(self, name: str, *command: str, health: bool = True) -> None:
        full = f"studio-smoke-{name}-{secrets.token_hex(3)}"
        args = [] if health else ["--no-healthcheck"]
        run(
            DOCKER, "run", "--detach", "--name", full, "--network", "host", *args,
            *self._env_args(), IMAGE, *command, env={**os.environ, **self.env},
        )  # fmt: skip
        self.names.append(full)

    def logs(self) -> str:
        out = []
        for name in self.names:
            logs = subprocess.run([DOCKER, "logs", "--tail", "40", name], capture_output=True)
            out.append(f"--- {name}\n{logs.stdout.decode()}{logs.stderr.decode()}")
        return "\n".join(out)

    def remove(self) -> None:
        for name in self.names:
            subprocess.run([DOCKER, "rm", "--force", name], capture_output=True, timeout=60)


def make_a_clip(url: str) -> dict:
    """The creator's path over HTTP: sign in, upload and submit, poll, fetch the MP4."""
    import av
    import httpx

    from tests.factories import photo

    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as http:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if http.get("/healthz").text == "ok":
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the web container never answered /healthz")
            time.sleep(0.5)
        login = http.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        signed = http.post(
            "/login/",
            data={"username": "demo", "password": "studio-demo", "csrfmiddlewaretoken": token},
        )
        assert signed.status_code == 302, signed.text[-2000:]
        page = http.get("/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {
            "csrfmiddlewaretoken": token, "mode": "image", "provider": "local",
            "prompt": "Slow push in on the valley", "negative_prompt": "", "duration": "4",
            "resolution": "720p", "aspect": "16:9", "seed": "7",
        }  # fmt: skip
        image = {"image": ("valley.jpg", photo(1600, 900), "image/jpeg")}
        made = http.post("/", data=form, files=image)
        assert made.status_code == 302, made.text[-3000:]
        job_url = made.headers["location"]
        assert re.fullmatch(r"/jobs/\d+/", job_url), job_url
        deadline = time.monotonic() + 120
        while True:
            job_page = http.get(job_url).text
            clip = re.search(r"/clips/(\d+)/video\.mp4", job_page)
            if clip:
                break
            if "Failed" in job_page or time.monotonic() > deadline:
                raise SystemExit(f"the job did not succeed:\n{job_page[-3000:]}")
            time.sleep(1)
        mp4 = http.get(clip.group(0))
        assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
        part = http.get(clip.group(0), headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == mp4.content[:100]
    with av.open(io.BytesIO(mp4.content)) as container:
        stream = container.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
        duration = float(container.duration / av.time_base)
    assert size == (1280, 720), size
    assert abs(duration - 4.0) < 0.2, duration
    return {"job": job_url, "bytes": len(mp4.content), "size": size, "duration": duration}


def main() -> int:
    from tests import postgres, stack

    started = time.monotonic()
    (ROOT / "var").mkdir(exist_ok=True)

    def step(what: str, since: float) -> float:
        now = time.monotonic()
        print(f"docker-test: {what} ({now - since:.0f} s)", flush=True)
        return now

    t = started
    with docker_engine():
        t = step("engine up", t)
        base_image()
        t = step("base image", t)
        wheelhouse()
        t = step("wheelhouse", t)
        build()
        t = step(f"image {IMAGE} built", t)
        with (
            postgres.throwaway_server() as database,
            stack.redis_server() as broker,
            stack.s3_server() as endpoint,
        ):
            port = stack.free_port()
            env = {
                **stack.stack_env(database, broker, endpoint, stack.fresh_bucket(endpoint)),
                "SECRET_KEY": secrets.token_urlsafe(50),
                "PORT": str(port),
                "Q_WORKERS": "2",
            }
            containers = Containers(env)
            try:
                containers.once("python", "manage.py", "migrate", "--noinput", "-v0")
                containers.once("python", "manage.py", "demo_account")
                containers.start(
                    "web", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{port}",
                    "--workers", "2", "--access-logfile", "-",
                )  # fmt: skip
                containers.start("worker", "python", "manage.py", "qcluster", health=False)
                t = step("migrated; web and worker containers started", t)
                try:
                    made = make_a_clip(f"http://127.0.0.1:{port}")
                except (AssertionError, SystemExit):
                    print(containers.logs(), file=sys.stderr)
                    raise
                t = step(f"one clip made over HTTP: {made}", t)
                user = docker("inspect", "--format", "{{.Config.User}}", IMAGE)
                assert user == "studio", user
                health = docker("inspect", "--format", "{{.State.Health.Status}}",
                                containers.names[0])  # fmt: skip
                print(f"docker-test: runs as {user}; web container health: {health}")
            finally:
                containers.remove()
    print(f"docker-test: passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

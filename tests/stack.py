"""The production stack for tests: throwaway PostgreSQL, Redis and an S3 server, real ones.

- PostgreSQL: tests/postgres.py (Debian's server binaries).
- Redis: Debian's `redis-server`, in a temporary directory, on 127.0.0.1 and a free port,
  nothing saved to disk.
- S3: moto's standalone server (`moto_server`, from PyPI: moto implements the S3 HTTP API),
  on 127.0.0.1 and a free port, with one bucket made for the run.

`python -m tests.stack COMMAND…` runs COMMAND with all three up and the environment that
points Studio at them (DATABASE_URL, Q_BROKER, STUDIO_STORAGE, AWS_*), then stops them; `make
test` runs the suite a second time this way. Tests that start their own Studio (the crash
suite, the hosts test, the Docker smoke test) take a fresh database, Redis database and
bucket of their own from the same servers with `fresh_database`, `fresh_broker` and
`fresh_bucket`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests import postgres

ROOT = Path(__file__).resolve().parent.parent
REDIS_HINT = (
    "Debian's redis-server is missing: the PostgreSQL + Redis run needs it. Install it with "
    "`sudo apt-get install redis-server` (`make test` does this)."
)
# moto accepts any key; these only make boto3 sign its requests.
S3_KEY = {"AWS_ACCESS_KEY_ID": "studio-test", "AWS_SECRET_ACCESS_KEY": "studio-test-secret"}
REGION = "us-east-1"
# Redis databases: 0 for the suite itself, the others handed out by fresh_broker.
REDIS_DATABASES = 64


class Unavailable(RuntimeError):
    """A server could not be found or started; the message says why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise Unavailable(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """A Redis server; yields its URL (database 0)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise Unavailable(REDIS_HINT)
    root = Path(tempfile.mkdtemp(prefix="studio-test-redis-"))
    port = port or free_port(host)
    log = root / "redis.log"
    command = [
        binary, "--bind", host, "--port", str(port), "--dir", str(root), "--save", "",
        "--appendonly", "no", "--databases", str(REDIS_DATABASES), "--protected-mode", "no",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(host, port, process, log, "redis-server")
        yield f"redis://{host}:{port}/0"
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def s3_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """moto's S3 server; yields its endpoint URL."""
    root = Path(tempfile.mkdtemp(prefix="studio-test-s3-"))
    port = port or free_port(host)
    log = root / "s3.log"
    command = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(host, port, process, log, "moto's S3 server")
        yield f"http://{host}:{port}"
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


def s3_client(endpoint: str):  # -> botocore's S3 client (no stubs)
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=S3_KEY["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_KEY["AWS_SECRET_ACCESS_KEY"],
    )


def fresh_bucket(endpoint: str) -> str:
    name = f"studio-{secrets.token_hex(6)}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def fresh_database(url: str) -> str:
    """A new, empty database on the server of `url`; its URL."""
    import psycopg

    name = f"studio_{secrets.token_hex(6)}"
    with psycopg.connect(_with_path(url, "/postgres"), autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return _with_path(url, f"/{name}")


_handed_out: set[int] = set()


def fresh_broker(url: str) -> str:
    """An empty Redis database of the server of `url`, not handed out before in this process
    (a few per run: each test that starts a cluster takes one)."""
    import redis

    for number in range(1 + os.getpid() % 16, REDIS_DATABASES):
        if number in _handed_out:
            continue
        candidate = _with_path(url, f"/{number}")
        client = redis.Redis.from_url(candidate)
        if client.dbsize() == 0:
            _handed_out.add(number)
            return candidate
    raise Unavailable(f"no empty Redis database left at {url}")


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def stack_env(database: str, broker: str, endpoint: str, bucket: str) -> dict[str, str]:
    """The environment that points Studio at the stack."""
    return {
        "DATABASE_URL": database,
        "Q_BROKER": broker,
        "STUDIO_STORAGE": f"s3://{bucket}",
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": REGION,
        **S3_KEY,
    }


def own_servers() -> dict[str, str]:
    """For a test that starts a Studio of its own: on the stack, a fresh database, Redis
    database and bucket there (stack_env for them); else nothing, and it keeps its SQLite."""
    if not on_stack():
        return {}
    endpoint = os.environ["AWS_S3_ENDPOINT_URL"]
    return stack_env(
        fresh_database(os.environ["DATABASE_URL"]),
        fresh_broker(os.environ["Q_BROKER"]),
        endpoint,
        fresh_bucket(endpoint),
    )


def on_stack() -> bool:
    """Whether this process runs on the stack (DATABASE_URL, Q_BROKER and STUDIO_STORAGE)."""
    return bool(
        os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
        and os.environ.get("Q_BROKER")
        and os.environ.get("STUDIO_STORAGE")
    )


@contextlib.contextmanager
def throwaway_stack() -> Iterator[dict[str, str]]:
    """PostgreSQL, Redis and S3, each fresh; yields stack_env for them."""
    try:
        with (
            postgres.throwaway_server() as database,
            redis_server() as broker,
            s3_server() as endpoint,
        ):
            yield stack_env(database, broker, endpoint, fresh_bucket(endpoint))
    except postgres.PostgresUnavailable as unavailable:
        raise Unavailable(str(unavailable)) from None


def main(command: list[str]) -> int:
    if not command:
        print("usage: python -m tests.stack COMMAND [ARG…]", file=sys.stderr)
        return 2
    try:
        with throwaway_stack() as env:
            shown = {k: v for k, v in env.items() if not k.startswith("AWS_SECRET")}
            print(f"stack: {shown}", flush=True)
            return subprocess.run(command, env={**os.environ, **env}, cwd=ROOT).returncode
    except Unavailable as unavailable:
        print(unavailable, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A throwaway PostgreSQL server for tests, started from Debian's `postgresql` package.

The cluster lives in a temporary directory, listens only on 127.0.0.1 on a free port, keeps
its unix socket in that directory, and is stopped and deleted when the block ends. PostgreSQL
refuses to run as root, so as root (CI) it runs as the `postgres` user the package creates.
"""

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, pg_ctl) are missing: the quota race tests run on "
    "PostgreSQL too. Install Debian's package with `sudo apt-get install postgresql` "
    "(`make test` does this), or point DATABASE_URL at a PostgreSQL server."
)
USER = "studio"
# initdb's own database: Django's tests create theirs (test_postgres) beside it.
DATABASE = "postgres"
# Durability is worthless for a database deleted in a minute; speed is not.
SETTINGS = {
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class PostgresUnavailable(RuntimeError):
    """The server could not be found or started; the message says why."""


def bin_dir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    pg_ctl = found[-1] if found else shutil.which("pg_ctl")
    if not pg_ctl:
        raise PostgresUnavailable(INSTALL_HINT)
    return Path(pg_ctl).parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _as_server_user(*paths: Path) -> list[str]:
    """The command prefix that runs the server's tools as a user it accepts, who is given
    `paths`."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "Running as root, and there is no `postgres` user to run PostgreSQL as. " + INSTALL_HINT
        ) from None
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str], root: Path) -> None:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    if done.returncode:
        log = root / "server.log"
        raise PostgresUnavailable(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            + (log.read_text() if log.exists() else "")
        )


@contextlib.contextmanager
def throwaway_server(host: str = "127.0.0.1") -> Iterator[str]:
    """Start a cluster listening on `host` and yield its DATABASE_URL; stop and delete it
    however the block ends."""
    tools = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="studio-test-pg-"))
    data = root / "data"
    port = free_port(host)
    password = secrets.token_urlsafe(16)
    started = False
    try:
        # Password auth, so other local users cannot reach the test database.
        (root / "password").write_text(password)
        as_server = _as_server_user(root, root / "password")
        _run(
            [*as_server, str(tools / "initdb"), "-D", str(data), "-U", USER,
             f"--pwfile={root / 'password'}", "--auth=scram-sha-256", "--no-sync",
             "--encoding=UTF8", "--locale=C"],
            root,
        )  # fmt: skip
        here = {
            "listen_addresses": f"'{host}'",
            "port": str(port),
            "unix_socket_directories": f"'{root}'",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in {**SETTINGS, **here}.items())
        # Clients from the whole loopback range (the hosts test's namespaces), by password.
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 127.0.0.0/8 scram-sha-256\n")
        started = True  # from here on, stop it even if starting fails halfway
        _run(
            [*as_server, str(tools / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
             "-w", "-t", "60", "start"],
            root,
        )  # fmt: skip
        yield f"postgres://{USER}:{password}@{host}:{port}/{DATABASE}"
    finally:
        if started:
            subprocess.run(
                [*as_server, str(tools / "pg_ctl"), "-D", str(data), "-m", "immediate",
                 "-w", "stop"],
                cwd=root, capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)

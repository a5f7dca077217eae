"""Several hosts: two Studio hosts in network namespaces share PostgreSQL, Redis and S3, a burst
of jobs goes through both web servers, and one host's link is cut mid-burst.

The topology (README: Running at scale), all of the test's own making and gone when it ends:

    namespace …s  (services)   bridge 127.77.0.1/24: PostgreSQL, Redis, moto's S3 server and
          |                    the provider emulator, and this test's own thread (setns)
    veth  |  veth
   namespace …a               namespace …b
   127.77.0.2: gunicorn +     127.77.0.3: gunicorn +
   manage.py qcluster         manage.py qcluster

Loopback addresses only, routed between the namespaces (route_localnet; each namespace's own
loopback keeps just 127.0.0.1); the machine's own network is untouched. Cutting host A is
`ip link set … down` on its veth: its processes are left running, cut off mid-step, as a
host whose network fails. Host B must then finish every job A had taken, once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from emulator import Emulator
from tests import postgres, stack

pytestmark = pytest.mark.hosts

ROOT = Path(__file__).resolve().parent.parent
NET = "127.77.0"
SERVICES, HOST_A, HOST_B = f"{NET}.1", f"{NET}.2", f"{NET}.3"
LATENCY = 4.0
# Each step's lease, and q2's task timeout: a cut host's claimed steps are free this long
# after they started.
Q_TIMEOUT = 20
JOBS_BEFORE_CUT = 24
JOBS_AFTER_CUT = 8
TERMINAL = ("succeeded", "failed", "cancelled")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _why_not() -> str:
    if not stack.on_stack():
        return "runs in make test's PostgreSQL + Redis + S3 pass (make test-stack)"
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    if not shutil.which("ip"):
        return "needs iproute2's ip (make test installs it)"
    return ""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Network:
    """Three namespaces joined by a bridge in the services one."""

    def __init__(self) -> None:
        tag = secrets.token_hex(2)
        self.services, self.a, self.b = (f"studio{tag}{n}" for n in "sab")
        self.veth = {self.a: f"st{tag}a", self.b: f"st{tag}b"}
        self.bridge = f"st{tag}br"

    def build(self) -> None:
        for ns in (self.services, self.a, self.b):
            ip("netns", "add", ns)
            # Loopback addresses may cross a link only with route_localnet; the namespace's
            # own loopback keeps 127.0.0.1 alone, so the rest of 127/8 is routed, not local.
            ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "del", "127.0.0.1/8", "dev", "lo")
            ip("-n", ns, "addr", "add", "127.0.0.1/32", "dev", "lo")
        s = self.services
        ip("-n", s, "link", "add", self.bridge, "type", "bridge")
        ip("-n", s, "addr", "add", f"{SERVICES}/24", "dev", self.bridge)
        ip("-n", s, "link", "set", self.bridge, "up")
        for ns, address in ((self.a, HOST_A), (self.b, HOST_B)):
            outside, inside = self.veth[ns], self.veth[ns] + "h"
            ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns)
            ip("link", "set", outside, "netns", s)
            ip("-n", s, "link", "set", outside, "master", self.bridge, "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", inside)
            ip("-n", ns, "link", "set", inside, "up")

    def cut(self, ns: str) -> None:
        ip("-n", self.services, "link", "set", self.veth[ns], "down")

    def tear_down(self) -> None:
        for ns in (self.a, self.b, self.services):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@contextlib.contextmanager
def inside(namespace: str):
    """This thread in `namespace`'s network: its sockets, and the processes it starts."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


@pytest.fixture
def network():
    if why := _why_not():
        pytest.skip(why)
    net = Network()
    try:
        net.build()
        yield net
    finally:
        net.tear_down()


class Host:
    """One Studio host: gunicorn and `manage.py qcluster`, in its namespace."""

    def __init__(self, name: str, ns: str, address: str, env: dict, logs: Path) -> None:
        self.name, self.ns, self.address = name, ns, address
        self.env = {**env, "ALLOWED_HOSTS": address}
        self.log = logs / f"host-{name}.log"
        self.url = f"http://{address}:8000"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        enter = ["ip", "netns", "exec", self.ns, sys.executable]
        commands = [
            [*enter, "-m", "gunicorn", "studio.wsgi", "--bind", f"{self.address}:8000",
             "--workers", "2", "--threads", "4"],
            [*enter, str(ROOT / "manage.py"), "qcluster"],
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            for command in commands:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        env=self.env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def kill(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        self.processes.clear()

    def signed_in(self) -> httpx.Client:
        # A submit may wait for a row lock the cut host held mid-transaction, until PostgreSQL
        # ends that session (STUDIO_DB_IDLE_TRANSACTION_SECONDS, 10 s).
        http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if http.get("/healthz").text == "ok":
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"host {self.name} never came up:\n{self.log.read_text()}")
            time.sleep(0.3)
        page = http.get("/login/")
        login = {
            "username": "crew",
            "password": "crew-password",
            "csrfmiddlewaretoken": _csrf(page),
        }
        answer = http.post("/login/", data=login)
        assert answer.status_code == 302, answer.text[-2000:]
        return http


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, page.text[-2000:]
    return found.group(1)


def submit(http: httpx.Client, n: int) -> int:
    """One text-to-video job at fal through the create form; its id."""
    form = {
        "csrfmiddlewaretoken": _csrf(http.get("/")), "mode": "text", "provider": "fal",
        "prompt": f"Northern lights over the fjord (hosts {n:03d})", "negative_prompt": "",
        "duration": "4", "resolution": "720p", "aspect": "16:9", "seed": str(n),
    }  # fmt: skip
    answer = http.post("/", data=form)
    assert answer.status_code == 302, answer.text[-3000:]
    return int(re.fullmatch(r"/jobs/(\d+)/", answer.headers["location"]).group(1))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, *args) -> list[dict]:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.url, row_factory=dict_row, connect_timeout=10) as db:
            return list(db.execute(sql, args).fetchall())


def test_a_host_cut_off_mid_burst_leaves_its_jobs_to_the_other_host_each_ending_once(
    network, tmp_path
):
    with (
        inside(network.services),  # first: the servers below start in the services' network
        postgres.throwaway_server(host=SERVICES) as database,
        stack.redis_server(host=SERVICES) as broker,
        stack.s3_server(host=SERVICES) as endpoint,
    ):
        emulator = Emulator(latency=LATENCY).start(host=SERVICES)
        hosts: list[Host] = []
        try:
            run_the_burst(network, tmp_path, database, broker, endpoint, emulator, hosts)
        finally:
            for host in hosts:
                host.kill()
            emulator.stop()


def run_the_burst(network, tmp_path, database, broker, endpoint, emulator, hosts) -> None:
    bucket = stack.fresh_bucket(endpoint)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "Q_", "AWS_"))},
        **stack.stack_env(database, broker, endpoint, bucket),
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "hosts-test-secret-" + "k" * 40,
        "STATIC_ROOT": str(tmp_path / "static"),
        "Q_WORKERS": "2",
        "Q_TIMEOUT": str(Q_TIMEOUT),
        "STUDIO_FOLLOW_STEP_SECONDS": "10",
        "STUDIO_PROVIDER_TIMEOUT": "5",
        **emulator.settings(),
        "FAL_KEY": "hosts-test",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run([*manage, *command], env=env, cwd=ROOT, check=True, timeout=300)
    make_crew = (
        "from decimal import Decimal\n"
        "from django.contrib.auth.models import User\n"
        "from studio.models import Quota\n"
        "crew = User.objects.create_user('crew', password='crew-password')\n"
        "Quota.objects.create(creator=crew, monthly_budget=Decimal('1000'),"
        " monthly_seconds=100000, concurrent_jobs=200)\n"
    )
    subprocess.run([*manage, "shell", "-c", make_crew], env=env, cwd=ROOT, check=True)
    a = Host("a", network.a, HOST_A, env, tmp_path)
    b = Host("b", network.b, HOST_B, env, tmp_path)
    hosts.extend([a, b])
    a.start()
    b.start()
    web = {a: a.signed_in(), b: b.signed_in()}
    db = Database(database)

    # The burst, through both web servers, spread over two clips' time so that host A is
    # submitting, following and finishing when its link goes.
    made: dict[int, Host] = {}
    first = time.monotonic()
    for n in range(JOBS_BEFORE_CUT):
        host = a if n % 2 == 0 else b
        made[submit(web[host], n)] = host
        time.sleep(max(0.0, first + (n + 1) * 2 * LATENCY / JOBS_BEFORE_CUT - time.monotonic()))
    at_cut = {r["id"]: r["status"] for r in db.rows("SELECT id, status FROM studio_job")}
    network.cut(network.a)
    cut = time.monotonic()
    slowest = 0.0
    for n in range(JOBS_BEFORE_CUT, JOBS_BEFORE_CUT + JOBS_AFTER_CUT):
        started = time.monotonic()
        made[submit(web[b], n)] = b
        slowest = max(slowest, time.monotonic() - started)
    a_unfinished = [pk for pk, host in made.items() if host is a and at_cut[pk] not in TERMINAL]
    assert a_unfinished, f"host A had no job in flight at the cut: {at_cut}"

    deadline = cut + 240
    while True:
        statuses = {r["id"]: r for r in db.rows("SELECT * FROM studio_job")}
        if all(statuses[pk]["status"] in TERMINAL for pk in made):
            break
        if time.monotonic() > deadline:
            open_jobs = {
                pk: statuses[pk]["status"] for pk in made if statuses[pk]["status"] not in TERMINAL
            }
            raise AssertionError(f"not all ended: {open_jobs}\n{b.log.read_text()[-4000:]}")
        time.sleep(0.5)
    all_ended = time.monotonic() - cut
    a.kill()  # still cut off: whatever it was doing never lands
    time.sleep(2.0)  # a duplicate step would show up here
    b.kill()

    # Every job ended once: one clip and one charge, or refunded when it could not be told
    # whether host A's submit reached the provider (never resent).
    jobs = {r["id"]: r for r in db.rows("SELECT * FROM studio_job")}
    clips = Counter(r["job_id"] for r in db.rows("SELECT job_id FROM studio_clip"))
    ledger = db.rows("SELECT job_id, kind, usd, seconds FROM studio_ledgerentry")
    submits = Counter(
        r.json.get("prompt", "") for r in emulator.requests if r.method == "POST" and r.json
    )
    outcome = Counter(job["status"] for job in jobs.values())
    for pk, job in jobs.items():
        kinds = sorted(e["kind"] for e in ledger if e["job_id"] == pk)
        sent = submits[job["prompt"]]
        if job["status"] == "succeeded":
            assert (clips[pk], kinds, sent, job["charge"]) == (
                1,
                ["reserve", "settle"],
                1,
                "settled",
            ), pk
        else:
            assert (job["status"], job["error_kind"]) == ("failed", "interrupted"), job
            assert made[pk] is a and at_cut[pk] in ("queued", "submitting"), (pk, at_cut[pk])
            assert (clips[pk], kinds, job["charge"], sent <= 1) == (
                0,
                ["refund", "reserve"],
                "refunded",
                True,
            ), pk
    (usage,) = db.rows("SELECT * FROM studio_usage")
    assert Decimal(usage["usd"]) == sum((Decimal(e["usd"]) for e in ledger), Decimal(0))
    assert [q["running_jobs"] for q in db.rows("SELECT running_jobs FROM studio_quota")] == [0]
    # In the bucket: each clip's MP4, poster and last frame, nothing else, and no upload left open.
    s3 = stack.s3_client(endpoint)
    stored = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    wanted = sorted(
        f"clips/{job['creator_id']}/job-{pk}{end}"
        for pk, job in jobs.items()
        if job["status"] == "succeeded"
        for end in (".mp4", ".jpg", "-last.jpg")  # the clip, its poster, its last frame
    )
    assert stored == wanted
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # How soon: host A's claimed steps come free after their lease (Q_TIMEOUT), its lost
    # queued tasks after TASK_GRACE. When A held the follower's lease too, B's follower starts
    # only at q2's next schedule (every minute, looked at every 30 s or so) once that lease is
    # over. Then a clip's time, and 30 s for noticing, finishing and a busy machine.
    from studio.jobs import TASK_GRACE

    schedule = 60 + 30
    bound = max(Q_TIMEOUT + schedule, TASK_GRACE.total_seconds()) + LATENCY + 30
    print(
        f"{len(made)} jobs, {len(a_unfinished)} of host A's unfinished at the cut "
        f"({Counter(at_cut[pk] for pk in a_unfinished)}); all ended {all_ended:.0f} s after "
        f"the cut (bound {bound:.0f} s); outcomes {dict(outcome)}; slowest submit through "
        f"host B after the cut {slowest:.1f} s"
    )
    assert all_ended <= bound

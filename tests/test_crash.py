"""The crash suite: a real django-q2 cluster (`manage.py qcluster`, tests/crash_cluster.py) is
killed with SIGKILL while jobs stand at every stage, and a fresh one is started; then the
same tasks are delivered twice at once. Every job must end once, with one clip and its
poster on disk, one charge or one refund, and nothing left over.

The cluster runs as a subprocess in its own process group on a throwaway SQLite file and
media folder, or, when this run is on the production stack (tests/stack.py: PostgreSQL,
Redis as q2's broker, S3 storage), on a fresh database, Redis database and bucket of that
stack; the hosted providers are answered by an emulator in this process (so the test sees
every request it got). The test reads the database and the files itself; pytest-django's
own test database is not involved. With Redis a killed task is lost for good (q2's Redis
broker is at-most-once), so there recovery is the engine's alone.

Recovery is the engine's own: `Q_TIMEOUT` shortens the step leases so the
follower (started by q2's schedule) takes the killed steps up within a minute, well before
q2 would redeliver the killed tasks (`retry`, 180 s).
"""

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from PIL import Image

from emulator import Emulator
from studio import following, jobs, leases, tasks, throttle
from studio.models import Clip, Job, LedgerEntry, Quota
from tests import stack
from tests.emulator import new_job, use_emulator
from tests.factories import photo

pytestmark = pytest.mark.crash

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
CLUSTER = [sys.executable, str(ROOT / "tests" / "crash_cluster.py")]
TERMINAL = ("succeeded", "failed", "cancelled")
# Long enough that the test, not the emulator, ends a hang.
HANG_SECONDS = 600
# q2's task timeout, and so every step's lease: the killed steps are taken up this long
# after they started. The kill must come within it, or q2 times a held step out: on a busy
# machine, on PostgreSQL + Redis + S3, parking every stage took more than 25 s.
Q_TIMEOUT = 40
# How long a recovery may take: the schedule starts a follower 30 s after the cluster does,
# and the leases have expired by then.
RECOVERY_SECONDS = 180


# --------------------------------------------------------------------------- the set-up


@pytest.fixture(scope="module")
def provider_emulator():
    server = Emulator(latency=1.0, hang_seconds=HANG_SECONDS).start()
    yield server
    server.stop()


@pytest.fixture
def studio(tmp_path, provider_emulator):
    """A migrated throwaway Studio: its environment, database and media storage."""
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("STUDIO_", "Q_", "AWS_", "DATABASE_URL"))
        },
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "crash-test-secret-" + "k" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'studio.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "TMPDIR": str(tmp_path / "tmp"),
        "STUDIO_CRASH_HOLDS": str(tmp_path / "holds"),
        # One worker per step held at once, the follower, and room for the rest.
        "Q_WORKERS": "10",
        "Q_TIMEOUT": str(Q_TIMEOUT),
        "STUDIO_FOLLOW_STEP_SECONDS": "5",
        "STUDIO_PROVIDER_TIMEOUT": "20",
        "STUDIO_DEFAULT_CONCURRENT_JOBS": "20",
        **provider_emulator.settings(),
        "FAL_KEY": "crash-test",
        "GEMINI_API_KEY": "crash-test",
        "AIMLAPI_KEY": "crash-test",
        "OXEN_API_KEY": "crash-test",
        "VERTEX_PROJECT": "crash-test",
    }
    env.update(stack.own_servers())
    for folder in ("media", "tmp", "holds"):
        (tmp_path / folder).mkdir()
    for command in (["migrate", "-v0"], ["demo_account"]):
        subprocess.run([*MANAGE, *command], env=env, cwd=ROOT, check=True, capture_output=True)
    image = tmp_path / "valley.jpg"
    image.write_bytes(photo(1600, 900))
    provider_emulator.reset()
    return Studio(tmp_path, env, image)


class Studio:
    def __init__(self, root: Path, env: dict, image: Path):
        self.root, self.env, self.image = root, env, image
        self.database = env["DATABASE_URL"]
        self.media = root / "media"
        self.bucket = env["STUDIO_STORAGE"].removeprefix("s3://") if "STUDIO_STORAGE" in env else ""
        self.s3 = stack.s3_client(env["AWS_S3_ENDPOINT_URL"]) if self.bucket else None
        self.holds = root / "holds"
        self.log = root / "cluster.log"
        self.jobs: dict[str, int] = {}  # label → job id

    def rows(self, sql: str, *args) -> list[dict]:
        """The rows of a query written with `?` placeholders, from SQLite or PostgreSQL."""
        if self.database.startswith("sqlite:///"):
            path = self.database.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, timeout=20)) as db:
                db.row_factory = sqlite3.Row
                return [dict(row) for row in db.execute(sql, args)]
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.database, row_factory=dict_row) as db:
            return list(db.execute(sql.replace("?", "%s"), args).fetchall())

    def files(self) -> dict[str, int]:
        """Every stored file (or object) and its size."""
        if self.s3 is None:
            return {
                str(p.relative_to(self.media)): p.stat().st_size
                for p in self.media.rglob("*")
                if p.is_file()
            }
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {item["Key"]: item["Size"] for item in listed}

    def read(self, name: str) -> bytes:
        if self.s3 is None:
            return (self.media / name).read_bytes()
        return self.s3.get_object(Bucket=self.bucket, Key=name)["Body"].read()

    def unfinished_uploads(self) -> list[str]:
        """Keys of multipart uploads still open at the object store."""
        if self.s3 is None:
            return []
        answer = self.s3.list_multipart_uploads(Bucket=self.bucket)
        return sorted(upload["Key"] for upload in answer.get("Uploads", []))

    def job(self, label: str) -> dict:
        return self.rows("SELECT * FROM studio_job WHERE id = ?", self.jobs[label])[0]

    def statuses(self) -> dict[str, str]:
        found = {r["id"]: r["status"] for r in self.rows("SELECT id, status FROM studio_job")}
        return {label: found[pk] for label, pk in self.jobs.items()}

    def all_ended(self) -> bool:
        """Every job ended and the local renderer's copies discarded: a finish discards its
        render just after the job's success commits, so a kill in between would look like an
        orphan that the next cluster's sweep would only then remove."""
        return all(s in TERMINAL for s in self.statuses().values()) and not self.rows(
            "SELECT id FROM studio_localrender"
        )

    def add_creator(self, username: str) -> None:
        code = (
            "from django.contrib.auth.models import User\n"
            f"User.objects.create_user({username!r}, password='pw-crash-creator')\n"
        )
        subprocess.run(
            [*MANAGE, "shell", "-c", code], env=self.env, cwd=ROOT, check=True, capture_output=True
        )

    def generate(self, user: str | None = None, **prompts: str) -> None:
        """Make one 4 s 720p clip of the still per label with `manage.py generate`, in one
        process (as `user`, else the demo account); each label's prompt ends with the label,
        so its requests can be told apart."""
        runs = [
            {"provider": provider, "prompt": f"Slow push in on the valley {extra} ({label})"}
            | ({"user": user} if user else {})
            for label, (provider, extra) in prompts.items()
        ]
        code = (
            "import io, json\n"
            "from django.core.management import call_command\n"
            f"for run in json.loads({json.dumps(runs)!r}):\n"
            "    out = io.StringIO()\n"
            f"    call_command('generate', {str(self.image)!r}, '--duration', '4',\n"
            "        '--resolution', '720p', '--aspect', 'auto', stdout=out, **run)\n"
            "    print('job', json.loads(out.getvalue())['job'])\n"
        )
        done = subprocess.run(
            [*MANAGE, "shell", "-c", code],
            env=self.env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        ids = [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("job ")]
        self.jobs.update(zip(prompts, ids, strict=True))

    def held(self, label: str, stage: str) -> bool:
        return (self.holds / f"job-{self.jobs[label]}-{stage}").exists()

    def renders_of(self, label: str) -> int:
        log = self.holds / "renders.log"
        lines = log.read_text().split() if log.exists() else []
        return lines.count(str(self.jobs[label]))

    def wait_for(self, what: str, condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                log = self.log.read_text()[-4000:] if self.log.exists() else ""
                raise AssertionError(f"not {what} after {timeout:.0f} s: {self.statuses()}\n{log}")
            time.sleep(0.2)


class Cluster:
    """`manage.py qcluster` (with the holds) in its own process group."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.process: subprocess.Popen | None = None

    def start(self) -> "Cluster":
        with open(self.studio.log, "ab") as log:
            self.process = subprocess.Popen(
                CLUSTER, env=self.studio.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once, and wait until they are gone."""
        if self.process is None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        deadline = time.monotonic() + 10
        while _live_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _live_members(pgid), "the killed cluster left processes running"


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (which hold no files or locks)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


@pytest.fixture
def cluster(studio):
    made: list[Cluster] = []

    def start() -> Cluster:
        made.append(Cluster(studio).start())
        return made[-1]

    yield start
    for each in made:
        each.kill()


# --------------------------------------------------------------------------- what must hold


def submits_for(emulator: Emulator, label: str) -> int:
    """Submit requests the emulator got for the job: the only POSTs carrying its prompt."""
    tag = f"({label})".encode()
    return sum(1 for r in emulator.requests if r.method == "POST" and tag in r.body)


def snapshot(studio: Studio) -> dict:
    return {
        "jobs": studio.rows("SELECT * FROM studio_job ORDER BY id"),
        "clips": studio.rows("SELECT * FROM studio_clip ORDER BY id"),
        "ledger": studio.rows("SELECT * FROM studio_ledgerentry ORDER BY id"),
        "usage": studio.rows("SELECT * FROM studio_usage ORDER BY id"),
        "quota": studio.rows("SELECT * FROM studio_quota ORDER BY id"),
        "renders": studio.rows("SELECT * FROM studio_localrender"),
        "files": sorted(studio.files().items()),
        "uploads": studio.unfinished_uploads(),
    }


def assert_settled_once(studio: Studio, expected: dict[str, str]) -> None:
    """Each job ended as expected, once: its clip and poster on disk (nothing else), one
    reservation and one settle or refund, usage equal to the ledger, no slot held."""
    state = snapshot(studio)
    jobs = {j["id"]: j for j in state["jobs"]}
    clips = {c["job_id"]: c for c in state["clips"]}
    assert len(clips) == len(state["clips"]), "a job has two clips"
    wanted_files = {}
    for label, outcome in expected.items():
        job = jobs[studio.jobs[label]]
        assert job["status"] == outcome, (label, job["status"], job["error"])
        assert job["finished_at"], label
        entries = [e for e in state["ledger"] if e["job_id"] == job["id"]]
        kinds = sorted(e["kind"] for e in entries)
        if outcome == "succeeded":
            assert job["charge"] == "settled", label
            assert kinds == ["reserve", "settle"], (label, kinds)
            clip = clips[job["id"]]
            name = f"clips/{job['creator_id']}/job-{job['id']}"
            assert (clip["file"], clip["poster"], clip["last_frame"]) == (
                f"{name}.mp4",
                f"{name}.jpg",
                f"{name}-last.jpg",
            ), label
            assert len(studio.read(clip["file"])) == clip["size_bytes"], label
            assert (clip["width"], clip["height"], clip["duration"]) == (1280, 720, 4.0), label
            poster_bytes = studio.read(clip["poster"])
            with Image.open(io.BytesIO(poster_bytes)) as poster:
                assert poster.format == "JPEG" and poster.size == (1280, 720), label
            wanted_files[clip["file"]] = clip["size_bytes"]
            wanted_files[clip["poster"]] = len(poster_bytes)
            last_bytes = studio.read(clip["last_frame"])
            with Image.open(io.BytesIO(last_bytes)) as last:
                assert last.format == "JPEG" and last.size == (1280, 720), label
            wanted_files[clip["last_frame"]] = len(last_bytes)
        else:
            assert job["charge"] == "refunded", label
            assert kinds == ["refund", "reserve"], (label, kinds)
            assert job["id"] not in clips, label
    # No file but the stills and each clip's three: no orphans, no temporary files.
    stills = {r["file"] for r in studio.rows("SELECT file FROM studio_sourceimage")}
    others = {name: size for name, size in state["files"] if name not in stills}
    assert others == wanted_files
    assert state["uploads"] == [], "an upload was left unfinished at the object store"
    assert state["renders"] == [], "the local renderer kept a render of a finished job"
    # Each creator's usage is the sum of their ledger, and every running slot was given back.
    assert state["usage"]
    for usage in state["usage"]:
        theirs = [e for e in state["ledger"] if e["creator_id"] == usage["creator_id"]]
        assert Decimal(str(usage["usd"])) == sum(
            (Decimal(str(e["usd"])) for e in theirs), Decimal("0")
        )
        assert usage["seconds"] == sum(e["seconds"] for e in theirs)
    assert state["quota"] and [q["running_jobs"] for q in state["quota"]] == [0] * len(
        state["quota"]
    )
    assert not any(job["holds_slot"] for job in state["jobs"])


def assert_stages_at_the_kill(studio: Studio) -> None:
    """What the killed cluster left: each job where its stage says."""
    creator = studio.job("fal_poster")["creator_id"]
    clips = f"clips/{creator}/"
    stored = studio.files()

    def files_of(job: int) -> list[str]:
        return sorted(n.removeprefix(clips) for n in stored if n.startswith(f"{clips}job-{job}."))

    renders = {r["client_reference"]: r for r in studio.rows("SELECT * FROM studio_localrender")}
    # Sent to fal, no answer: nothing to find the job by.
    assert studio.job("fal_submit")["provider_job_id"] == ""
    # Taken by the local renderer, the answer not recorded.
    local_submit = studio.job("local_submit")
    assert (local_submit["status"], local_submit["provider_job_id"]) == ("submitting", "")
    assert f"studio-job-{local_submit['id']}" in renders
    # Half-way through the render.
    render = renders[f"studio-job-{studio.jobs['local_render']}"]
    assert (render["status"], render["output"]) == ("rendering", "")
    # The download hung before any of the MP4 arrived; the other's MP4 is stored, its
    # poster is not; neither has a clip yet.
    download, poster = studio.jobs["fal_download"], studio.jobs["fal_poster"]
    assert files_of(download) == []
    assert files_of(poster) == [f"job-{poster}.mp4"]
    assert studio.rows("SELECT * FROM studio_clip WHERE job_id IN (?, ?)", download, poster) == []
    # Succeeded; its render is discarded by the follower (before the kill or after it).
    assert studio.job("local_discard")["status"] == "succeeded"
    if "fal_upload" in studio.jobs:
        # Killed mid-upload: the object store shows no object, half or whole, only the
        # unfinished multipart upload (which the step taken up again aborts).
        upload = studio.jobs["fal_upload"]
        assert files_of(upload) == []
        assert studio.unfinished_uploads() == [f"{clips}job-{upload}.mp4"]


# --------------------------------------------------------------------------- kill -9


def test_a_cluster_killed_at_every_stage_finishes_every_job_once(
    studio, cluster, provider_emulator
):
    emulator = provider_emulator
    first = cluster()
    # Jobs that park at a stage (an emulator hang, or a hold) and stay there until the kill.
    emulator.latency = 1.0
    on_s3 = {"fal_upload": ("fal", "[hold:upload]")} if studio.s3 is not None else {}
    studio.generate(
        fal_submit=("fal", "[fail:timeout@submit]"),  # the provider's answer never comes
        local_submit=("local", "[hold:submit]"),  # the render is queued, the answer unsaved
        local_render=("local", "[hold:render]"),  # half-way through the local render
        fal_download=("fal", "[fail:timeout@download]"),  # the MP4 download hangs
        fal_poster=("fal", "[hold:poster]"),  # the MP4 is stored, its poster is not
        local_discard=("local", "[hold:discard]"),  # succeeded, the render not cleaned up
        **on_s3,  # the MP4's multipart upload open, half read
    )

    def parked() -> bool:
        fal_download = studio.job("fal_download")
        return (
            studio.job("fal_submit")["status"] == "submitting"
            and submits_for(emulator, "fal_submit") == 1
            and studio.held("local_submit", "submit")
            and studio.held("local_render", "render")
            and fal_download["status"] == "finishing"
            and any(
                r.method == "GET"
                and r.path == f"/fal/cdn/files/{fal_download['provider_job_id']}/output.mp4"
                for r in emulator.requests
            )
            and studio.held("fal_poster", "poster")
            and studio.held("local_discard", "discard")
            and ("fal_upload" not in studio.jobs or studio.held("fal_upload", "upload"))
        )

    studio.wait_for("parked at every stage", parked, timeout=60)
    # Jobs each hosted provider is still making when the cluster dies.
    emulator.latency = 8.0
    studio.generate(
        fal_poll=("fal", ""),
        gemini_poll=("gemini", ""),
        vertex_poll=("vertex", ""),
        aimlapi_poll=("aimlapi", ""),
        oxen_poll=("oxen", ""),
    )
    polling = ("fal_poll", "gemini_poll", "vertex_poll", "aimlapi_poll", "oxen_poll")
    studio.wait_for(
        "at the providers",
        lambda: all(studio.job(p)["status"] in ("submitted", "running") for p in polling),
        timeout=30,
    )
    assert parked(), studio.statuses()
    at_kill = studio.statuses()
    first.kill()
    assert_stages_at_the_kill(studio)

    started = time.monotonic()
    second = cluster()
    studio.wait_for(
        "all ended",
        studio.all_ended,
        timeout=RECOVERY_SECONDS,
    )
    recovery = time.monotonic() - started
    second.kill()
    print(f"stages at the kill: {at_kill}; recovered in {recovery:.0f} s")

    expected = {label: "succeeded" for label in studio.jobs}
    expected["fal_submit"] = "failed"
    assert_settled_once(studio, expected)
    # The hosted job caught mid-submit was never sent again, and the creator not charged.
    failed = studio.job("fal_submit")
    assert failed["error_kind"] == "interrupted"
    assert "interrupted while sending" in failed["error"]
    assert failed["error"].endswith("You were not charged.")
    # Every hosted job reached its provider exactly once.
    for label in studio.jobs:
        if not label.startswith("local"):
            assert submits_for(emulator, label) == 1, label
    # The local job caught mid-submit was sent again, and rendered once; the one killed
    # mid-render was rendered again.
    assert studio.renders_of("local_submit") == 1
    assert studio.renders_of("local_render") == 2
    # Outside MEDIA_ROOT, each step killed while working on a file leaves its scratch folder
    # in the system's temporary folder (the OS's to clear); the steps taken up left none.
    scratch = sorted(p.name.rsplit("-", 1)[0] for p in (studio.root / "tmp").iterdir())
    finishes_killed = 3 if "fal_upload" in studio.jobs else 2
    assert scratch == sorted(["studio-render"] + ["studio-finish"] * finishes_killed)

    # No task failed with an error, before the kill or after.
    assert studio.rows("SELECT func, result FROM django_q_task WHERE NOT success") == []

    assert_redelivery_changes_nothing(studio, emulator)


def assert_redelivery_changes_nothing(studio: Studio, emulator: Emulator) -> None:
    """q2 redelivers every killed task after `retry`: the same tasks again, twice at once in
    two processes, change nothing."""
    before = snapshot(studio)
    requests = len(emulator.requests)
    ids = list(studio.jobs.values())
    renders = [j["provider_job_id"] for j in before["jobs"] if j["provider"] == "local"]
    code = (
        "from studio import tasks\n"
        f"for pk in {ids!r}:\n"
        "    tasks.submit_job(pk)\n"
        "    tasks.finish_job(pk)\n"
        f"for render in {renders!r}:\n"
        "    tasks.render_locally(render)\n"
        "tasks.follow_jobs()\n"
    )
    again = [*MANAGE, "shell", "-c", code]
    out = subprocess.PIPE
    runs = [
        subprocess.Popen(again, env=studio.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0, out.decode()
    assert snapshot(studio) == before
    assert len(emulator.requests) == requests


def test_a_cluster_killed_while_slots_are_handed_over_starts_every_waiting_job_once(
    studio, cluster, provider_emulator
):
    emulator = provider_emulator
    # One running job per creator: each job that ends hands its slot to the next in line.
    studio.env["STUDIO_DEFAULT_CONCURRENT_JOBS"] = "1"
    studio.add_creator("bea")
    first = cluster()
    emulator.latency = 1.0
    studio.generate(
        handover_first=("fal", ""),  # runs; its end frees the slot
        handover_next=("fal", "[hold:handover]"),  # next in line: not admitted to it yet
        handover_last=("local", ""),  # waits behind it
    )
    studio.generate(
        user="bea",
        admitted_first=("fal", ""),
        admitted_next=("fal", "[hold:admitted]"),  # admitted, its submit not queued yet
        admitted_last=("local", ""),
    )
    assert studio.statuses()["handover_next"] == "waiting"
    studio.wait_for(
        "parked at both hand-overs",
        lambda: (
            studio.held("handover_next", "handover") and studio.held("admitted_next", "admitted")
        ),
        timeout=60,
    )
    first.kill()

    # What the kill left: one slot freed and nobody admitted to it; one job admitted, with
    # its slot, and no submit task; neither sent anywhere.
    running = {
        q["creator_id"]: q["running_jobs"] for q in studio.rows("SELECT * FROM studio_quota")
    }
    handed, admitted = studio.job("handover_next"), studio.job("admitted_next")
    assert [studio.job(label)["status"] for label in ("handover_first", "admitted_first")] == [
        "succeeded", "succeeded",
    ]  # fmt: skip
    assert (handed["status"], handed["holds_slot"], running[handed["creator_id"]]) == (
        "waiting", 0, 0,
    )  # fmt: skip
    assert (admitted["status"], admitted["holds_slot"], running[admitted["creator_id"]]) == (
        "queued", 1, 1,
    )  # fmt: skip
    assert submits_for(emulator, "handover_next") == submits_for(emulator, "admitted_next") == 0
    assert (studio.job("handover_last")["status"], studio.job("admitted_last")["status"]) == (
        "waiting", "waiting",
    )  # fmt: skip

    started = time.monotonic()
    second = cluster()
    studio.wait_for(
        "all ended",
        studio.all_ended,
        timeout=RECOVERY_SECONDS + 60,
    )
    recovery = time.monotonic() - started
    second.kill()
    print(f"recovered in {recovery:.0f} s")

    assert_settled_once(studio, {label: "succeeded" for label in studio.jobs})
    # Each job started once, in line: the hosted ones were sent once each, the local ones
    # rendered once each, and each waited for the one ahead of it.
    for label in ("handover_first", "handover_next", "admitted_first", "admitted_next"):
        assert submits_for(emulator, label) == 1, label
    assert studio.renders_of("handover_last") == studio.renders_of("admitted_last") == 1
    for ahead, behind in (("handover_next", "handover_last"), ("admitted_next", "admitted_last")):
        assert studio.job(behind)["admitted_at"] >= studio.job(ahead)["finished_at"]
    assert list((studio.root / "tmp").iterdir()) == []
    assert studio.rows("SELECT func, result FROM django_q_task WHERE NOT success") == []
    assert_redelivery_changes_nothing(studio, emulator)


# --------------------------------------------------------------------------- twice at once


def twice_at_once(task, *args) -> None:
    """Run `task(*args)` in two threads released together, as two workers would when q2
    delivers the same task twice; each has its own database connection."""
    start = threading.Barrier(2)
    errors = []

    def run() -> None:
        try:
            start.wait()
            task(*args)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_each_task_delivered_twice_at_once_takes_effect_once(
    settings, creator, monkeypatch, tmp_path
):
    emulator = use_emulator(settings)
    settings.MEDIA_ROOT = tmp_path
    queued = []  # what the steps queue, instead of a cluster running it
    lock = threading.Lock()

    def enqueue(func, *args):
        with lock:
            queued.append((func, *args))

    for module in (jobs, following, throttle, leases):
        monkeypatch.setattr(module, "async_task", enqueue)
    settings.STUDIO_DEFAULT_CONCURRENT_JOBS = 6
    made = [
        new_job(creator, "fal", prompt=f"Slow push in on the valley (twice {n})") for n in range(6)
    ]

    for job in made:
        twice_at_once(tasks.submit_job, job.pk)
    for n, job in enumerate(made):
        job.refresh_from_db()
        assert job.status == Job.Status.SUBMITTED
        assert submits_for(emulator, f"twice {n}") == 1
    time.sleep(emulator.latency)  # every clip is ready at the emulator

    def polls(job: Job) -> int:
        return sum(
            1 for r in emulator.requests if r.path.endswith(f"/{job.provider_job_id}/status")
        )

    # Two followers at once: one holds the lease and asks about each due job once, the other
    # returns at once.
    settings.STUDIO_FOLLOW_STEP_SECONDS = 1
    first, second = made[:3], made[3:]
    Job.objects.update(next_check_at=timezone.now() + timedelta(hours=1))
    Job.objects.filter(pk__in=[job.pk for job in first]).update(next_check_at=timezone.now())
    twice_at_once(tasks.follow_jobs)
    assert [polls(job) for job in first] == [1, 1, 1]
    # Two passes at once, with no lease between them: both may hear a clip is ready, and
    # each job still moves on once.
    Job.objects.filter(pk__in=[job.pk for job in second]).update(next_check_at=timezone.now())
    twice_at_once(following.follow_once)
    assert all(polls(job) in (1, 2) for job in second)
    finishes = sorted(args for func, *args in queued if func == "studio.tasks.finish_job")
    assert finishes == [[job.pk] for job in made]
    assert set(Job.objects.values_list("status", flat=True)) == {Job.Status.FINISHING}

    for job in made:
        twice_at_once(tasks.finish_job, job.pk)
    for job in made:
        job.refresh_from_db()
        assert (job.status, job.charge) == (Job.Status.SUCCEEDED, Job.Charge.SETTLED)
        clip_url = f"/fal/cdn/files/{job.provider_job_id}/output.mp4"
        assert sum(1 for r in emulator.requests if r.path == clip_url) == 1
        kinds = sorted(LedgerEntry.objects.filter(job=job).values_list("kind", flat=True))
        assert kinds == ["reserve", "settle"]
        assert Clip.objects.filter(job=job).count() == 1
    files = sorted(default_storage.listdir(f"clips/{creator.pk}")[1])
    names = ("{}.jpg", "{}.mp4", "{}-last.jpg")
    assert files == sorted(name.format(f"job-{job.pk}") for job in made for name in names)
    assert Quota.objects.get(creator=creator).running_jobs == 0

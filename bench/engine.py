"""The job engine under load: N jobs at a hosted provider (the emulator), one worker cluster.

Run from anywhere: `.venv/bin/python bench/engine.py [--jobs 500] [--latency 20] [--webhooks]
[--provider fal] [--rate JOBS_PER_SECOND] [--pace SUBMITS_PER_SECOND] [--workers 2]
[--stack] [--hosts 1] [--json FILE] [--keep]`. It starts, all on a throwaway SQLite database
(or, with `--stack`, a throwaway PostgreSQL with Redis as q2's broker, tests/stack.py) and
media folder in a temp directory:

- the provider emulator (emulator/) in this process, every clip taking exactly
  `--latency` seconds from the moment the emulator accepts it;
- Studio's worker, `manage.py qcluster` with Q_WORKERS=2, as a subprocess; with `--hosts N`,
  N of them, each as a worker host would run it (they share this machine's two cores);
- with `--webhooks`, gunicorn serving Studio too (as `manage.py serve` does), whose address is
  STUDIO_PUBLIC_URL, so the emulator POSTs signed webhooks to it (FAL_JWKS_URL and
  GEMINI_WEBHOOK_SECRET point at the emulator's).

Then one creator with room for every job makes N text-to-video jobs (4 s, 720p, no audio:
the emulator renders one clip per option set and serves it from memory after that, so its
CPU stays out of the way) through `jobs.create_jobs`: all at once (a burst), or `--rate` a
second, and the script waits until every job has ended. Figures, per job:

- added latency: the clip visible in the gallery (the Clip row's `created_at`) minus the
  moment the provider was done (the emulator's accept time + latency), split into noticing
  (Job.provider_done_at - done) and finishing (clip - provider_done_at);
- status calls at the emulator, per job and per minute of generation;
- CPU seconds (user + system) of the worker's whole process tree (read from /proc, dead
  children included through cutime/cstime), and of the web server's with webhooks;
- jobs lost (not ended by the deadline) or failed, and duplicated (sent to the provider
  more than once, or more than one clip);
- the most jobs generating at the provider at once;
- with webhooks, when the emulator POSTed each one and how long Studio took to answer.

Goals on our 2-core machines: p95 added latency ≤ 3 s polling, ≤ 1 s with webhooks; at
least 1,000 jobs in flight at once without missing that; at most 12 status calls per job per
minute of generation; nothing lost or duplicated. The exit status is 0 even when a goal is
missed (this measures); MISSED says so. The load average is printed with the figures: on a
busy machine they are not comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator import Emulator  # noqa: E402  (no Django in it: safe before setup)

GOAL_P95_POLLING = 3.0
GOAL_P95_WEBHOOKS = 1.0
GOAL_IN_FLIGHT = 1000
GOAL_CALLS_PER_MINUTE = 12.0
TICKS = os.sysconf("SC_CLK_TCK")
EMULATED_ID = re.compile(r"[0-9a-f]{32}")
TERMINAL = ("succeeded", "failed", "cancelled")
BURST_CHUNK = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu(root: int) -> float:
    """User + system CPU seconds of `root` and every descendant alive now, plus what their
    children that already exited (reaped) used: /proc's utime, stime, cutime and cstime."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        stats[int(entry)] = (ppid, (utime + stime + cutime + cstime) / TICKS)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo.extend(children.get(pid, []))
    return total


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals [start, end) open at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = open_now = 0
    for _, change in events:
        open_now += change
        peak = max(peak, open_now)
    return peak


def classify(record) -> tuple[str, str]:
    """("submit", prompt) | ("status", job id) | ("download", job id) | ("other", "")
    for one request the emulator received, whichever provider's protocol it is."""
    method, path = record.method, record.path
    if method == "POST":
        data = record.json
        if isinstance(data, dict):
            instances = data.get("instances")
            if isinstance(instances, list) and instances and isinstance(instances[0], dict):
                data = instances[0]
            if isinstance(data.get("prompt"), str):
                return "submit", data["prompt"]
        return "other", ""
    if method != "GET":
        return "other", ""
    found = EMULATED_ID.search(path + " " + " ".join(v for vs in record.query.values() for v in vs))
    job_id = found.group(0) if found else ""
    if not job_id:
        return "other", ""
    if path.endswith(".mp4") or ":download" in path or "/cdn/files/" in path:
        return "download", job_id
    if (
        (record.provider == "fal" and path.endswith("/status"))
        or (record.provider == "gemini" and "/operations/" in path)
        or (record.provider == "aimlapi" and path.endswith("/video/generations"))
        or (record.provider == "oxen" and "/api/ai/queue/" in path)
    ):
        return "status", job_id
    return "other", ""  # fal's result GET, which Studio asks once a job is COMPLETED


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        # A session of its own, so the whole tree can be stopped together at the end.
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
        )


def stop(process: subprocess.Popen, grace: float = 60.0) -> None:
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of this process's own session
    process.wait()


def wait_until(ready, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{process.args[-1]} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def web_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return answer.read() == b"ok"
    except OSError:
        return False


def main() -> None:
    args = parse_args()
    if not args.stack:
        run(args, {"DATABASE_URL": "", "Q_BROKER": ""})
        return
    from tests import postgres, stack

    with postgres.throwaway_server() as database, stack.redis_server() as broker:
        run(args, {"DATABASE_URL": database, "Q_BROKER": broker})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500, help="jobs to make (default 500)")
    parser.add_argument(
        "--latency", type=float, default=20.0, help="seconds each clip takes (default 20)"
    )
    parser.add_argument("--webhooks", action="store_true", help="providers POST webhooks too")
    parser.add_argument("--provider", default="fal", choices=["fal", "gemini", "aimlapi", "oxen"])
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="jobs per second arriving steadily, instead of all at once (default: a burst)",
    )
    parser.add_argument("--workers", type=int, default=2, help="Q_WORKERS (default 2)")
    parser.add_argument(
        "--pace", type=int, default=0, help="STUDIO_SUBMITS_PER_SECOND (default 0: unpaced)"
    )
    parser.add_argument(
        "--stack", action="store_true", help="PostgreSQL + Redis (q2's broker) instead of SQLite"
    )
    parser.add_argument("--hosts", type=int, default=1, help="worker clusters (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--deadline",
        type=float,
        default=600.0,
        help="seconds after the last job was made by which every job must have ended (default 600)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and its logs")
    return parser.parse_args()


def run(args: argparse.Namespace, stack_env: dict[str, str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="studio-bench-engine-"))
    emulator = Emulator(latency=args.latency).start()
    web_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": stack_env["DATABASE_URL"] or f"sqlite:///{work / 'studio.sqlite3'}",
        "Q_BROKER": stack_env["Q_BROKER"],
        "STUDIO_SUBMITS_PER_SECOND": str(args.pace),
        "MEDIA_ROOT": str(work / "media"),
        "STATIC_ROOT": str(work / "static"),
        "Q_WORKERS": str(args.workers),
        "FAL_KEY": "bench",
        "GEMINI_API_KEY": "bench",
        "AIMLAPI_KEY": "bench",
        "OXEN_API_KEY": "bench",
        **emulator.settings(),
    }
    env.pop("STUDIO_PUBLIC_URL", None)
    env.pop("STUDIO_STORAGE", None)  # media on local disk: the bench measures the engine
    if args.webhooks:
        env["STUDIO_PUBLIC_URL"] = f"http://127.0.0.1:{web_port}"
    os.environ.clear()
    os.environ.update(env)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    from studio import jobs
    from studio.models import Clip, Job, Quota, WebhookDelivery
    from studio.options import ClipOptions

    call_command("migrate", verbosity=0)
    creator = get_user_model().objects.create_user("bench", password=secrets.token_urlsafe(16))
    Quota.objects.create(
        creator=creator,
        monthly_budget=Decimal("1000000"),
        monthly_seconds=args.jobs * 4 * 10,
        concurrent_jobs=args.jobs * 2,
    )

    manage = [sys.executable, str(ROOT / "manage.py")]
    worker_log, web_log = work / "worker.log", work / "web.log"
    processes: list[subprocess.Popen] = []
    broker = get_broker()
    try:
        workers = [start([*manage, "qcluster"], env, worker_log) for _ in range(args.hosts)]
        processes.extend(workers)
        worker = workers[0]
        web = None
        if args.webhooks:
            web = start(
                [
                    sys.executable, "-m", "gunicorn", "studio.wsgi",
                    "--bind", f"127.0.0.1:{web_port}",
                    "--workers", "2", "--threads", "4",
                ],
                env,
                web_log,
            )  # fmt: skip
            processes.append(web)
            wait_until(lambda: web_ready(env["STUDIO_PUBLIC_URL"]), web, web_log, 30)
        # The cluster is up once it has taken a task off the queue and acknowledged it.
        async_task("math.floor", 1.5)
        wait_until(lambda: not broker.queue_size(), worker, worker_log, 60)

        load_before = os.getloadavg()
        worker_cpu0 = sum(tree_cpu(w.pid) for w in workers)
        web_cpu0 = tree_cpu(web.pid) if web else 0.0
        self_cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        burst_start = time.time()
        # A burst is made in transactions of BURST_CHUNK jobs, as a batch of variations is:
        # one job per transaction would hold SQLite's write lock back to back for seconds
        # and starve the worker. Steady arrivals (--rate) are one job per transaction.
        prompts: dict[int, str] = {}
        chunk = 1 if args.rate else BURST_CHUNK
        for first in range(0, args.jobs, chunk):
            if args.rate:
                time.sleep(max(0.0, burst_start + first / args.rate - time.time()))
            texts = [
                f"Slow push in on the harbour, bench clip {i:05d}"
                for i in range(first, min(args.jobs, first + chunk))
            ]
            clip = ClipOptions(
                prompt="", mode="text", duration=4, resolution="720p", aspect="16:9", audio=False
            )
            made = jobs.create_jobs(
                creator=creator,
                provider=args.provider,
                batch=[clip.replace(prompt=text) for text in texts],
            )
            prompts.update({job.pk: job.prompt for job in made})
        burst_end = time.time()

        deadline = burst_end + args.deadline
        peak_queue = peak_at_provider = 0
        loads = []
        last_print = 0.0
        while True:
            counts = dict(Job.objects.values_list("status").annotate(n=Count("pk")))
            peak_queue = max(peak_queue, broker.queue_size() or 0)
            peak_at_provider = max(
                peak_at_provider, counts.get("submitted", 0) + counts.get("running", 0)
            )
            loads.append(os.getloadavg()[0])
            ended = sum(counts.get(s, 0) for s in TERMINAL)
            now = time.time()
            if now - last_print >= 10:
                shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                print(f"  {now - burst_start:5.0f} s: {shown}", flush=True)
                last_print = now
            if ended >= args.jobs or now > deadline or any(w.poll() is not None for w in workers):
                break
            time.sleep(0.5)
        all_ended = time.time()
        time.sleep(3.0)  # a duplicate step would show up here
        worker_cpu = sum(tree_cpu(w.pid) for w in workers) - worker_cpu0
        web_cpu = (tree_cpu(web.pid) - web_cpu0) if web else 0.0
        self_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - self_cpu0
        load_after = os.getloadavg()
    finally:
        for process in processes:
            stop(process)
        emulator.stop()

    # ------------------------------------------------------------------ figures
    n = args.jobs
    studio_jobs = {job.pk: job for job in Job.objects.all()}
    clips = Counter(Clip.objects.values_list("job_id", flat=True))
    clip_at = {
        job_id: created.timestamp()
        for job_id, created in Clip.objects.values_list("job_id", "created_at")
    }
    emulated = emulator.job_times()
    submits: Counter[str] = Counter()
    status_calls: Counter[str] = Counter()
    downloads: Counter[str] = Counter()
    for record in emulator.requests:
        kind, key = classify(record)
        if kind == "submit":
            submits[key] += 1
        elif kind == "status":
            status_calls[key] += 1
        elif kind == "download":
            downloads[key] += 1

    added, noticing, finishing, at_provider, to_provider = [], [], [], [], []
    calls = []
    for pk, job in studio_jobs.items():
        emulated_id = (job.provider_job_id or "").rsplit("/", 1)[-1]
        times = emulated.get(emulated_id)
        if times is not None:
            at_provider.append((times[1], times[2]))
            to_provider.append(times[1] - job.created_at.timestamp())
            calls.append(status_calls[emulated_id])
        if job.status != "succeeded" or times is None or pk not in clip_at:
            continue
        done = times[2]
        added.append(clip_at[pk] - done)
        noticing.append(job.provider_done_at.timestamp() - done)
        finishing.append(clip_at[pk] - job.provider_done_at.timestamp())

    statuses = Counter(job.status for job in studio_jobs.values())
    lost = sum(1 for job in studio_jobs.values() if job.status not in TERMINAL)
    failed = statuses.get("failed", 0) + statuses.get("cancelled", 0)
    sent_twice = sum(1 for pk in studio_jobs if submits[prompts.get(pk, "")] > 1)
    clips_twice = sum(1 for count in clips.values() if count > 1)
    fetched_twice = sum(1 for count in downloads.values() if count > 1)
    duplicated = sent_twice + clips_twice
    in_flight = peak_overlap(at_provider) if at_provider else 0
    calls_per_job = sum(calls) / len(calls) if calls else 0.0
    calls_per_minute = calls_per_job / (args.latency / 60)
    p95_goal = GOAL_P95_WEBHOOKS if args.webhooks else GOAL_P95_POLLING
    webhook_answers = Counter(sent.status for sent in emulator.webhooks_sent)
    webhook_late, webhook_answered, webhook_reached = [], [], []
    received = {
        delivery: at.timestamp()
        for delivery, at in WebhookDelivery.objects.values_list("delivery_id", "received_at")
    }
    for sent in emulator.webhooks_sent:
        request_id = sent.json.get("request_id", "")
        times = emulated.get(request_id)
        if times is not None:
            webhook_late.append(sent.sent_at - times[2])
            webhook_answered.append(sent.answered_in)
        if request_id in received:
            webhook_reached.append(received[request_id] - sent.sent_at)

    def seconds(values: list[float]) -> str:
        if not values:
            return "n/a"
        return (
            f"p50 {percentile(values, 0.5):6.2f}  p95 {percentile(values, 0.95):6.2f}  "
            f"max {max(values):6.2f}"
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    mode = "webhooks + polling" if args.webhooks else "polling"
    print()
    database = "PostgreSQL + Redis" if args.stack else "SQLite"
    pace = f", {args.pace} submits/s" if args.pace else ", unpaced"
    print(
        f"Engine: {n} jobs at {args.provider} (emulated, {args.latency:g} s each), {mode}, "
        f"{args.hosts} worker host(s) × Q_WORKERS={args.workers}, {database} "
        f"({connection.vendor}){pace}"
    )
    print(
        f"({os.cpu_count()} cores; load average {load_before[0]:.2f} / {load_before[1]:.2f} "
        f"before, {load_after[0]:.2f} / {load_after[1]:.2f} after (1 / 5 min), "
        f"mean 1-min load during the run {sum(loads) / len(loads):.2f})"
    )
    arrival = f"{args.rate:g} a second" if args.rate else "a burst"
    print(
        f"{arrival}: {n} jobs created in {burst_end - burst_start:.1f} s; all at the provider "
        f"{max((s for s, _ in at_provider), default=burst_start) - burst_start:.1f} s after "
        f"the first was made; every job ended {all_ended - burst_start:.1f} s after it"
    )
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print()
    rows = [
        ("added latency, s (clip visible − provider done)", seconds(added),
         f"p95 ≤ {p95_goal:g}",
         verdict(bool(added) and percentile(added, 0.95) <= p95_goal)),
        ("  of which noticing done, s", seconds(noticing), "", ""),
        ("  of which finishing (fetch, probe, poster), s", seconds(finishing), "", ""),
        ("queued → accepted by the provider, s", seconds(to_provider), "", ""),
        ("jobs generating at the provider at once (peak)", f"{in_flight}",
         f"≥ {GOAL_IN_FLIGHT}" if n >= GOAL_IN_FLIGHT else "",
         verdict(in_flight >= GOAL_IN_FLIGHT) if n >= GOAL_IN_FLIGHT else ""),
        ("  Studio's view: submitted or running (peak)", f"{peak_at_provider}", "", ""),
        ("status calls per job", f"{calls_per_job:.2f} (max {max(calls, default=0)})", "", ""),
        ("  per minute of generation", f"{calls_per_minute:.2f}",
         f"≤ {GOAL_CALLS_PER_MINUTE:g}", verdict(calls_per_minute <= GOAL_CALLS_PER_MINUTE)),
        ("worker CPU s per job (qcluster tree)", f"{worker_cpu / n:.3f} ({worker_cpu:.1f} s)",
         "", ""),
        ("web CPU s per job (gunicorn tree)", f"{web_cpu / n:.3f} ({web_cpu:.1f} s)", "", "")
        if args.webhooks else None,
        ("emulator + this script CPU s", f"{self_cpu:.1f}", "", ""),
        ("task queue depth (peak, broker)", f"{peak_queue}", "", ""),
        ("jobs lost (not ended by the deadline)", f"{lost}", "0", verdict(lost == 0)),
        ("jobs failed or cancelled", f"{failed}", "0", verdict(failed == 0)),
        ("jobs duplicated (sent twice / two clips)", f"{duplicated} ({sent_twice} / "
         f"{clips_twice})", "0", verdict(duplicated == 0)),
        ("  clips downloaded more than once", f"{fetched_twice}", "", ""),
        ("webhook POSTed, s after done (emulator)", seconds(webhook_late), "", "")
        if args.webhooks else None,
        ("webhook answered by Studio in, s", seconds(webhook_answered), "", "")
        if args.webhooks else None,
        ("  of which until recorded as received, s", seconds(webhook_reached), "", "")
        if args.webhooks else None,
        ("webhooks sent (answer: count)", ", ".join(
            f"{status}: {count}" for status, count in sorted(webhook_answers.items())) or "0",
         "", "") if args.webhooks else None,
    ]  # fmt: skip
    width = max(len(row[0]) for row in rows if row)
    print(f"{'figure':<{width}}  {'value':<40} {'goal':<10} verdict")
    for row in rows:
        if row:
            name, value, goal, ok = row
            print(f"{name:<{width}}  {value:<40} {goal:<10} {ok}")
    if args.json:
        figures = {
            "run": f"{database}, {args.hosts} host(s)",
            "load": sum(loads) / len(loads),
            "added": [percentile(added, q) for q in (0.5, 0.95)] + [max(added)] if added else None,
            "noticing_p95": percentile(noticing, 0.95) if noticing else None,
            "finishing_p95": percentile(finishing, 0.95) if finishing else None,
            "all_ended": all_ended - burst_start,
            "calls_per_job": calls_per_job,
            "calls_per_minute": calls_per_minute,
            "worker_cpu_per_job": worker_cpu / n,
            "web_cpu_per_job": web_cpu / n if args.webhooks else None,
            "in_flight": in_flight,
            "lost": lost,
            "failed": failed,
            "duplicated": duplicated,
        }
        args.json.write_text(json.dumps(figures))
    if args.keep:
        print(f"\nlogs and database kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What finishing one clip costs: the CPU that bounds how fast Studio takes in finished jobs.

Run from anywhere: `.venv/bin/python bench/finish.py [--jobs 100]`. In this one process, on a
throwaway SQLite database and media folder, with the provider emulator in a thread: N fal
text-to-video jobs (4 s, 720p, no audio: the emulator serves the same MP4 for each) are
submitted and found done, then `jobs.finish` runs for each in turn, as a worker would. It
prints CPU milliseconds per clip (user + system, this process, the emulator's serving of the
download included), how much of that is `video.probe_with_poster`, and the most clips two
cores could finish a second at that cost with nothing else to do: a burst of jobs done at the
provider faster than that can only queue (bench/engine.py measures the engine around it).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator import Emulator  # noqa: E402  (no Django in it: safe before setup)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="clips to finish (default 100)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="studio-bench-finish-"))
    emulator = Emulator(latency=0).start()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"sqlite:///{work / 'studio.sqlite3'}",
            "MEDIA_ROOT": str(work / "media"),
            "FAL_KEY": "bench",
            **emulator.settings(),
        }
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from studio import jobs, video
    from studio.models import Clip, Job, Quota
    from studio.options import ClipOptions
    from studio.providers.registry import get_provider

    try:
        call_command("migrate", verbosity=0)
        creator = get_user_model().objects.create_user("bench", password=secrets.token_hex(8))
        Quota.objects.create(
            creator=creator,
            monthly_budget=Decimal("100000"),
            monthly_seconds=args.jobs * 4,
            concurrent_jobs=args.jobs,
        )
        clip = ClipOptions(
            prompt="", mode="text", duration=4, resolution="720p", aspect="16:9", audio=False
        )
        made = jobs.create_jobs(
            creator=creator,
            provider="fal",
            batch=[clip.replace(prompt=f"Slow push in, clip {i}") for i in range(args.jobs)],
        )
        for job in made:
            jobs.submit(job.pk)
        for job in Job.objects.filter(pk__in=[job.pk for job in made]):
            jobs.refresh_status(job)  # done: queues its finish_job task, which no worker runs here
        ready = Job.objects.filter(status=Job.Status.FINISHING).count()
        assert ready == args.jobs, f"only {ready} of {args.jobs} jobs were found done"

        # The media part alone, on the same file as every finish reads.
        sample = work / "sample.mp4"
        first = Job.objects.get(pk=made[0].pk)
        get_provider("fal").fetch(jobs.handle_for(first), first.result_url, sample)
        started = cpu()
        for _ in range(args.jobs):
            video.probe_with_poster(sample)
        media = (cpu() - started) / args.jobs

        started, wall = cpu(), time.perf_counter()
        for job in made:
            jobs.finish(job.pk)
        per_clip = (cpu() - started) / args.jobs
        wall = (time.perf_counter() - wall) / args.jobs
        assert Clip.objects.count() == args.jobs, "not every job was finished"
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(f"Finishing {args.jobs} clips (fal emulated, 4 s 720p text to video), one process")
    print(f"(load average {load[0]:.2f} / {load[1]:.2f}, 1 / 5 min)")
    print(f"CPU per clip            {per_clip * 1000:6.1f} ms   (wall {wall * 1000:.1f} ms)")
    print(f"  of which probe+poster {media * 1000:6.1f} ms")
    rest = (per_clip - media) * 1000
    print(f"  the rest              {rest:6.1f} ms   (download, storage, database)")
    print(f"two cores at that cost  {2 / per_clip:6.0f} clips a second, at most")


if __name__ == "__main__":
    main()

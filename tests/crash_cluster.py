"""`manage.py qcluster` as the crash suite (tests/test_crash.py) runs it: the product's worker,
unchanged, plus holds that park a step at a point too brief to hit from outside.

A job whose prompt says `[hold:STAGE]` stops at that point of its step the first time it gets
there and sleeps until the test kills the cluster. A marker file in STUDIO_CRASH_HOLDS
(`job-<id>-<stage>`) tells the test it got there, and keeps the next cluster from stopping
again. Stages:

- `submit`: the local renderer has taken the job (its render is queued); the answer is not
  yet recorded, so the job is still *submitting*;
- `render`: the local render is half-way through;
- `poster`: the MP4 is in storage under its final name, the poster is not;
- `discard`: the job has succeeded (committed); the provider's copy is not yet discarded;
- `handover`: the job ahead of this one (waiting for a running slot) has ended and freed its
  slot (committed); this job, next in line, has not been admitted to it yet;
- `admitted`: this job has been admitted to a slot (committed, now *queued*); its submit task
  is not queued yet;
- `upload` (S3 storage only): the MP4's multipart upload is open and its first part half
  read, so the object store holds an unfinished upload and no object.

Every local render that starts is logged as a line `<job id>` in `renders.log` there.

Run as `python tests/crash_cluster.py` from the project folder, with the environment
`manage.py qcluster` would have.
"""

import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOLD_SECONDS = 3600

log = logging.getLogger("studio.crash")


def holds_dir() -> Path:
    return Path(os.environ["STUDIO_CRASH_HOLDS"])


def job_id(reference: str) -> int:
    return int(reference.rsplit("-", 1)[1])  # "studio-job-12"


def hold(stage: str, job: int, prompt: str) -> None:
    """Stop here (until killed) if the job asks for it and has not stopped here before."""
    if f"[hold:{stage}]" not in prompt:
        return
    try:
        os.close(os.open(holds_dir() / f"job-{job}-{stage}", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return  # held here once already, by a cluster since killed
    log.warning("job %s held at %s", job, stage)
    time.sleep(HOLD_SECONDS)


def upload_until_held(name: str, path: Path, job: int, prompt: str) -> None:
    """Start the MP4's upload as a multipart one (as boto3 does for files over 8 MB) and
    hold half-way through reading its first part."""
    from boto3.s3.transfer import TransferConfig
    from django.core.files.storage import default_storage

    class HalfThenHold:
        def __init__(self, f):
            self.f, self.given = f, 0
            self.half = path.stat().st_size // 2

        def read(self, size=-1):
            if self.given >= self.half:
                hold("upload", job, prompt)
            want = self.half - self.given
            data = self.f.read(want if size < 0 else min(size, want))
            self.given += len(data)
            return data

    with open(path, "rb") as f:
        config = TransferConfig(multipart_threshold=1, max_concurrency=1, use_threads=False)
        default_storage.bucket.Object(name).upload_fileobj(HalfThenHold(f), Config=config)


def install() -> None:
    from studio import jobs, quotas
    from studio.models import Job, LocalRender
    from studio.providers.local import client as local
    from studio.providers.local import renderer, worker

    submit = local.LocalProvider.submit

    def held_submit(self, request):
        handle = submit(self, request)
        hold("submit", job_id(request.reference), request.options.prompt)
        return handle

    render = worker.render
    rendering: dict[str, object] = {}

    def logged_render(render_id):
        row = LocalRender.objects.filter(pk=render_id).first()
        if row is not None:
            rendering.update(job=job_id(row.client_reference), prompt=row.spec["options"]["prompt"])
            with open(holds_dir() / "renders.log", "a") as f:
                f.write(f"{rendering['job']}\n")
        try:
            return render(render_id)
        finally:
            rendering.clear()

    render_clip = renderer.render_clip

    def held_render_clip(first, last, spec, out, on_progress=None):
        def progress(fraction):
            if on_progress is not None:
                on_progress(fraction)
            if fraction >= 0.5 and rendering:
                hold("render", rendering["job"], rendering["prompt"])

        return render_clip(first, last, spec, out, on_progress=progress)

    replace = jobs.replace_file

    def held_replace(name, content):
        if not name.startswith("clips/"):  # a sequence's film
            return replace(name, content)
        job = int(Path(name).stem.removeprefix("job-").removesuffix("-last"))
        prompt = Job.objects.get(pk=job).prompt
        if name.endswith(".jpg") and not name.endswith("-last.jpg"):
            hold("poster", job, prompt)
        elif "[hold:upload]" in prompt and not (holds_dir() / f"job-{job}-upload").exists():
            upload_until_held(name, content, job, prompt)
        return replace(name, content)

    discard = local.LocalProvider.discard

    def held_discard(self, handle):
        row = LocalRender.objects.filter(pk=handle.provider_job_id).first()
        if row is not None:
            hold("discard", job_id(row.client_reference), row.spec["options"]["prompt"])
        return discard(self, handle)

    hand_over = quotas._hand_over

    def held_hand_over(creator_id):
        following = Job.objects.waiting().filter(creator_id=creator_id).first()
        if following is not None:
            hold("handover", following.pk, following.prompt)
        return hand_over(creator_id)

    queue_submit = quotas._queue_submit

    def held_queue_submit(job_id):
        hold("admitted", job_id, Job.objects.get(pk=job_id).prompt)
        return queue_submit(job_id)

    local.LocalProvider.submit = held_submit
    quotas._hand_over = held_hand_over
    quotas._queue_submit = held_queue_submit
    worker.render = logged_render
    renderer.render_clip = held_render_clip
    jobs.replace_file = held_replace
    local.LocalProvider.discard = held_discard


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    install()
    from django.core.management import execute_from_command_line

    execute_from_command_line([str(ROOT / "manage.py"), "qcluster"])


if __name__ == "__main__":
    main()

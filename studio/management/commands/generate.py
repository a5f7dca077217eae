"""Submit a clip from the command line through the same form and engine as the web page."""

import json
import os
import time
from contextlib import ExitStack
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studio.models import Job
from studio.options import STILL_ROLES
from studio.pricing import CENT
from studio.web.forms import JobForm

INVALID = 2


class Command(BaseCommand):
    help = "Generate a clip from an image (or from text alone) and optionally wait for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "image", nargs="?", help="the still to animate (omit for text-to-video)"
        )
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--negative-prompt", default="")
        parser.add_argument("--mode", choices=[m.value for m in Job.Mode], default=None)
        parser.add_argument("--duration", default="8")
        parser.add_argument("--resolution", default="720p")
        parser.add_argument("--aspect", default="auto")
        parser.add_argument("--no-audio", action="store_true")
        parser.add_argument(
            "--framing", default="crop", help="crop (centred) or pad, when the image does not fit"
        )
        parser.add_argument("--seed", default="")
        parser.add_argument("--last-frame")
        parser.add_argument("--provider", default=settings.STUDIO_PROVIDER)
        parser.add_argument("--user", default=settings.STUDIO_DEMO_USERNAME)
        parser.add_argument(
            "--wait", action="store_true", help="wait for a running worker to finish"
        )
        parser.add_argument(
            "--timeout", type=float, default=900, help="seconds --wait gives up after"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(
                f"There is no user called {opts['user']!r}. Create the demo account with "
                "`python manage.py demo_account`, or pass --user.",
                returncode=INVALID,
            )
        mode = opts["mode"] or (
            Job.Mode.FIRST_LAST
            if opts["last_frame"]
            else Job.Mode.IMAGE
            if opts["image"]
            else Job.Mode.TEXT
        )
        # The options go through the create form under their own names, exactly as the page
        # sends them, so the CLI gets the same checks and the same words.
        data = {
            name: value
            for name, value in opts.items()
            if name in JobForm.base_fields and name not in STILL_ROLES and value is not None
        }
        data["mode"] = mode
        if not opts["no_audio"]:
            data["audio"] = "on"
        files = {}
        try:
            with ExitStack() as stack:
                for field, path in (("image", opts["image"]), ("last_frame", opts["last_frame"])):
                    if path:
                        f = stack.enter_context(open(path, "rb"))
                        files[field] = UploadedFile(
                            f, name=os.path.basename(path), size=os.path.getsize(path)
                        )
                form = JobForm(data, files, creator=user)
                valid = form.is_valid()
        except OSError as exc:
            raise CommandError(
                f"Cannot read {exc.filename}: {exc.strerror}.", returncode=INVALID
            ) from None
        if not valid:
            lines = [
                f"{form.fields[name].label or name if name in form.fields else 'error'}: {message}"
                for name, messages in form.errors.items()
                for message in messages
            ]
            raise CommandError("\n".join(lines), returncode=INVALID)
        made = form.save()
        if not made:
            raise CommandError(
                " ".join(str(e) for e in form.non_field_errors()), returncode=INVALID
            )
        job = made[0]
        for note in form.warnings:
            self.stderr.write(f"warning: {note}")
        if opts["wait"]:
            job = self._wait(job, opts["timeout"])
        self.stdout.write(json.dumps(self._summary(job)))
        if opts["wait"] and job.status != Job.Status.SUCCEEDED:
            raise CommandError(job.error or f"The job ended {job.status}.", returncode=1)

    def _wait(self, job: Job, timeout: float) -> Job:
        deadline = time.monotonic() + timeout
        while not job.is_terminal:
            if time.monotonic() > deadline:
                self.stdout.write(json.dumps(self._summary(job)))
                raise CommandError(
                    f"Job {job.pk} is still {job.status} after {timeout:.0f} s. Is a worker "
                    "running (`python manage.py qcluster`)?",
                    returncode=1,
                )
            time.sleep(0.5)
            job.refresh_from_db()
        return job

    def _summary(self, job: Job) -> dict[str, Any]:
        clip = getattr(job, "clip", None) if job.status == Job.Status.SUCCEEDED else None
        clip_path = None
        if clip is not None:
            try:
                clip_path = default_storage.path(clip.file.name)
            except NotImplementedError:  # storage without local paths: give its name
                clip_path = clip.file.name
        return {
            "job": job.pk,
            "status": job.status,
            "error": job.error or None,
            "clip": clip_path,
            "cost_usd": str(job.estimated_cost.quantize(CENT)),
            "provider": job.provider,
            "duration": clip.duration if clip else None,
            "width": clip.width if clip else None,
            "height": clip.height if clip else None,
            "has_audio": clip.has_audio if clip else None,
        }

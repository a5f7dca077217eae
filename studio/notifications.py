"""E-mail when a clip, or a batch, is ready, for the creators who asked (Preferences).

When a job ends (succeeded, failed or cancelled), the engine calls `job_ended` in the
transaction that ends it; once that commits, a django-q2 task is queued for creators who
want e-mail, so a slow mail server never delays the engine, and a lost task loses only the
e-mail, never a job. The task (`send_for`) sends one e-mail about the job, or, for a job of
a batch, about the whole batch once its last job has ended (each job's task looks; the
last to end always sees them all ended). Each e-mail is recorded (Notification, unique on
what it is about) before it is sent, so it goes at most once however often its tasks run;
one whose sending fails is forgotten again so that the task's retry may send it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from studio.models import Job, Notification, Preferences
from studio.progress import CHARGE_WORDS

log = logging.getLogger(__name__)

ENDED = {
    Job.Status.SUCCEEDED: "ready",
    Job.Status.FAILED: "failed",
    Job.Status.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class Message:
    about: str  # Notification.about
    subject: str
    body: str


def wants_email(creator_id: int) -> bool:
    return Preferences.objects.filter(creator_id=creator_id, email_when_ready=True).exists()


def job_ended(job: Job) -> None:
    """The job has just ended (call it in the transaction that ends it): once that commits,
    queue its e-mail where the creator wants one."""
    job_id, creator_id = job.pk, job.creator_id
    transaction.on_commit(lambda: _queue_if_wanted(job_id, creator_id))


def _queue_if_wanted(job_id: int, creator_id: int) -> None:
    if wants_email(creator_id):
        async_task("studio.tasks.notify_job_ended", job_id)


def send_for(job_id: int) -> bool:
    """Send the e-mail the job's end calls for, at most once; whether this call sent it."""
    job = Job.objects.select_related("creator").get(pk=job_id)
    creator = job.creator
    if not job.is_terminal or not creator.email or not wants_email(creator.pk):
        return False
    if job.batch:
        batch = list(Job.objects.filter(creator=creator, batch=job.batch).order_by("pk"))
        if not all(each.is_terminal for each in batch):
            return False  # the batch's last job to end sends it
        message = batch_message(batch)
    else:
        message = job_message(job)
    try:
        with transaction.atomic():
            note = Notification.objects.create(
                creator=creator, about=message.about, job=job, to=creator.email,
                subject=message.subject[:200],
            )  # fmt: skip
    except IntegrityError:
        return False  # sent already (or being sent) by another run of a task
    try:
        send_mail(message.subject, message.body, None, [creator.email])
    except Exception:
        # Not sent: forget it, so that q2's retry of this task may send it.
        note.delete()
        log.warning("e-mail about %s to creator %s failed; retried", message.about, creator.pk)
        raise
    Notification.objects.filter(pk=note.pk).update(sent_at=timezone.now())
    return True


def job_message(job: Job) -> Message:
    ended = ENDED[Job.Status(job.status)]
    subject = {
        "ready": "Your clip is ready",
        "failed": "Your clip could not be made",
        "cancelled": "Your clip was cancelled",
    }[ended]
    lines = [
        f"{_clip_line(job)}.",
        "",
        f"Prompt: {job.prompt}",
        f"Made by {job.provider_label}, {job.duration} s at {job.resolution}.",
        _charge(job),
        "",
        f"See it: {_link(reverse('job', args=[job.pk]))}",
    ]
    if job.status == Job.Status.FAILED and job.error:
        lines[1:1] = ["", job.error]
    return Message(about=f"job-{job.pk}", subject=f"{subject} · Studio", body=_body(lines))


def batch_message(batch: list[Job]) -> Message:
    ended = [ENDED[Job.Status(job.status)] for job in batch]
    counts = {word: ended.count(word) for word in ENDED.values()}
    if counts["ready"] == len(batch):
        subject = f"Your {len(batch)} clips are ready"
    else:
        said = ", ".join(f"{n} {word}" for word, n in counts.items() if n)
        subject = f"Your batch of {len(batch)} clips is done: {said}"
    lines = [
        f"{subject}.",
        "",
        *(f"- {_clip_line(job)}: {job.prompt}" for job in batch),
        "",
        f"See them: {_link(reverse('batch', args=[batch[0].batch]))}",
    ]
    return Message(
        about=f"batch-{batch[0].batch}", subject=f"{subject} · Studio", body=_body(lines)
    )


def _clip_line(job: Job) -> str:
    """How the job ended, in a line: Job 12 (4 s, seed 7) is ready."""
    seed = f", seed {job.seed}" if job.seed is not None else ""
    verb = {"ready": "is ready", "failed": "failed", "cancelled": "was cancelled"}
    return f"Job {job.pk} ({job.duration} s{seed}) {verb[ENDED[Job.Status(job.status)]]}"


def _charge(job: Job) -> str:
    if not job.estimated_cost:
        return "Free."
    words = CHARGE_WORDS.get(Job.Charge(job.charge), "") if job.charge else ""
    return f"${job.estimated_cost:.2f}, {words}." if words else f"${job.estimated_cost:.2f}."


def _link(path: str) -> str:
    """The page's address: STUDIO_PUBLIC_URL's when set, else its path on this Studio."""
    return f"{settings.STUDIO_PUBLIC_URL}{path}"


def _body(lines: list[str]) -> str:
    footer = ["", "You get these e-mails because you asked for them in Studio's settings."]
    return "\n".join([*lines, *footer]) + "\n"

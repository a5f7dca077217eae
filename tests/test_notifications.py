"""E-mail when a clip or a batch is ready: only for creators who asked, from a task queued
once the job's end commits, and once per job or batch however often its tasks run."""

import io
import threading

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from studio import images, jobs, notifications, quotas, tasks
from studio.models import Job, Notification, Preferences
from studio.providers.base import Billing
from studio.providers.local import worker
from tests.factories import create_job, create_jobs, make_creator, photo


def fal_job(creator, **fields) -> Job:
    """A $0.40 job (fal, 8 s, 720p, audio) sent nowhere."""
    return create_job(
        creator=creator, provider="fal", mode="text", prompt="rain over the harbour",
        duration=8, resolution="720p", aspect="16:9", audio=True, **fields,
    )  # fmt: skip


def succeed(job: Job) -> None:
    with transaction.atomic():
        assert job.move(Job.NOT_SENT, Job.Status.SUCCEEDED, finished_at=timezone.now())
        quotas.settle(job)
        notifications.job_ended(job)


def fail(job: Job) -> None:
    jobs.fail(
        job, Job.NOT_SENT, "The provider said no.", billing=Billing.NOT_BILLED, kind="provider"
    )


def asks_for_email(creator) -> None:
    creator.email = f"{creator.username}@example.com"
    creator.save()
    Preferences.objects.create(creator=creator, email_when_ready=True)


@pytest.fixture
def queued(monkeypatch):
    """The e-mail tasks queued (instead of q2's queue)."""
    found = []
    monkeypatch.setattr(notifications, "async_task", lambda *call: found.append(call))
    return found


class BrokenBackend(BaseEmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("the mail server is down")


# ---------------------------------------------------------------- who is told, and when


def test_nothing_is_queued_for_a_creator_who_did_not_ask(
    creator, queued, mailoutbox, django_capture_on_commit_callbacks
):
    creator.email = "ana@example.com"
    creator.save()
    with django_capture_on_commit_callbacks(execute=True):
        jobs.cancel(fal_job(creator))
    assert queued == [] and mailoutbox == []


def test_a_job_that_ends_queues_its_email_once_the_end_commits(
    creator, queued, django_capture_on_commit_callbacks
):
    asks_for_email(creator)
    job = fal_job(creator)
    with django_capture_on_commit_callbacks() as on_commit:
        jobs.cancel(job)
    assert queued == []  # not before the end is committed
    for callback in on_commit:
        callback()
    assert queued == [("studio.tasks.notify_job_ended", job.pk)]


def test_a_clip_made_by_the_engine_is_emailed_once_however_often_the_task_runs(
    creator, mailoutbox, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.STUDIO_PUBLIC_URL = "https://studio.example.com"
    asks_for_email(creator)
    data = photo(1600, 900)
    still = images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))
    job = create_job(
        creator=creator, provider="local", mode="image", prompt="Slow pan left", duration=4,
        resolution="720p", aspect="auto", audio=False, seed=7, image=still,
    )  # fmt: skip
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)
    jobs.finish(job.pk)
    tasks.notify_job_ended(job.pk)
    tasks.notify_job_ended(job.pk)  # q2 delivered it twice
    (sent,) = mailoutbox
    assert (sent.subject, sent.to) == ("Your clip is ready · Studio", ["ana@example.com"])
    assert f"Job {job.pk} (4 s, seed 7) is ready." in sent.body
    assert f"See it: https://studio.example.com/jobs/{job.pk}/" in sent.body
    assert "Made by Local renderer, 4 s at 720p." in sent.body and "Free." in sent.body
    note = Notification.objects.get()
    assert (note.about, note.job, note.to) == (f"job-{job.pk}", job, "ana@example.com")
    assert note.sent_at is not None


def test_the_email_goes_out_through_a_queued_task(
    creator, mailoutbox, tasks_inline, django_capture_on_commit_callbacks
):
    asks_for_email(creator)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.cancel(fal_job(creator))
    assert [m.subject for m in mailoutbox] == ["Your clip was cancelled · Studio"]


def test_a_failed_clip_is_emailed_with_what_went_wrong_and_the_charge(creator, mailoutbox):
    asks_for_email(creator)
    job = fal_job(creator)
    fail(job)
    assert notifications.send_for(job.pk)
    (sent,) = mailoutbox
    assert sent.subject == "Your clip could not be made · Studio"
    assert "The provider said no. You were not charged." in sent.body
    assert "$0.40, not charged." in sent.body
    assert f"See it: /jobs/{job.pk}/" in sent.body  # no STUDIO_PUBLIC_URL: the page's path


def test_a_batch_is_emailed_once_when_its_last_clip_ends(creator, mailoutbox):
    asks_for_email(creator)
    batch = create_jobs(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", audio=True,
        variations=[{"seed": n} for n in range(4)],
    )  # fmt: skip
    assert [job.status for job in batch] == ["queued"] * 3 + ["waiting"]
    succeed(batch[0])
    fail(batch[1])
    jobs.cancel(batch[2])
    for job in batch[:3]:
        assert not notifications.send_for(job.pk)  # one is still to end
    succeed(batch[3])
    for job in [*batch, *batch]:
        notifications.send_for(job.pk)
    (sent,) = mailoutbox
    assert sent.subject == (
        "Your batch of 4 clips is done: 2 ready, 1 failed, 1 cancelled · Studio"
    )
    assert f"Job {batch[2].pk} (8 s, seed 2) was cancelled: rain" in sent.body
    assert f"See them: /batches/{batch[0].batch}/" in sent.body
    assert Notification.objects.get().about == f"batch-{batch[0].batch}"


def test_a_batch_all_made_says_so(creator, mailoutbox):
    asks_for_email(creator)
    batch = create_jobs(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", audio=True, variations=[{"seed": 1}, {"seed": 2}],
    )  # fmt: skip
    for job in batch:
        succeed(job)
    notifications.send_for(batch[1].pk)
    assert [m.subject for m in mailoutbox] == ["Your 2 clips are ready · Studio"]


def test_no_email_without_an_address_or_before_the_job_ends(creator, mailoutbox):
    Preferences.objects.create(creator=creator, email_when_ready=True)
    job = fal_job(creator)
    assert not notifications.send_for(job.pk)  # still queued
    jobs.cancel(job)
    assert not notifications.send_for(job.pk)  # no address to send to
    assert mailoutbox == [] and not Notification.objects.exists()


def test_an_email_the_server_refused_is_forgotten_so_the_retry_sends_it(
    creator, mailoutbox, settings
):
    asks_for_email(creator)
    job = fal_job(creator)
    jobs.cancel(job)
    settings.EMAIL_BACKEND = "tests.test_notifications.BrokenBackend"
    with pytest.raises(ConnectionRefusedError):
        tasks.notify_job_ended(job.pk)  # q2 records the failure and retries
    assert not Notification.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tasks.notify_job_ended(job.pk)
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_task_run_twice_at_once_sends_one_email():
    creator = make_creator("twice")
    asks_for_email(creator)
    job = fal_job(creator)
    jobs.cancel(job)
    start = threading.Barrier(2)
    sent = []

    def run() -> None:
        try:
            start.wait()
            sent.append(notifications.send_for(job.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(sent) == [False, True]
    assert len(mail.outbox) == 1
    assert Notification.objects.count() == 1


# ---------------------------------------------------------------- the preference


URL = reverse("notification_settings")


def test_the_preference_needs_signing_in(client):
    assert client.get(URL).status_code == 302


def test_a_creator_asks_for_email_and_gives_their_address(signed_in, creator):
    page = signed_in.get(URL).content.decode()
    assert "E-mail me when a clip or batch is ready" in page
    sent = signed_in.post(URL, {"email_when_ready": "on", "email": "ana@example.com"}, follow=True)
    assert sent.redirect_chain == [(URL, 302)]
    assert "You will get an e-mail when a clip or batch is ready." in sent.content.decode()
    creator.refresh_from_db()
    assert creator.email == "ana@example.com"
    assert Preferences.objects.get(creator=creator).email_when_ready
    assert 'id="id_email_when_ready" checked' in signed_in.get(URL).content.decode()
    signed_in.post(URL, {})  # unticked: no more e-mails, the address kept
    creator.refresh_from_db()
    assert not Preferences.objects.get(creator=creator).email_when_ready
    assert creator.email == "ana@example.com"


def test_asking_for_email_without_an_address_is_a_form_error(signed_in, creator):
    sent = signed_in.post(URL, {"email_when_ready": "on"})
    assert sent.status_code == 200
    assert "Give the address to send them to." in sent.content.decode()
    assert not Preferences.objects.exists()


def test_the_form_as_a_partial_through_htmx_and_back_to_the_page_it_was_on(signed_in, creator):
    creator.email = "ana@example.com"
    creator.save()
    swapped = signed_in.post(URL, {"email_when_ready": "on"}, headers={"HX-Request": "true"})
    body = swapped.content.decode()
    assert swapped.status_code == 200 and "<html" not in body
    assert 'id="notifications-form"' in body and "You will get an e-mail" in body
    back = signed_in.post(URL, {"email_when_ready": "on", "next": reverse("library")})
    assert back["Location"] == reverse("library")
    elsewhere = signed_in.post(URL, {"next": "https://evil.example/"})
    assert elsewhere["Location"] == URL

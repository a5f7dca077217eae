from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.urls import reverse

from studio import jobs
from studio.models import Job


def test_admin_cancel_action_goes_through_the_job_engine(client, creator):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    queued = jobs.create_job(
        creator=creator, provider="local", mode="text", prompt="rain", duration=4,
        resolution="720p", aspect="16:9", audio=False,
    )  # fmt: skip
    done = jobs.create_job(
        creator=creator, provider="local", mode="text", prompt="sun", duration=4,
        resolution="720p", aspect="16:9", audio=False,
    )  # fmt: skip
    done.move([Job.Status.QUEUED], Job.Status.SUCCEEDED)
    response = client.post(
        reverse("admin:studio_job_changelist"),
        {"action": "cancel_jobs", helpers.ACTION_CHECKBOX_NAME: [queued.pk, done.pk]},
        follow=True,
    )
    queued.refresh_from_db()
    done.refresh_from_db()
    assert (queued.status, done.status) == (Job.Status.CANCELLED, Job.Status.SUCCEEDED)
    assert b"Cancelled 1 job(s)." in response.content
    assert b"1 job(s) had already finished" in response.content


def test_jobs_cannot_be_edited_by_hand_in_the_admin(client, creator):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    job = jobs.create_job(
        creator=creator, provider="local", mode="text", prompt="rain", duration=4,
        resolution="720p", aspect="16:9", audio=False,
    )  # fmt: skip
    url = reverse("admin:studio_job_change", args=[job.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"status": "succeeded", "prompt": "changed"})
    job.refresh_from_db()
    assert (job.status, job.prompt) == (Job.Status.QUEUED, "rain")

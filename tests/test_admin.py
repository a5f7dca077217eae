from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.urls import reverse

from studio.models import Job
from tests.factories import text_job


def test_admin_cancel_action_goes_through_the_job_engine(client, creator):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    queued = text_job(creator, "rain")
    done = text_job(creator, "sun")
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
    job = text_job(creator, "rain")
    url = reverse("admin:studio_job_change", args=[job.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"status": "succeeded", "prompt": "changed"})
    job.refresh_from_db()
    assert (job.status, job.prompt) == (Job.Status.QUEUED, "rain")

"""Oxen.ai through the real engine, over loopback HTTP to the emulator."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from studio import jobs
from studio.models import Job
from studio.options import ClipOptions
from studio.providers.base import GenerationRequest, Handle, InvalidRequestError, NotFoundError
from studio.providers.oxen.client import OxenProvider
from tests.emulator import (
    finished,
    new_job,
    still,
    submitted,
    use_emulator,
)


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


def test_without_a_key_oxen_says_how_to_enable_it(settings):
    settings.OXEN_API_KEY = ""
    assert OxenProvider().missing_setup() == "Set OXEN_API_KEY to use Oxen.ai."
    assert OxenProvider().unavailable_reason() == "not set up on this Studio"


def test_the_request_is_oxen_shaped(emulator, creator):
    image = still(creator)
    job = submitted(new_job(creator, "oxen", image=image, seed=7, duration=6))
    assert job.status == Job.Status.SUBMITTED, job.error

    (submit,) = emulator.requests_to("oxen", "POST")
    assert submit.path == "/oxen/api/ai/queue"
    assert submit.headers["authorization"] == "Bearer test-oxen-key"
    body = submit.json
    prefix = "data:image/jpeg;base64,"
    assert base64.b64decode(body["input_image"][len(prefix) :]) == image.file.open().read()
    assert body == {
        "model": "google-veo-3-1-lite",
        "prompt": "Slow pan left over the hills",
        "duration": 6,  # an integer, unlike fal's "6s"
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "seed": 7,
        "num_generations": 1,
        "input_image": body["input_image"],
    }


def test_a_job_becomes_a_stored_clip(emulator, creator):
    job = finished(new_job(creator, "oxen"))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.clip.width, job.clip.height) == (1280, 720)
    polls = [r for r in emulator.requests_to("oxen", "GET") if "/api/ai/queue/" in r.path]
    assert polls[0].path == f"/oxen/api/ai/queue/{job.provider_job_id}"


def test_a_bad_option_fails_at_run_time_with_oxens_own_message(emulator, creator):
    # 1080p at 4 s: pre-flight warns, but if it is sent anyway Oxen only says so once it runs.
    job = submitted(new_job(creator, "oxen", resolution="1080p", duration=4))
    assert job.status == Job.Status.SUBMITTED
    job = finished(job)
    assert job.status == Job.Status.FAILED
    assert job.error == (
        "Oxen.ai rejected the request: Getting model response error: 422 - 1080p requires an "
        "8 second duration. The provider may bill for this, so $0.40 counts as charged."
    )


def test_a_policy_failure_is_shown_verbatim(emulator, creator):
    job = finished(new_job(creator, "oxen", prompt="Pan left [fail:policy]"))
    assert job.status == Job.Status.FAILED
    assert "flagged by the provider's safety system" in job.error


def test_first_and_last_frame_is_refused_before_sending(emulator, creator):
    job = submitted(
        new_job(
            creator, "oxen", mode="first_last", last_frame=still(creator, 1600, 901), duration=8
        )
    )
    assert job.status == Job.Status.FAILED
    assert job.error == "Oxen.ai cannot make first-and-last-frame clips. You were not charged."
    assert not emulator.requests_to("oxen", "POST")


def test_cancel_deletes_the_generation(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator
):
    emulator.latency = 5
    job = submitted(new_job(creator, "oxen"))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.cancel(job)
    (delete,) = emulator.requests_to("oxen", "DELETE")
    assert delete.path == f"/oxen/api/ai/queue/{job.provider_job_id}"
    result = OxenProvider().poll(Handle(job.provider_job_id))
    assert result.phase == "cancelled"


def test_an_unknown_generation_is_not_found(emulator):
    with pytest.raises(NotFoundError, match="no longer knows this job: Generation not found"):
        OxenProvider().poll(Handle("no-such-generation"))


def test_rate_limited_poll_waits_for_retry_after(emulator, creator):
    job = submitted(new_job(creator, "oxen", prompt="Pan left [fail:rate_limit]"))
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status in Job.AT_PROVIDER
    assert job.next_check_at >= before + timedelta(seconds=emulator.retry_after)


def test_an_expired_presigned_link_fails_the_job(emulator, creator):
    job = finished(new_job(creator, "oxen", prompt="Pan left [fail:expired]"))
    assert job.status == Job.Status.FAILED
    assert "its link has expired" in job.error


def test_insufficient_credits_is_an_account_problem(emulator, settings, creator):
    settings.OXEN_API_KEY = "no-credit"
    job = submitted(new_job(creator, "oxen"))
    assert job.status == Job.Status.FAILED
    assert "Insufficient credits" in job.error and "OXEN_API_KEY" in job.error


def test_an_image_mode_request_without_an_image_is_refused(emulator):
    provider = OxenProvider()
    request = GenerationRequest("ref", ClipOptions(prompt="p", duration=4, aspect="16:9"))
    with pytest.raises(InvalidRequestError):
        provider.submit(request)

"""AI/ML API through the real engine, over loopback HTTP to the emulator."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from studio import jobs
from studio.models import Job
from studio.providers.aimlapi.client import AimlapiProvider
from studio.providers.base import Billing
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


def test_without_a_key_aimlapi_says_how_to_enable_it(settings):
    settings.AIMLAPI_KEY = ""
    assert AimlapiProvider().missing_setup() == "Set AIMLAPI_KEY to use AI/ML API."
    assert AimlapiProvider().unavailable_reason() == "not set up on this Studio"


def test_the_request_follows_the_documented_models_schema(emulator, creator):
    image = still(creator)
    job = submitted(new_job(creator, "aimlapi", image=image, audio=False, duration=6))
    assert job.status == Job.Status.SUBMITTED, job.error

    (submit,) = emulator.requests_to("aimlapi", "POST")
    assert submit.path == "/aimlapi/v2/video/generations"
    assert submit.headers["authorization"] == "Bearer test-aimlapi-key"
    body = submit.json
    prefix = "data:image/jpeg;base64,"
    assert body["image_url"].startswith(prefix)
    assert base64.b64decode(body["image_url"][len(prefix) :]) == image.file.open().read()
    assert body == {
        "model": "google/veo-3.1-lite-generate-001",
        "prompt": "Slow pan left over the hills",
        "aspect_ratio": "16:9",
        "resolution": "720P",
        "duration": 6,  # an int
        "generate_audio": False,
        "image_url": body["image_url"],
    }


def test_the_catalogue_alias_gets_the_same_spelling(emulator, settings, creator):
    settings.AIMLAPI_MODEL = "veo-3.1-lite-generate-001"
    job = submitted(new_job(creator, "aimlapi", resolution="1080p", duration=8))
    assert job.status == Job.Status.SUBMITTED, job.error
    body = emulator.requests_to("aimlapi", "POST")[0].json
    assert (body["model"], body["resolution"]) == ("veo-3.1-lite-generate-001", "1080P")


def test_a_wrong_spelling_is_rejected_naming_the_field(emulator, settings, creator):
    settings.AIMLAPI_RESOLUTION_CASE = "lower"  # not what the -001 model takes
    job = submitted(new_job(creator, "aimlapi"))
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("AI/ML API rejected the request: Body validation error")
    assert "resolution: Invalid enum value" in job.error


def test_first_and_last_frames_use_last_image_url(emulator, creator):
    last = still(creator, 1600, 901)
    job = submitted(new_job(creator, "aimlapi", mode="first_last", last_frame=last, duration=8))
    assert job.status == Job.Status.SUBMITTED, job.error
    body = emulator.requests_to("aimlapi", "POST")[0].json
    assert body["last_image_url"].startswith("data:image/jpeg;base64,")


def test_a_job_becomes_a_stored_clip(emulator, creator):
    job = finished(new_job(creator, "aimlapi"))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.clip.width, job.clip.height) == (1280, 720)
    polls = [r for r in emulator.requests_to("aimlapi", "GET") if r.path.endswith("/generations")]
    assert polls[0].query == {"generation_id": [job.provider_job_id]}
    assert polls[0].headers["authorization"] == "Bearer test-aimlapi-key"
    (download,) = [r for r in emulator.requests_to("aimlapi", "GET") if r.path.endswith(".mp4")]
    assert "authorization" not in download.headers  # the key never goes to the CDN


def test_a_moderated_generation_fails_with_the_providers_words(emulator, creator):
    job = finished(new_job(creator, "aimlapi", prompt="Pan left [fail:policy]"))
    assert job.status == Job.Status.FAILED
    assert job.error == (
        "AI/ML API refused this request under its content policy: The generated video was "
        "blocked by the provider's safety filters. You were not charged."
    )


def test_too_many_requests_waits_for_retry_after(emulator, creator):
    job = submitted(new_job(creator, "aimlapi", prompt="Pan left [fail:rate_limit]"))
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status in Job.AT_PROVIDER
    assert job.next_check_at >= before + timedelta(seconds=emulator.retry_after)


def test_out_of_credits_is_an_account_problem(emulator, settings, creator):
    settings.AIMLAPI_KEY = "no-credit"
    job = submitted(new_job(creator, "aimlapi"))
    assert job.status == Job.Status.FAILED
    assert "You've run out of credits" in job.error


def test_service_unavailable_at_submit_is_retried(emulator, creator):
    job = submitted(new_job(creator, "aimlapi", prompt="Pan left [fail:server_error]"))
    assert (job.status, job.error) == (
        Job.Status.QUEUED,
        "Retrying: AI/ML API had a server problem: Service unavailable.",
    )


def test_a_gone_result_fails_the_job(emulator, creator):
    job = finished(new_job(creator, "aimlapi", prompt="Pan left [fail:expired]"))
    assert job.status == Job.Status.FAILED
    assert "its link has expired" in job.error


@pytest.mark.parametrize(
    ("usage", "billing"),
    [
        ({"credits_used": 0}, Billing.NOT_BILLED),
        ({"credits_used": 3000}, Billing.BILLED),
        ({"usd_spent": 0.0, "credits_used": 3000}, Billing.NOT_BILLED),
        ({}, Billing.MAY_BE_BILLED),
    ],
)
def test_a_failed_generation_is_charged_as_its_usage_says(usage, billing):
    failure = {"status": "error", "error": {"name": "GenerationError", "message": "No."}}
    error = AimlapiProvider()._failure({**failure, "meta": {"usage": usage}})
    assert error.billing == billing


def test_a_generation_that_failed_upstream_reads_credits_used_and_is_not_charged(emulator, creator):
    job = finished(new_job(creator, "aimlapi", prompt="Pan left [fail:server_error@run]"))
    assert job.status == Job.Status.FAILED
    assert job.charge == Job.Charge.REFUNDED
    assert job.error.endswith("You were not charged.")

"""The Gemini API through the real engine, over loopback HTTP to the emulator."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from studio import health, jobs
from studio.models import Job
from studio.providers.gemini.client import GeminiProvider
from tests.emulator import finished, new_job, still, submitted, use_emulator


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


def test_without_a_key_gemini_says_how_to_enable_it(settings):
    settings.GEMINI_VEO_MODEL = "veo-3.1-lite-generate-001"
    settings.GEMINI_API_KEY = ""
    assert GeminiProvider().missing_setup() == "Set GEMINI_API_KEY to use the Gemini API."
    assert GeminiProvider().unavailable_reason() == "not set up on this Studio"


def test_the_request_has_the_image_inline_and_no_seed_or_audio_switch(emulator, creator):
    image = still(creator)
    job = submitted(
        new_job(creator, "gemini", image=image, seed=42, audio=False, negative_prompt="blur")
    )
    assert job.status == Job.Status.SUBMITTED, job.error

    (submit,) = emulator.requests_to("gemini", "POST")
    # The emulator serves Lite as the id Vertex AI has; Studio sends what GEMINI_VEO_MODEL says.
    assert submit.path == "/gemini/v1beta/models/veo-3.1-lite-generate-001:predictLongRunning"
    assert submit.headers["x-goog-api-key"] == "test-gemini-key"
    assert "authorization" not in submit.headers
    instance = submit.json["instances"][0]
    assert instance["prompt"] == "Slow pan left over the hills"
    assert instance["image"]["mimeType"] == "image/jpeg"
    assert base64.b64decode(instance["image"]["bytesBase64Encoded"]) == image.file.open().read()
    assert submit.json["parameters"] == {
        "sampleCount": 1,
        "durationSeconds": 4,  # an int
        "aspectRatio": "16:9",  # "auto" resolved from a landscape still
        "resolution": "720p",
        "personGeneration": "allow_adult",
        "negativePrompt": "blur",
    }
    assert job.provider_job_id.startswith("models/veo-3.1-lite-generate-001/operations/")


def test_a_portrait_still_with_auto_asks_for_9_16(emulator, creator):
    submitted(new_job(creator, "gemini", image=still(creator, 900, 1600)))
    (submit,) = emulator.requests_to("gemini", "POST")
    assert submit.json["parameters"]["aspectRatio"] == "9:16"


def test_first_and_last_frames_are_both_inline(emulator, creator):
    last = still(creator, 1600, 901)
    submitted(new_job(creator, "gemini", mode="first_last", last_frame=last, duration=8))
    instance = emulator.requests_to("gemini", "POST")[0].json["instances"][0]
    assert instance["lastFrame"]["mimeType"] == "image/jpeg"
    assert base64.b64decode(instance["lastFrame"]["bytesBase64Encoded"]) == last.file.open().read()


def test_a_job_becomes_a_stored_clip_downloaded_with_the_key(emulator, creator):
    job = finished(new_job(creator, "gemini"))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.clip.width, job.clip.height, job.clip.has_audio) == (1280, 720, True)
    polls = [r for r in emulator.requests_to("gemini", "GET") if "/operations/" in r.path]
    assert polls[0].path == f"/gemini/v1beta/{job.provider_job_id}"
    (download,) = [r for r in emulator.requests_to("gemini", "GET") if r.path.endswith(":download")]
    assert download.headers["x-goog-api-key"] == "test-gemini-key"


def test_a_text_job_sends_no_image(emulator, creator):
    submitted(new_job(creator, "gemini", mode="text", image=None))
    instance = emulator.requests_to("gemini", "POST")[0].json["instances"][0]
    assert instance == {"prompt": "Slow pan left over the hills"}


def test_safety_filtered_clip_fails_quoting_the_reasons_and_not_charged(emulator, creator):
    job = finished(new_job(creator, "gemini", prompt="Pan left [fail:policy]"))
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("Google's safety filters blocked this clip: We encountered")
    assert "you were not charged" in job.error


def test_resource_exhausted_waits_for_the_retry_delay(emulator, creator):
    job = submitted(new_job(creator, "gemini", prompt="Pan left [fail:rate_limit]"))
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status in Job.AT_PROVIDER
    assert job.next_check_at >= before + timedelta(seconds=emulator.retry_after)


def test_unavailable_at_submit_is_retried(emulator, creator):
    job = submitted(new_job(creator, "gemini", prompt="Pan left [fail:server_error]"))
    assert job.status == Job.Status.QUEUED
    assert job.error == (
        "Retrying: Gemini API had a server problem: The service is currently unavailable."
    )


def test_an_invalid_key_is_an_account_problem(emulator, settings, creator):
    settings.GEMINI_API_KEY = "invalid"
    job = submitted(new_job(creator, "gemini"))
    assert job.status == Job.Status.FAILED
    assert "API key not valid" in job.error and "GEMINI_API_KEY" in job.error


def test_an_unknown_model_is_reported_not_retried(emulator, settings, creator):
    settings.GEMINI_VEO_MODEL = "veo-3.1-lite-generate-009"  # never offered
    job = submitted(new_job(creator, "gemini"))
    assert job.status == Job.Status.FAILED
    assert "is not found for API version v1beta" in job.error
    assert (job.error_kind, job.charge) == (Job.ErrorKind.MODEL_UNAVAILABLE, Job.Charge.REFUNDED)


def test_an_expired_file_fails_the_job(emulator, creator):
    job = finished(new_job(creator, "gemini", prompt="Pan left [fail:expired]"))
    assert job.status == Job.Status.FAILED
    assert "its link has expired" in job.error


def test_a_failed_operation_is_final_and_not_charged(emulator, creator):
    job = finished(new_job(creator, "gemini", prompt="Pan left [fail:server_error@run]"))
    assert job.status == Job.Status.FAILED
    assert job.error == (
        "Gemini API failed to make this clip: Video generation failed (emulated). "
        "You were not charged."
    )


def test_by_default_gemini_is_not_offered_because_google_retired_lite_there(settings):
    settings.GEMINI_VEO_MODEL = ""
    settings.GEMINI_API_KEY = "a-key"
    assert GeminiProvider().unavailable_reason() == (
        "Gemini API no longer offers Veo 3.1 Lite; use Vertex AI."
    )


def test_a_retired_model_fails_the_job_not_charged_and_marks_gemini_unavailable(
    emulator, settings, creator
):
    settings.GEMINI_VEO_MODEL = "veo-3.1-lite-generate-preview"  # shut down on 2026-10-22
    job = submitted(new_job(creator, "gemini"))
    assert job.status == Job.Status.FAILED
    assert job.error.startswith(
        "Gemini API no longer offers this model; your job was not sent: This model "
        "models/veo-3.1-lite-generate-preview is no longer available."
    )
    assert job.error.endswith("You were not charged.")
    assert (job.error_kind, job.charge) == (Job.ErrorKind.MODEL_UNAVAILABLE, Job.Charge.REFUNDED)
    reason = health.unavailable_reason("gemini")
    assert reason.startswith("Gemini API no longer offers the model Studio uses: This model")
    assert "(since " in reason
    # Nobody's next job is sent there until a check says the model is served again.
    emulator.requests.clear()
    second = submitted(new_job(creator, "gemini"))
    assert second.status == Job.Status.FAILED and "was not sent" in second.error
    assert emulator.requests_to("gemini") == []
    settings.GEMINI_VEO_MODEL = "veo-3.1-lite-generate-001"
    (row,) = health.check(["gemini"])
    assert row.ok and health.unavailable_reason("gemini") == ""
    assert submitted(new_job(creator, "gemini")).status == Job.Status.SUBMITTED

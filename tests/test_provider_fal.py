"""fal.ai through the real engine, over loopback HTTP to the emulator."""

from datetime import timedelta

import pytest
from django.utils import timezone

from emulator import Reply
from studio import jobs
from studio.models import Job
from studio.providers.base import InvalidRequestError
from studio.providers.fal.client import FalProvider
from studio.providers.registry import get_provider
from tests.emulator import finished, follow, new_job, still, submitted, use_emulator


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


@pytest.fixture
def image(creator):
    return still(creator)


def test_without_a_key_fal_says_how_to_enable_it(settings):
    settings.FAL_KEY = ""
    assert FalProvider().missing_setup() == "Set FAL_KEY to use fal.ai."
    assert FalProvider().unavailable_reason() == "not set up on this Studio"


def test_an_image_job_uploads_the_still_then_submits_fal_shaped_input(emulator, creator, image):
    job = submitted(new_job(creator, "fal", seed=42, negative_prompt="blur", audio=False))

    token, upload = emulator.requests_to("fal", "POST")[:2]
    assert token.path == "/fal/rest/storage/auth/token"
    assert token.query == {"storage_type": ["fal-cdn-v3"]}
    assert token.headers["authorization"] == "Key test-fal-key"
    assert upload.path == "/fal/cdn/files/upload"
    assert upload.headers["authorization"].startswith("Bearer ")  # the token, never our key
    assert upload.headers["content-type"] == "image/jpeg"
    assert upload.body == image.file.open("rb").read()

    submit = emulator.requests_to("fal", "POST")[2]
    assert submit.path == "/fal/queue/fal-ai/veo3.1/lite/image-to-video"
    assert submit.headers["authorization"] == "Key test-fal-key"
    body = submit.json
    assert body["duration"] == "4s"  # a string enum, not an int
    assert body["image_url"].startswith(emulator.origin + "/fal/cdn/files/")
    assert body == {
        "prompt": "Slow pan left over the hills",
        "duration": "4s",
        "resolution": "720p",
        "aspect_ratio": "auto",
        "generate_audio": False,
        "negative_prompt": "blur",
        "seed": 42,
        "image_url": body["image_url"],
    }
    # The URLs fal returned are kept as they are: owner/alias only, no endpoint sub-path.
    assert job.status == Job.Status.SUBMITTED
    assert job.provider_state["status_url"] == (
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/requests/{job.provider_job_id}/status"
    )


def test_an_image_job_becomes_a_stored_clip(emulator, creator, image):
    job = finished(new_job(creator, "fal"))

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.clip.width, job.clip.height) == (1280, 720)
    assert abs(job.clip.duration - 4) < 0.1
    polls = [r for r in emulator.requests_to("fal", "GET") if r.path.endswith("/status")]
    assert polls and all(r.query == {"logs": ["1"]} for r in polls)
    assert all("/image-to-video/requests/" not in r.path for r in emulator.requests)


def test_the_queue_position_is_recorded_while_the_job_waits(emulator, creator, image):
    emulator.latency = 5
    first = submitted(new_job(creator, "fal"))
    second = submitted(new_job(creator, "fal", seed=1))
    jobs.refresh_status(second)
    second.refresh_from_db()
    assert (second.status, second.queue_position) == (Job.Status.SUBMITTED, 1)
    jobs.refresh_status(first)
    first.refresh_from_db()
    assert first.queue_position == 0


def test_text_and_first_last_modes_use_their_own_endpoints(emulator, creator, image):
    text = finished(new_job(creator, "fal", mode="text", image=None, aspect="auto"))
    assert text.status == Job.Status.SUCCEEDED, text.error
    last = still(creator, 1600, 901)
    both = submitted(new_job(creator, "fal", mode="first_last", last_frame=last, duration=8))
    assert both.status == Job.Status.SUBMITTED, both.error

    paths = [r.path for r in emulator.requests_to("fal", "POST") if "/queue/" in r.path]
    assert paths == [
        "/fal/queue/fal-ai/veo3.1/lite",
        "/fal/queue/fal-ai/veo3.1/lite/first-last-frame-to-video",
    ]
    text_body, both_body = (
        r.json for r in emulator.requests_to("fal", "POST") if "/queue/" in r.path
    )
    assert text_body["aspect_ratio"] == "16:9"  # text to video has no "auto"
    assert "image_url" not in text_body
    assert set(both_body) >= {"first_frame_url", "last_frame_url"}


def test_data_uri_upload_mode_sends_the_still_inline(emulator, settings, creator, image):
    settings.FAL_IMAGE_UPLOAD = "data_uri"
    submitted(new_job(creator, "fal"))
    (submit,) = emulator.requests_to("fal", "POST")
    assert submit.json["image_url"].startswith("data:image/jpeg;base64,")


def test_a_content_policy_refusal_fails_the_job_with_fals_words(emulator, creator, image):
    job = finished(new_job(creator, "fal", prompt="Pan left [fail:policy]"))
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("fal.ai refused this request under its content policy")
    assert "flagged by a content checker" in job.error


def test_a_refusal_at_submit_fails_the_job_at_once(emulator, creator, image):
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:policy@submit]"))
    assert job.status == Job.Status.FAILED
    assert "content policy" in job.error


def test_a_rate_limited_poll_keeps_the_job_and_waits_for_retry_after(emulator, creator, image):
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:rate_limit]"))
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED
    assert job.next_check_at >= before + timedelta(seconds=emulator.retry_after)
    # Once the provider lets us in again, the job carries on to a clip.
    job = finished(job)
    assert job.status == Job.Status.SUCCEEDED, job.error


def test_a_server_error_at_submit_puts_the_job_back_in_the_queue(emulator, creator, image):
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:server_error]"))
    assert job.status == Job.Status.QUEUED
    assert job.error.startswith("Retrying: fal.ai had a server problem")
    assert "runner_scheduling_failure" in job.error
    job = submitted(job)  # the follower sends it again; fal never charges a 5xx
    assert job.status == Job.Status.SUBMITTED


def test_a_poll_that_times_out_is_tried_again_later(emulator, settings, creator, image):
    settings.STUDIO_PROVIDER_TIMEOUT = 0.3
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:timeout]"))
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED
    assert job.next_check_at > before


def test_a_submit_whose_answer_is_lost_is_not_sent_again(emulator, settings, creator, image):
    settings.STUDIO_PROVIDER_TIMEOUT = 0.3
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:timeout@submit]"))
    assert job.status == Job.Status.FAILED
    assert "cannot tell whether it was accepted" in job.error
    assert "not be charged twice" in job.error
    submits = [r for r in emulator.requests_to("fal", "POST") if "/queue/" in r.path]
    assert len(submits) == 1


def test_an_unreadable_status_reply_is_transient(emulator, creator, image):
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:malformed]"))
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED
    assert finished(job).status == Job.Status.SUCCEEDED


def test_an_expired_result_fails_the_job(emulator, creator, image):
    job = finished(new_job(creator, "fal", prompt="Pan left [fail:expired]"))
    assert job.status == Job.Status.FAILED
    assert "expired" in job.error
    assert emulator.origin not in job.error  # provider URLs are never shown


def test_a_clip_cut_short_in_transit_fails_clearly(emulator, creator, image):
    job = finished(new_job(creator, "fal", prompt="Pan left [fail:truncated]"))
    assert job.status == Job.Status.FAILED
    assert "arrived cut short twice" in job.error


def test_a_refused_key_fails_the_job_for_the_administrator(emulator, settings, creator, image):
    settings.FAL_KEY = "invalid"
    job = submitted(new_job(creator, "fal"))
    assert job.status == Job.Status.FAILED
    assert "FAL_KEY" in job.error


def test_cancel_puts_the_stored_cancel_url(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator, image
):
    emulator.latency = 5
    job = submitted(new_job(creator, "fal"))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.cancel(job)
    (put,) = emulator.requests_to("fal", "PUT")
    assert put.path == f"/fal/queue/fal-ai/veo3.1/requests/{job.provider_job_id}/cancel"
    assert put.headers["authorization"] == "Key test-fal-key"


def test_a_rejected_input_names_the_field(emulator, creator, image):
    provider = get_provider("fal")
    job = new_job(creator, "fal", resolution="1080p", duration=4)  # 1080p needs 8 s at fal
    with pytest.raises(InvalidRequestError) as caught:
        provider.submit(jobs.generation_request(job))
    assert caught.value.field == "duration"
    assert "1080p" in str(caught.value)


def test_a_run_that_fails_on_fals_side_is_final_and_not_charged(emulator, creator):
    job = finished(new_job(creator, "fal", prompt="Pan left [fail:server_error@run]"))
    assert job.status == Job.Status.FAILED
    assert job.error == (
        "fal.ai had a server problem (runner_disconnected): Runner disconnected. "
        "You were not charged."
    )


def test_a_completed_run_with_an_error_fails_at_once_even_without_fals_request_header(
    emulator, creator
):
    # The error at response_url may come without x-fal-request-id (only a result fetch after
    # a successful run is ever an ingress error): the run is over either way, so it is never
    # retried until the ceiling.
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:server_error@run]"))
    emulator.add_route(
        "GET",
        f"/fal/queue/fal-ai/veo3.1/requests/{job.provider_job_id}",
        Reply(
            status=503,
            body=b'{"detail": "Runner disconnected", "error_type": "runner_disconnected"}',
            headers={"Content-Type": "application/json"},
        ),
    )
    job = follow(job)
    assert job.status == Job.Status.FAILED
    assert job.charge == Job.Charge.REFUNDED
    assert job.error.endswith("You were not charged.")
    assert "runner_disconnected" in job.error

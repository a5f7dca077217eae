"""Vertex AI through the real engine, over loopback HTTP to the emulator: its requests as
sent, tokens from the emulator's token service through google-auth, clips inline and from
Cloud Storage, each error kind, its health check and extending a clip."""

import base64
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from emulator import Reply
from studio import jobs, video
from studio.models import Job
from studio.options import ClipOptions, StoredVideo
from studio.providers import http
from studio.providers.base import (
    AccountError,
    GenerationRequest,
    Handle,
    HealthCheck,
    InvalidRequestError,
    ModelUnavailableError,
    NotFoundError,
    Phase,
    ProviderError,
    TransientError,
)
from studio.providers.vertex import auth
from studio.providers.vertex.client import VertexProvider, api_base
from tests.emulator import finished, new_job, still, submitted, use_emulator

MODEL_PATH = (
    "/vertex/v1/projects/test-project/locations/us-central1/publishers/google/models/"
    "veo-3.1-lite-generate-001"
)


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


def token_requests(emulator):
    return [r for r in emulator.requests_to("vertex") if r.path == "/vertex/oauth2/token"]


def api_requests(emulator):
    return [r for r in emulator.requests_to("vertex") if r.path.startswith("/vertex/v1/")]


def bearers(emulator):
    """The token each API call carried."""
    return [r.headers.get("authorization") for r in api_requests(emulator)]


def issued(emulator) -> list[str]:
    """The tokens the emulator's token service issued, in the order it issued them."""
    return list(emulator.vertex.tokens)


def until_done(provider, handle, timeout=120.0):
    """Poll as the follower does: a transient error (a slow first render on a busy machine
    outlasting the call's timeout) is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = provider.poll(handle)
        except TransientError:
            result = None
        if result is not None and result.phase != Phase.RUNNING:
            return result
        assert time.monotonic() < deadline
        time.sleep(0.03)


# --------------------------------------------------------------------------- set up


def test_without_a_project_vertex_says_how_to_enable_it(settings):
    settings.VERTEX_PROJECT = ""
    assert VertexProvider().missing_setup() == (
        "Set VERTEX_PROJECT and credentials to use Vertex AI."
    )


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("VERTEX_PROJECT", "My Project", "VERTEX_PROJECT must be a Google Cloud project id"),
        ("VERTEX_LOCATION", "us-central1.evil.example", "VERTEX_LOCATION must be a Google Cloud"),
        ("VERTEX_MODEL", "../models/x", "VERTEX_MODEL must be a model id"),
        ("VERTEX_OUTPUT_BUCKET", "s3://clips", "VERTEX_OUTPUT_BUCKET must be a gs:// address"),
    ],
)
def test_a_setting_that_cannot_work_is_named(emulator, settings, setting, value, reason):
    setattr(settings, setting, value)
    assert VertexProvider().missing_setup().startswith(reason)


KEY = json.dumps({"type": "service_account", "client_email": "a@b", "token_uri": "http://x"})


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "does not exist."),
        ("folder", "is a folder, not a key file."),
        ("{not json", "is not JSON."),
        ('{"type": "authorized_user", "refresh_token": "1//secret"}',
         'is not a service-account key (its type is "authorized_user"); for other credentials '
         "leave VERTEX_CREDENTIALS empty and use application default credentials."),
        ('{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}',
         "lacks client_email, token_uri."),
        (KEY[:-1] + ', "private_key": "-----BEGIN PRIVATE KEY-----\\nc2VjcmV0\\n"}',
         "has a private key that cannot be read."),
    ],
)  # fmt: skip
def test_a_key_file_that_cannot_be_used_says_why_without_showing_it(
    settings, tmp_path, content, reason
):
    path = tmp_path / "studio-key.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    settings.VERTEX_PROJECT = "test-project"
    settings.VERTEX_CREDENTIALS = str(path)
    said = VertexProvider().missing_setup()
    assert said == f"Vertex AI's key file (VERTEX_CREDENTIALS) {reason}"
    assert str(tmp_path) not in said and "secret" not in said and "c2VjcmV0" not in said


def test_a_key_file_changed_in_place_is_read_again(emulator, settings, tmp_path):
    path = tmp_path / "key.json"
    path.write_bytes(Path(emulator.vertex.key_file(emulator.origin)).read_bytes())
    settings.VERTEX_CREDENTIALS = str(path)
    assert VertexProvider().missing_setup() == ""
    modified = path.stat().st_mtime_ns
    path.write_text("{}")
    os.utime(path, ns=(modified + 1000, modified + 1000))
    assert "is not a service-account key" in VertexProvider().missing_setup()


@pytest.mark.parametrize(
    ("location", "base"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com"),
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
        ("us", "https://aiplatform.us.rep.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_the_endpoint_follows_the_location_unless_one_is_set(settings, location, base):
    settings.VERTEX_API_URL = ""
    assert api_base(location) == base
    settings.VERTEX_API_URL = "https://vertex.example.com/"
    assert api_base(location) == "https://vertex.example.com"


# --------------------------------------------------------------------------- requests


def test_the_request_is_vertex_shaped_with_a_bearer_token(emulator, creator):
    image = still(creator)
    job = submitted(
        new_job(creator, "vertex", image=image, seed=42, audio=False, negative_prompt="blur")
    )
    assert job.status == Job.Status.SUBMITTED, job.error

    (token,) = token_requests(emulator)
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    grant = parse_qs(token.body.decode())
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, claims, _ = grant["assertion"][0].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {
        "typ": "JWT", "alg": "RS256", "kid": emulator.vertex.key_id
    }  # fmt: skip
    claims = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert claims["exp"] - claims["iat"] == 3600
    assert {k: claims[k] for k in ("iss", "aud", "scope")} == {
        "iss": "studio@studio-emulated.iam.gserviceaccount.com",
        "aud": "https://oauth2.googleapis.com/token",
        "scope": "https://www.googleapis.com/auth/cloud-platform",
    }
    (submit,) = emulator.requests_to("vertex", "POST")[1:]
    assert submit.path == f"{MODEL_PATH}:predictLongRunning"
    assert submit.headers["authorization"] == f"Bearer {issued(emulator)[0]}"
    assert "x-goog-api-key" not in submit.headers
    instance = submit.json["instances"][0]
    assert base64.b64decode(instance["image"]["bytesBase64Encoded"]) == image.file.open().read()
    assert submit.json == {
        "instances": [
            {
                "prompt": "Slow pan left over the hills",
                "image": {"bytesBase64Encoded": instance["image"]["bytesBase64Encoded"],
                          "mimeType": "image/jpeg"},
            }
        ],
        "parameters": {
            "sampleCount": 1,
            "durationSeconds": 4,  # an int
            "aspectRatio": "16:9",  # "auto" resolved from a landscape still
            "resolution": "720p",
            "generateAudio": False,
            "personGeneration": "allow_adult",
            "negativePrompt": "blur",
            "seed": 42,
        },
    }  # fmt: skip
    assert job.provider_job_id.startswith(f"{MODEL_PATH[len('/vertex/v1/') :]}/operations/")


def test_a_portrait_still_with_auto_asks_for_9_16(emulator, creator):
    submitted(new_job(creator, "vertex", image=still(creator, 900, 1600)))
    assert api_requests(emulator)[0].json["parameters"]["aspectRatio"] == "9:16"


def test_first_and_last_frames_are_both_inline(emulator, creator):
    last = still(creator, 1600, 901)
    submitted(new_job(creator, "vertex", mode="first_last", last_frame=last, duration=8))
    instance = api_requests(emulator)[0].json["instances"][0]
    assert set(instance) == {"prompt", "image", "lastFrame"}
    assert instance["lastFrame"]["mimeType"] == "image/jpeg"
    assert base64.b64decode(instance["lastFrame"]["bytesBase64Encoded"]) == last.file.open().read()


def test_a_text_job_sends_only_the_prompt(emulator, creator):
    submitted(new_job(creator, "vertex", mode="text", image=None))
    assert api_requests(emulator)[0].json["instances"] == [
        {"prompt": "Slow pan left over the hills"}
    ]


# --------------------------------------------------------------------------- clips


def test_an_inline_clip_is_fetched_again_into_the_file_not_kept_on_the_job(emulator, creator):
    job = finished(new_job(creator, "vertex"))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.clip.width, job.clip.height, job.clip.has_audio) == (1280, 720, True)
    assert abs(job.clip.duration - 4) < 0.1
    assert job.result_url == "inline:0"  # a marker, not megabytes of base64
    polls = api_requests(emulator)[1:]
    assert {(r.method, r.path) for r in polls} == {("POST", f"{MODEL_PATH}:fetchPredictOperation")}
    assert all(r.json == {"operationName": job.provider_job_id} for r in polls)
    # The last one brought the clip home, after the poll that found it done.
    assert len(polls) >= 2
    assert len(token_requests(emulator)) == 1  # one token, reused by every call


def test_with_a_bucket_the_clip_comes_from_cloud_storage_with_the_same_token(
    emulator, settings, creator
):
    settings.VERTEX_OUTPUT_BUCKET = "gs://studio-clips/out"
    job = finished(new_job(creator, "vertex", mode="text", image=None))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert api_requests(emulator)[0].json["parameters"]["storageUri"] == "gs://studio-clips/out/"
    operation = job.provider_job_id.rpartition("/")[2]
    assert job.result_url == f"gs://studio-clips/out/{operation}/sample_0.mp4"
    (download,) = [r for r in emulator.requests_to("vertex", "GET") if "/storage/" in r.path]
    # The object's name is one segment: its slashes are percent-encoded.
    assert download.raw_path == (
        f"/vertex/storage/storage/v1/b/studio-clips/o/out%2F{operation}%2Fsample_0.mp4"
    )
    assert download.query == {"alt": ["media"]}
    assert download.headers["authorization"] == f"Bearer {issued(emulator)[0]}"


def test_cloud_storage_answers_a_range(emulator, settings, creator):
    settings.VERTEX_OUTPUT_BUCKET = "gs://studio-clips"
    job = finished(new_job(creator, "vertex", mode="text", image=None))
    provider = VertexProvider()
    url = provider._object_url("studio-clips", job.result_url.split("/", 3)[3])
    headers = {**provider.auth_headers(), "Range": "bytes=4-11"}
    answer = http.shared_client().get(url, headers=headers)
    assert (answer.status_code, answer.content) == (206, b"ftypisom")
    assert http.shared_client().get(url).status_code == 401


def test_a_gs_address_names_a_bucket_never_a_host(emulator, tmp_path):
    with pytest.raises(NotFoundError):  # no such object, asked of the storage origin
        VertexProvider().fetch(Handle("x"), "gs://evil.example.com/clip.mp4", tmp_path / "c")
    (asked,) = [r for r in emulator.requests_to("vertex", "GET")]
    assert asked.raw_path == "/vertex/storage/storage/v1/b/evil.example.com/o/clip.mp4"
    for unusable in ("gs://", "gs://bucket", "gs://bucket/", "https://storage/x", "gs://B/x"):
        with pytest.raises(ProviderError, match="clip address Studio cannot use"):
            VertexProvider().fetch(Handle("x"), unusable, tmp_path / "c")


def test_the_token_goes_to_the_storage_origin_only(emulator, settings, tmp_path):
    port = emulator.origin.rsplit(":", 1)[1]
    other = f"http://localhost:{port}"
    emulator.add_route("GET", "/media/elsewhere.mp4", Reply(200, MP4, "video/mp4"))
    emulator.add_route(
        "GET",
        "/vertex/storage/storage/v1/b/studio-clips/o/a/clip.mp4",
        Reply(307, headers={"Location": f"{other}/media/elsewhere.mp4"}),
    )

    class TrustingBoth(VertexProvider):  # as if `other` were a trusted storage host
        def media_hosts(self):
            return http.MediaHosts.build([], [settings.VERTEX_STORAGE_URL, other])

    TrustingBoth().fetch(Handle("x"), "gs://studio-clips/a/clip.mp4", tmp_path / "clip.mp4")
    first, second = emulator.requests[-2:]
    assert first.headers["authorization"].startswith("Bearer ya29.")
    assert second.path == "/media/elsewhere.mp4" and "authorization" not in second.headers


def test_a_redirect_to_an_untrusted_host_is_refused(emulator, tmp_path):
    emulator.add_route(
        "GET",
        "/vertex/storage/storage/v1/b/studio-clips/o/a/clip.mp4",
        Reply(302, headers={"Location": "http://169.254.169.254/latest"}),
    )
    with pytest.raises(http.UntrustedURL):
        VertexProvider().fetch(Handle("x"), "gs://studio-clips/a/clip.mp4", tmp_path / "c")


MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)


def test_an_inline_clip_over_the_size_cap_is_not_saved(emulator, settings, creator):
    settings.STUDIO_MAX_CLIP_BYTES = 100 * 1024
    job = finished(new_job(creator, "vertex"))
    assert job.status == Job.Status.FAILED
    assert "larger than Studio accepts (0.1 MB), so it was not saved" in job.error


# --------------------------------------------------------------------------- errors


def test_safety_filtered_clip_fails_quoting_the_reasons_and_not_charged(emulator, creator):
    job = finished(new_job(creator, "vertex", prompt="Pan left [fail:policy]"))
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("Google's safety filters blocked this clip: Veo could not")
    assert job.error.endswith("No clip was made, so you were not charged.")
    assert job.charge == Job.Charge.REFUNDED


def test_a_prompt_refused_at_submit_is_not_charged(emulator, creator):
    job = submitted(new_job(creator, "vertex", prompt="Pan left [fail:policy@submit]"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "content_policy")
    assert job.error.startswith("Google refused this request: The prompt could not be submitted")
    assert job.charge == Job.Charge.REFUNDED


def test_resource_exhausted_waits_for_the_retry_delay(emulator, creator):
    job = submitted(new_job(creator, "vertex", prompt="Pan left [fail:rate_limit]"))
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status in Job.AT_PROVIDER
    assert job.next_check_at >= before + timedelta(seconds=emulator.retry_after)
    assert finished(job).status == Job.Status.SUCCEEDED


def test_unavailable_at_submit_is_retried(emulator, creator):
    job = submitted(new_job(creator, "vertex", prompt="Pan left [fail:server_error]"))
    assert job.status == Job.Status.QUEUED
    assert job.error == (
        "Retrying: Vertex AI had a server problem: The service is currently unavailable."
    )
    assert submitted(job).status == Job.Status.SUBMITTED


def test_a_failed_operation_is_final_and_not_charged(emulator, creator):
    job = finished(new_job(creator, "vertex", prompt="Pan left [fail:server_error@run]"))
    assert job.status == Job.Status.FAILED
    assert job.error == "Vertex AI failed to make this clip: Internal error. You were not charged."


def test_a_value_checked_only_when_the_job_runs_fails_it_with_googles_words(emulator):
    provider = VertexProvider()
    handle = provider.submit(
        GenerationRequest("r", ClipOptions(prompt="p", mode="text", duration=5))
    )
    with pytest.raises(InvalidRequestError, match="Unsupported output video duration 5 seconds"):
        until_done(provider, handle)


def test_a_submit_whose_answer_is_lost_is_not_sent_again(emulator, settings, creator):
    settings.STUDIO_PROVIDER_TIMEOUT = 0.3
    job = submitted(new_job(creator, "vertex", prompt="Pan left [fail:timeout@submit]"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "submit_uncertain")
    assert len([r for r in api_requests(emulator) if r.path.endswith(":predictLongRunning")]) == 1


def test_an_unreadable_operation_is_asked_about_again(emulator, creator):
    job = submitted(new_job(creator, "vertex", prompt="Pan left [fail:malformed]"))
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status in Job.AT_PROVIDER
    assert finished(job).status == Job.Status.SUCCEEDED


def test_an_expired_object_fails_the_job(emulator, settings, creator):
    settings.VERTEX_OUTPUT_BUCKET = "gs://studio-clips"
    job = finished(new_job(creator, "vertex", prompt="Pan left [fail:expired]"))
    assert job.status == Job.Status.FAILED
    assert "its link has expired" in job.error and emulator.origin not in job.error


def test_an_inline_clip_whose_operation_is_gone_fails_the_job(emulator, creator):
    job = finished(new_job(creator, "vertex", prompt="Pan left [fail:expired]"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "download")
    assert "Vertex AI no longer knows this job" in job.error


def test_a_clip_cut_short_in_transit_fails_clearly(emulator, settings, creator):
    settings.VERTEX_OUTPUT_BUCKET = "gs://studio-clips"
    job = finished(new_job(creator, "vertex", prompt="Pan left [fail:truncated]"))
    assert job.status == Job.Status.FAILED
    assert "arrived cut short twice" in job.error


def test_a_model_vertex_does_not_offer_is_model_unavailable_and_not_charged(
    emulator, settings, creator
):
    settings.VERTEX_MODEL = "veo-3.1-lite-generate-preview"  # retired
    job = submitted(new_job(creator, "vertex"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "model_unavailable")
    assert job.error.startswith(
        "Vertex AI does not offer veo-3.1-lite-generate-preview to this project: Publisher Model "
        "`projects/test-project/locations/us-central1/publishers/google/models/"
        "veo-3.1-lite-generate-preview` was not found or your project does not have access"
    )
    assert "check VERTEX_MODEL, VERTEX_PROJECT and VERTEX_LOCATION" in job.error
    assert job.charge == Job.Charge.REFUNDED
    with pytest.raises(ModelUnavailableError):
        VertexProvider().submit(jobs.generation_request(job))


def test_a_project_without_billing_is_an_account_problem(emulator, settings, creator):
    settings.VERTEX_CREDENTIALS = emulator.vertex.key_file(emulator.origin, "no-credit")
    job = submitted(new_job(creator, "vertex"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "account")
    assert job.error.startswith(
        "Vertex AI refused Studio's credentials: This API method requires billing to be enabled."
    )
    assert "An administrator needs to check VERTEX_CREDENTIALS" in job.error


# --------------------------------------------------------------------------- credentials


def test_a_refused_service_account_fails_the_job_for_the_administrator(emulator, settings, creator):
    settings.VERTEX_CREDENTIALS = emulator.vertex.key_file(emulator.origin, "invalid")
    job = submitted(new_job(creator, "vertex"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "account")
    assert job.error == (
        "Google refused Vertex AI's credentials: invalid_grant: Invalid grant: account not "
        "found. An administrator needs to check VERTEX_CREDENTIALS. You were not charged."
    )
    assert not api_requests(emulator)  # nothing reached Vertex


def test_a_key_the_token_service_cannot_verify_is_refused(emulator, settings, tmp_path):
    forged = json.loads(Path(emulator.vertex.key_file(emulator.origin)).read_text())
    forged["private_key"] = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    settings.VERTEX_CREDENTIALS = str(tmp_path / "forged.json")
    with pytest.raises(AccountError, match="invalid_grant: Invalid JWT Signature"):
        VertexProvider().submit(GenerationRequest("r", ClipOptions(prompt="p", mode="text")))


def test_an_expired_token_is_refreshed_over_http(emulator):
    # 200 s is inside google-auth's 3 min 45 s margin, so it counts as expired at once.
    emulator.vertex.token_lifetime = 200
    provider = VertexProvider()
    handle = provider.submit(GenerationRequest("r", ClipOptions(prompt="p", mode="text")))
    provider.poll(handle)
    assert len(token_requests(emulator)) == 2
    assert bearers(emulator) == [f"Bearer {token}" for token in issued(emulator)]


def test_a_token_is_reused_until_it_expires(emulator):
    provider = VertexProvider()
    handle = provider.submit(GenerationRequest("r", ClipOptions(prompt="p", mode="text")))
    for _ in range(3):
        provider.poll(handle)
    assert len(token_requests(emulator)) == 1
    assert set(bearers(emulator)) == {f"Bearer {issued(emulator)[0]}"}


def test_a_token_google_no_longer_takes_is_renewed_once(emulator):
    provider = VertexProvider()
    handle = provider.submit(GenerationRequest("r", ClipOptions(prompt="p", mode="text")))
    emulator.vertex.forget_tokens()  # revoked
    assert provider.poll(handle).phase == Phase.RUNNING
    refused, renewed = [r.headers["authorization"] for r in api_requests(emulator)[1:]]
    assert refused != renewed and len(token_requests(emulator)) == 2


def test_threads_needing_a_token_at_once_share_one_refresh(emulator):
    provider = VertexProvider()
    tokens, start = [], threading.Barrier(8)

    def ask():
        start.wait()
        tokens.append(auth.bearer(provider.client))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(token_requests(emulator)) == 1
    assert len(tokens) == 8 and len(set(tokens)) == 1


def test_application_default_credentials_are_used_without_a_key_file(
    emulator, settings, monkeypatch
):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", settings.VERTEX_CREDENTIALS)
    settings.VERTEX_CREDENTIALS = ""
    assert VertexProvider().missing_setup() == ""  # looked up only when needed
    VertexProvider().submit(GenerationRequest("r", ClipOptions(prompt="p", mode="text")))
    assert len(token_requests(emulator)) == 1 and len(api_requests(emulator)) == 1


def test_without_application_default_credentials_the_submit_says_what_to_set(
    emulator, settings, monkeypatch, tmp_path, creator
):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud login here
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # and never ask a metadata server
    settings.VERTEX_CREDENTIALS = ""
    job = submitted(new_job(creator, "vertex"))
    assert (job.status, job.error_kind) == (Job.Status.FAILED, "account")
    assert job.error.startswith(
        "No application default credentials were found for Vertex AI. An administrator needs "
        "to set VERTEX_CREDENTIALS to a service-account key file, or "
        "GOOGLE_APPLICATION_CREDENTIALS."
    )
    assert not emulator.requests_to("vertex")


def test_an_unreachable_token_service_is_retried_never_uncertain(emulator, settings, creator):
    settings.VERTEX_CREDENTIALS = emulator.vertex.key_file("http://127.0.0.1:9", "studio")
    job = submitted(new_job(creator, "vertex"))
    assert job.status == Job.Status.QUEUED
    assert job.error == (
        "Retrying: Google's token service could not be reached; Studio will try again shortly."
    )


# --------------------------------------------------------------------------- check


def test_the_health_check_reads_the_publisher_model(emulator):
    assert VertexProvider().check() == HealthCheck(key_ok=True, model_ok=True)
    (asked,) = api_requests(emulator)
    assert (asked.method, asked.path) == (
        "GET",
        "/vertex/v1/publishers/google/models/veo-3.1-lite-generate-001",
    )
    assert asked.headers["authorization"].startswith("Bearer ya29.")


def test_the_health_check_finds_a_model_not_served(emulator, settings):
    settings.VERTEX_MODEL = "veo-3.1-lite-generate-preview"
    assert VertexProvider().check() == HealthCheck(
        key_ok=True,
        model_ok=False,
        message="Publisher Model `publishers/google/models/veo-3.1-lite-generate-preview` "
        "not found.",
    )


@pytest.mark.parametrize("account", ["invalid", "no-credit"])
def test_the_health_check_finds_refused_credentials(emulator, settings, account):
    settings.VERTEX_CREDENTIALS = emulator.vertex.key_file(emulator.origin, account)
    check = VertexProvider().check()
    assert (check.key_ok, check.model_ok, check.ok) == (False, None, False)
    words = "account not found" if account == "invalid" else "requires billing to be enabled"
    assert words in check.message


def test_the_health_check_of_an_unconfigured_vertex_says_why(settings):
    settings.VERTEX_PROJECT = ""
    assert VertexProvider().check() == HealthCheck(
        key_ok=False, model_ok=None, message="Set VERTEX_PROJECT and credentials to use Vertex AI."
    )


def test_an_unreachable_vertex_is_an_error_not_a_verdict(emulator, settings):
    settings.VERTEX_API_URL = "http://127.0.0.1:9"
    with pytest.raises(TransientError, match="could not be reached"):
        VertexProvider().check()


# --------------------------------------------------------------------------- extension


@pytest.fixture
def four_seconds(emulator, creator):
    """A 4 s clip Vertex made, stored in Studio's gallery."""
    job = finished(new_job(creator, "vertex", mode="text", image=None))
    assert job.status == Job.Status.SUCCEEDED, job.error
    emulator.reset()
    auth.forget()  # the emulator forgot its tokens too
    return StoredVideo.of(job.clip)


def extend(clip, **options):
    return GenerationRequest(
        "studio-job-77",
        ClipOptions(prompt="Keep panning to the sea", mode="text", **options),
        extend_from=clip,
    )


def test_an_extension_sends_the_clip_and_comes_back_7_s_longer(emulator, four_seconds, tmp_path):
    provider = VertexProvider()
    handle = provider.submit(extend(four_seconds, duration=4))
    (submit,) = api_requests(emulator)
    assert submit.json == {
        "instances": [
            {
                "prompt": "Keep panning to the sea",
                "video": {
                    "bytesBase64Encoded": base64.b64encode(four_seconds.read()).decode(),
                    "mimeType": "video/mp4",
                },
            }
        ],
        "parameters": {
            "sampleCount": 1,
            "durationSeconds": 7,  # what Vertex adds, whatever the options say
            "aspectRatio": "16:9",  # the clip's own
            "resolution": "720p",
            "generateAudio": True,
            "personGeneration": "allow_adult",
        },
    }
    result = until_done(provider, handle)
    provider.fetch(handle, result.result_url, tmp_path / "longer.mp4")
    info, _ = video.probe_with_poster(tmp_path / "longer.mp4")
    assert round(info.duration) == round(four_seconds.duration) + 7 == 11


def test_with_a_bucket_the_clip_to_extend_is_uploaded_there_first(
    emulator, settings, four_seconds, tmp_path
):
    settings.VERTEX_OUTPUT_BUCKET = "gs://studio-clips/studio"
    provider = VertexProvider()
    handle = provider.submit(extend(four_seconds))
    upload = emulator.requests_to("vertex", "POST")[1]  # after the token
    assert (upload.path, upload.query) == (
        "/vertex/storage/upload/storage/v1/b/studio-clips/o",
        {"uploadType": ["media"], "name": ["studio/studio-inputs/studio-job-77.mp4"]},
    )
    assert upload.headers["authorization"].startswith("Bearer ya29.")
    assert upload.headers["content-type"] == "video/mp4"
    assert upload.body == four_seconds.read()
    (submit,) = api_requests(emulator)
    assert submit.json["instances"][0]["video"] == {
        "gcsUri": "gs://studio-clips/studio/studio-inputs/studio-job-77.mp4",
        "mimeType": "video/mp4",
    }
    assert submit.json["parameters"]["storageUri"] == "gs://studio-clips/studio/"
    result = until_done(provider, handle)
    provider.fetch(handle, result.result_url, tmp_path / "longer.mp4")
    assert round(video.probe_with_poster(tmp_path / "longer.mp4")[0].duration) == 11


@pytest.mark.parametrize(("seconds", "refusal"), [(0.5, "0.5"), (31.0, "31.0")])
def test_a_clip_too_short_or_long_to_extend_is_refused_before_sending(
    emulator, four_seconds, seconds, refusal
):
    clip = StoredVideo(four_seconds.name, 1280, 720, duration=seconds)
    with pytest.raises(InvalidRequestError) as refused:
        VertexProvider().submit(extend(clip))
    assert str(refused.value) == (
        f"Vertex AI continues clips 1 to 30 s long; this one is {refusal} s."
    )
    assert refused.value.field == "extend_from"
    assert not api_requests(emulator)


def test_only_vertex_says_it_can_extend():
    from studio.providers.registry import LABELS, capabilities_of

    assert {
        n: capabilities_of(n).extend_seconds for n in LABELS if capabilities_of(n).extend_seconds
    } == {"vertex": 7}

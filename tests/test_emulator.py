"""The emulator answers like the real services do, so provider tests prove real requests."""

import base64
import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from emulator import Emulator, FailureSpec, Reply
from studio import video
from tests.emulator import use_emulator
from tests.factories import photo

FAL = {"Authorization": "Key k"}
BEARER = {"Authorization": "Bearer k"}
GOOGLE = {"x-goog-api-key": "k"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as client:
        yield client


def wait_until_done(emulator):
    time.sleep(emulator.latency + 0.05)


# --------------------------------------------------------------------------- fal.ai


def test_fal_returns_request_urls_without_the_endpoint_sub_path(emulator, client):
    reply = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite/image-to-video",
        headers=FAL,
        json={"prompt": "p", "image_url": "https://example.com/a.jpg", "duration": "4s"},
    )
    assert reply.status_code == 200
    body = reply.json()
    request_id = body["request_id"]
    assert body["status_url"] == (
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/requests/{request_id}/status"
    )
    assert body["status"] == "IN_QUEUE" and body["queue_position"] == 0
    rebuilt = f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite/image-to-video/requests/{request_id}"
    assert client.get(f"{rebuilt}/status", headers=FAL).status_code == 404


def test_fal_status_is_202_until_completed_then_200(emulator, client):
    emulator.latency = 0.3
    submit = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        json={"prompt": "p", "duration": "4s"},
    ).json()
    pending = client.get(submit["status_url"], headers=FAL, params={"logs": "1"})
    assert (pending.status_code, pending.json()["status"]) == (202, "IN_QUEUE")
    time.sleep(0.15)
    running = client.get(submit["status_url"], headers=FAL, params={"logs": "1"})
    assert (running.status_code, running.json()["status"]) == (202, "IN_PROGRESS")
    assert running.json()["logs"][0]["level"] == "INFO"
    wait_until_done(emulator)
    done = client.get(submit["status_url"], headers=FAL)
    assert (done.status_code, done.json()["status"]) == (200, "COMPLETED")


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("duration", 8, "literal_error"),  # an int where fal wants "8s"
        ("duration", "8", "literal_error"),
        ("aspect_ratio", "auto", "literal_error"),  # text to video has no "auto"
        ("generate_audio", "yes", "bool_type"),
        ("num_frames", 3, "extra_forbidden"),
    ],
)
def test_fal_validates_its_input_schema(emulator, client, field, value, kind):
    reply = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        json={"prompt": "p", field: value},
    )
    assert reply.status_code == 422
    (detail,) = reply.json()["detail"]
    assert (detail["loc"], detail["type"]) == (["body", field], kind)
    assert reply.headers["x-fal-retryable"] == "false"


@pytest.mark.parametrize("authorization", [None, "Bearer k", "Key", "Key invalid"])
def test_fal_wants_its_own_key_header(emulator, client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    reply = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite", headers=headers, json={"prompt": "p"}
    )
    assert reply.status_code == 401
    assert isinstance(reply.json()["detail"], str)


def test_fal_uploads_go_through_a_token_and_come_back_by_url(emulator, client):
    token = client.post(
        f"{emulator.origin}/fal/rest/storage/auth/token",
        params={"storage_type": "fal-cdn-v3"},
        headers=FAL,
        json={},
    ).json()
    assert set(token) == {"token", "token_type", "base_url", "expires_at"}
    image = photo(64, 64)
    stored = client.post(
        f"{token['base_url']}/files/upload",
        content=image,
        headers={
            "Authorization": f"{token['token_type']} {token['token']}",
            "Content-Type": "image/jpeg",
        },
    ).json()
    assert client.get(stored["access_url"]).content == image
    refused = client.post(
        f"{token['base_url']}/files/upload",
        content=image,
        headers={**FAL, "Content-Type": "image/jpeg"},
    )
    assert refused.status_code == 401


def test_the_clip_is_a_real_mp4_of_the_requested_shape(emulator, client, tmp_path):
    submit = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        json={
            "prompt": "tilt up",
            "duration": "4s",
            "aspect_ratio": "9:16",
            "generate_audio": False,
        },
    ).json()
    wait_until_done(emulator)
    result = client.get(submit["response_url"], headers=FAL).json()
    clip = client.get(result["video"]["url"])
    assert clip.headers["content-type"] == "video/mp4"
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip.content)
    info = video.probe_with_poster(path)[0]
    assert (info.width, info.height, info.has_audio) == (720, 1280, False)
    assert abs(info.duration - 4) < 0.1


def wait_for_webhook(emulator, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not emulator.webhooks_sent and time.monotonic() < deadline:
        time.sleep(0.02)
    (sent,) = emulator.webhooks_sent
    return sent


def test_fal_signs_its_webhook_with_the_key_in_its_jwks(emulator, client):
    hook = emulator.add_route("POST", "/hook", Reply(200, b"ok"))
    submit = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        params={"fal_webhook": hook},
        json={"prompt": "p", "duration": "4s"},
    ).json()
    sent = wait_for_webhook(emulator)
    (delivery,) = emulator.requests_to("hook", "POST")

    assert (sent.url, sent.status) == (hook, 200)
    assert sent.json["request_id"] == submit["request_id"]
    assert sent.json["status"] == "OK"
    assert sent.json["payload"]["video"]["url"].endswith("/output.mp4")
    headers = delivery.headers
    assert headers["x-fal-webhook-request-id"] == submit["request_id"]
    jwks = client.get(f"{emulator.origin}/fal/jwks.json").json()
    (key,) = jwks["keys"]
    assert (key["kty"], key["crv"]) == ("OKP", "Ed25519")
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "="))
    message = "\n".join(
        [
            headers["x-fal-webhook-request-id"],
            headers["x-fal-webhook-user-id"],
            headers["x-fal-webhook-timestamp"],
            hashlib.sha256(delivery.body).hexdigest(),
        ]
    )
    public.verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message.encode())


def test_the_emulator_says_when_each_job_was_accepted_and_done(emulator, client):
    """For bench/engine.py: wall-clock times to set against Studio's own timestamps."""
    emulator.latency = 0.2
    hook = emulator.add_route("POST", "/hook", Reply(200, b"ok"))
    before = time.time()
    submit = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        params={"fal_webhook": hook},
        json={"prompt": "p", "duration": "4s"},
    ).json()
    provider, accepted, done = emulator.job_times()[submit["request_id"]]
    assert provider == "fal"
    assert before <= accepted <= time.time()
    assert done == pytest.approx(accepted + 0.2)
    sent = wait_for_webhook(emulator)
    assert done - 0.01 <= sent.sent_at < done + 5
    assert 0 < sent.answered_in < 5


def test_fal_sends_an_error_webhook_for_a_failed_run(emulator, client):
    hook = emulator.add_route("POST", "/hook", Reply(200, b"ok"))
    client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        params={"fal_webhook": hook},
        json={"prompt": "p [fail:server_error@run]", "duration": "4s"},
    )
    sent = wait_for_webhook(emulator)
    assert sent.json["status"] == "ERROR"
    assert sent.json["error"] == "Invalid status code: 503"
    assert sent.json["payload"]["error_type"] == "runner_disconnected"


def test_a_job_without_a_webhook_sends_none(emulator, client):
    client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        json={"prompt": "p", "duration": "4s"},
    )
    wait_until_done(emulator)
    time.sleep(0.2)
    assert emulator.webhooks_sent == []


# --------------------------------------------------------------------------- Gemini API


def gemini(emulator, client, parameters=None, instance=None, headers=GOOGLE):
    return client.post(
        f"{emulator.origin}/gemini/v1beta/models/veo-3.1-lite-generate-001:predictLongRunning",
        headers=headers,
        json={
            "instances": [{"prompt": "p", **(instance or {})}],
            "parameters": {"durationSeconds": 4, **(parameters or {})},
        },
    )


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"seed": 1}, "`seed` isn't supported"),
        ({"generateAudio": False}, "`generateAudio` isn't supported"),
        ({"durationSeconds": "4"}, "must be an integer"),
        ({"aspectRatio": "auto"}, "aspectRatio"),
    ],
)
def test_gemini_refuses_parameters_its_api_does_not_take(emulator, client, parameters, message):
    reply = gemini(emulator, client, parameters)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert message in error["message"]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"gcsUri": "gs://b/a.jpg", "mimeType": "image/jpeg"}, "gcsUri isn't supported"),
        ({"bytesBase64Encoded": "not base64!", "mimeType": "image/jpeg"}, "Base64 decoding"),
        ({"bytesBase64Encoded": base64.b64encode(b"text").decode()}, "mimeType"),
    ],
)
def test_gemini_wants_inline_base64_images(emulator, client, image, message):
    reply = gemini(emulator, client, instance={"image": image})
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


def test_gemini_accepts_an_inline_image_and_runs_an_operation(emulator, client):
    image = {
        "bytesBase64Encoded": base64.b64encode(photo(320, 180)).decode(),
        "mimeType": "image/jpeg",
    }
    reply = gemini(emulator, client, instance={"image": image})
    assert reply.status_code == 200
    name = reply.json()["name"]
    running = client.get(f"{emulator.origin}/gemini/v1beta/{name}", headers=GOOGLE).json()
    assert "done" not in running
    wait_until_done(emulator)
    done = client.get(f"{emulator.origin}/gemini/v1beta/{name}", headers=GOOGLE).json()
    uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    assert uri.endswith(":download?alt=media")
    assert client.get(uri).status_code == 403  # the file needs the key
    assert client.get(uri, headers=GOOGLE).headers["content-type"] == "video/mp4"


def test_gemini_signs_its_event_the_standard_webhooks_way(emulator, client):
    hook = emulator.add_route("POST", "/hook", Reply(200, b"ok"))
    operation = client.post(
        f"{emulator.origin}/gemini/v1beta/models/veo-3.1-lite-generate-001:predictLongRunning",
        headers=GOOGLE,
        json={
            "instances": [{"prompt": "p"}],
            "parameters": {"durationSeconds": 4},
            "webhookConfig": {"uris": [hook], "user_metadata": {"job": "studio-job-7"}},
        },
    ).json()
    sent = wait_for_webhook(emulator)
    (delivery,) = emulator.requests_to("hook", "POST")

    assert sent.json["type"] == "video.generated"
    assert operation["name"].endswith("/operations/" + sent.json["data"]["id"])
    assert sent.json["data"]["user_metadata"] == {"job": "studio-job-7"}
    headers = delivery.headers
    key = base64.b64decode(emulator.gemini_webhook_secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + delivery.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


def test_gemini_refuses_a_malformed_webhook_config(emulator, client):
    reply = client.post(
        f"{emulator.origin}/gemini/v1beta/models/veo-3.1-lite-generate-001:predictLongRunning",
        headers=GOOGLE,
        json={"instances": [{"prompt": "p"}], "webhookConfig": {"uris": "https://x"}},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "webhookConfig.uris must be a list of URLs."


def test_gemini_without_a_key_is_permission_denied(emulator, client):
    reply = gemini(emulator, client, headers={})
    assert reply.status_code == 403
    assert reply.json()["error"]["status"] == "PERMISSION_DENIED"


# --------------------------------------------------------------------------- AI/ML API


def test_aimlapi_errors_have_its_documented_shape(emulator, client):
    reply = client.post(
        f"{emulator.origin}/aimlapi/v2/video/generations",
        headers=BEARER,
        json={"model": "google/veo-3.1-lite-generate-001", "prompt": "p", "duration": "8"},
    )
    assert reply.status_code == 400
    body = reply.json()
    assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp", "meta"}
    assert (body["message"], body["statusCode"]) == ("Body validation error!", 400)
    assert body["meta"][0]["path"] == ["duration"]
    unauthorised = client.post(f"{emulator.origin}/aimlapi/v2/video/generations", json={})
    assert unauthorised.status_code == 401


def test_aimlapi_refuses_every_model_id_but_the_documented_ones(emulator, client):
    url = f"{emulator.origin}/aimlapi/v2/video/generations"
    for model in ("google/veo-3.1-lite-generate-001", "veo-3.1-lite-generate-001"):
        reply = client.post(url, headers=BEARER, json={"model": model, "prompt": "p"})
        assert reply.status_code == 200, (model, reply.text)
    refused = client.post(
        url, headers=BEARER, json={"model": "google/veo-3-1-lite-generate-preview", "prompt": "p"}
    )
    assert refused.status_code == 400
    (detail,) = refused.json()["meta"]
    assert detail["path"] == ["model"]
    assert "received 'google/veo-3-1-lite-generate-preview'" in detail["message"]


def test_aimlapi_generation_goes_queued_generating_completed(emulator, client):
    emulator.latency = 0.3
    created = client.post(
        f"{emulator.origin}/aimlapi/v2/video/generations",
        headers=BEARER,
        json={"model": "google/veo-3.1-lite-generate-001", "prompt": "p", "duration": 4},
    ).json()
    url = f"{emulator.origin}/aimlapi/v2/video/generations"
    seen = []
    deadline = time.monotonic() + 5
    while not seen or seen[-1] != "completed":
        assert time.monotonic() < deadline
        body = client.get(url, headers=BEARER, params={"generation_id": created["id"]}).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        time.sleep(0.05)
    assert seen == ["queued", "generating", "completed"]
    assert body["video"]["url"].endswith(".mp4")


# --------------------------------------------------------------------------- Oxen.ai


def test_oxen_validates_parameters_only_when_the_job_runs(emulator, client):
    queue = f"{emulator.origin}/oxen/api/ai/queue"
    reply = client.post(
        queue,
        headers=BEARER,
        json={"model": "google-veo-3-1-lite", "prompt": "p", "duration": "8s"},
    )
    assert reply.status_code == 200
    (generation,) = reply.json()["generations"]
    assert generation["status"] == "queued"
    wait_until_done(emulator)
    row = client.get(f"{queue}/{generation['generation_id']}", headers=BEARER).json()
    assert row["status"] == "failed"
    assert "duration: Input should be 4, 6 or 8" in row["error_message"]


def test_oxen_checks_model_and_count_at_enqueue(emulator, client):
    queue = f"{emulator.origin}/oxen/api/ai/queue"
    missing = client.post(queue, headers=BEARER, json={"model": "nope", "prompt": "p"})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "Model not found: nope"}}
    too_many = client.post(
        queue,
        headers=BEARER,
        json={"model": "google-veo-3-1-lite", "prompt": "p", "num_generations": 5},
    )
    assert too_many.status_code == 400
    assert too_many.json()["status_message"] == "invalid_params"


def test_oxen_unknown_generation_is_a_documented_404(emulator, client):
    reply = client.get(f"{emulator.origin}/oxen/api/ai/queue/unknown", headers=BEARER)
    assert reply.status_code == 404
    body = reply.json()
    assert body["error"]["type"] == "resource_not_found"
    assert (body["status"], body["status_message"]) == ("error", "resource_not_found")


# --------------------------------------------------------------------------- Vertex AI

VERTEX = "/vertex/v1/projects/p/locations/us-central1/publishers/google/models/"


def vertex_rendered(emulator, operation: str) -> None:
    """Wait for the operation's clip itself: a done operation answers with it, and on a busy
    machine a first render can take longer than a request's timeout."""
    emulator.job("vertex", operation.rpartition("/")[2]).clip.result(timeout=300)
    wait_until_done(emulator)


CLIP = {"durationSeconds": 4}  # the size the provider tests render too (the cache)


@pytest.fixture
def vertex_bearer(emulator, client):
    """A token from the emulator's token service, got the way Studio gets one."""
    from studio.providers.vertex import auth

    return {"Authorization": f"Bearer {auth.bearer(client)}"}


def test_vertex_wants_a_token_its_token_service_issued(emulator, client):
    url = f"{emulator.origin}{VERTEX}veo-3.1-lite-generate-001:predictLongRunning"
    for headers in ({}, {"Authorization": "Bearer made-up"}, GOOGLE):
        reply = client.post(url, headers=headers, json={"instances": [{"prompt": "p"}]})
        assert reply.status_code == 401
        assert reply.json()["error"]["status"] == "UNAUTHENTICATED"


def test_vertex_token_service_takes_only_a_signed_jwt_bearer_grant(emulator, client):
    token = f"{emulator.origin}/vertex/oauth2/token"
    wrong_grant = client.post(token, data={"grant_type": "password", "assertion": "x"})
    assert wrong_grant.json() == {
        "error": "unsupported_grant_type", "error_description": "Invalid grant_type."
    }  # fmt: skip
    header = base64.urlsafe_b64encode(b'{"alg": "none"}').decode().rstrip("=")
    unsigned = client.post(
        token,
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
              "assertion": f"{header}.{header}.c2ln"},
    )  # fmt: skip
    assert (unsigned.status_code, unsigned.json()["error"]) == (400, "invalid_grant")


def test_vertex_refuses_unknown_fields_and_wrong_types_at_once(emulator, client, vertex_bearer):
    url = f"{emulator.origin}{VERTEX}veo-3.1-lite-generate-001:predictLongRunning"
    for parameters, words in (
        ({"durationSecs": 8}, 'Unknown name "durationSecs"'),
        ({"durationSeconds": "8"}, "Invalid value at 'parameters.durationSeconds'"),
        ({"generateAudio": "yes"}, "Invalid value at 'parameters.generateAudio'"),
        ({"aspectRatio": "4:3"}, "aspectRatio must be one of 16:9, 9:16"),
    ):
        body = {"instances": [{"prompt": "p"}], "parameters": parameters}
        reply = client.post(url, headers=vertex_bearer, json=body)
        assert reply.status_code == 400
        assert reply.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert words in reply.json()["error"]["message"]


def test_vertex_operations_are_fetched_with_a_post_never_a_get(emulator, client, vertex_bearer):
    model = f"{emulator.origin}{VERTEX}veo-3.1-lite-generate-001"
    body = {"instances": [{"prompt": "p"}], "parameters": CLIP}
    name = client.post(f"{model}:predictLongRunning", headers=vertex_bearer, json=body).json()[
        "name"
    ]
    assert (
        client.get(f"{emulator.origin}/vertex/v1/{name}", headers=vertex_bearer).status_code == 404
    )
    fetch = f"{model}:fetchPredictOperation"
    extra = client.post(fetch, headers=vertex_bearer, json={"operationName": name, "view": 1})
    assert extra.status_code == 400
    vertex_rendered(emulator, name)
    done = client.post(fetch, headers=vertex_bearer, json={"operationName": name}).json()
    assert done["done"] is True
    (clip,) = done["response"]["videos"]
    assert (
        clip["mimeType"] == "video/mp4"
        and base64.b64decode(clip["bytesBase64Encoded"])[4:8] == b"ftyp"
    )


def test_vertex_writes_to_the_bucket_named_and_storage_wants_the_name_encoded(
    emulator, client, vertex_bearer
):
    model = f"{emulator.origin}{VERTEX}veo-3.1-lite-generate-001"
    body = {"instances": [{"prompt": "p"}], "parameters": {**CLIP, "storageUri": "gs://clips/out/"}}
    name = client.post(f"{model}:predictLongRunning", headers=vertex_bearer, json=body).json()
    vertex_rendered(emulator, name["name"])
    done = client.post(
        f"{model}:fetchPredictOperation",
        headers=vertex_bearer,
        json={"operationName": name["name"]},
    ).json()
    uri = done["response"]["videos"][0]["gcsUri"]
    path = uri.removeprefix("gs://clips/")
    objects = f"{emulator.origin}/vertex/storage/storage/v1/b/clips/o"
    encoded = f"{objects}/{path.replace('/', '%2F')}?alt=media"
    got = client.get(encoded, headers=vertex_bearer)
    assert (got.status_code, got.headers["content-type"]) == (200, "video/mp4")
    assert client.get(f"{objects}/{path}?alt=media", headers=vertex_bearer).status_code == 404
    refused = client.get(encoded)
    assert refused.status_code == 401
    assert refused.json()["error"]["errors"][0]["reason"] == "authError"


# --------------------------------------------------------------------------- failures


def test_a_transient_failure_happens_once_then_recovers(emulator, client):
    url = f"{emulator.origin}/aimlapi/v2/video/generations"
    body = {"model": "google/veo-3.1-lite-generate-001", "prompt": "p [fail:rate_limit@submit]"}
    first = client.post(url, headers=BEARER, json=body)
    assert first.status_code == 429
    assert first.headers["retry-after"] == str(emulator.retry_after)
    assert client.post(url, headers=BEARER, json=body).status_code == 200


def test_a_failure_for_every_job_comes_from_the_command_line_option(emulator, client):
    emulator.fail = [FailureSpec("server_error", "submit", times=0)]
    for _ in range(2):
        reply = client.post(
            f"{emulator.origin}/oxen/api/ai/queue",
            headers=BEARER,
            json={"model": "google-veo-3-1-lite", "prompt": "p"},
        )
        assert reply.status_code == 500


def test_a_malformed_reply_is_not_json(emulator, client):
    reply = client.post(
        f"{emulator.origin}/fal/queue/fal-ai/veo3.1/lite",
        headers=FAL,
        json={"prompt": "p [fail:malformed@submit]"},
    )
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()


def test_unknown_failure_kinds_and_stages_are_refused():
    with pytest.raises(ValueError, match="unknown failure kind 'boom'"):
        Emulator(fail=["boom"])
    with pytest.raises(ValueError, match="unknown stage 'later'"):
        FailureSpec("policy", "later")


def test_the_command_refuses_an_unknown_failure_before_listening():
    command = [sys.executable, "-m", "emulator", "--fail", "boom", "--port", "0"]
    ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0
    assert "unknown failure kind" in ran.stderr

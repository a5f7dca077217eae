"""Webhooks: real Ed25519 keys and Standard Webhooks secrets, fal's keys fetched over real
loopback HTTP from the emulator's JWKS, deliveries posted through the real views; end to end,
the emulator itself calls a live Studio and the job finishes with no polling step."""

import base64
import json
import logging
import secrets
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.utils import timezone

from emulator import (
    FAL_USER_ID,
    Reply,
    fal_jwks,
    fal_webhook_signature,
    standard_webhook_signature,
)
from studio import following, webhooks
from studio.models import Job, WebhookDelivery
from studio.providers.fal import webhook as fal_webhook
from tests.emulator import new_job, submitted, use_emulator

FAL_URL = "/webhooks/fal/"
GEMINI_URL = "/webhooks/gemini/"


@pytest.fixture
def emulator(settings, db):
    return use_emulator(settings)


def done_at_provider(emulator, job: Job) -> Job:
    """Wait until the emulator has finished the job (it answers by elapsed time)."""
    time.sleep(emulator.latency + 0.05)
    return job


def status_calls(emulator, provider: str) -> list:
    marker = "/status" if provider == "fal" else "/operations/"
    return [r for r in emulator.requests_to(provider, "GET") if marker in r.path]


def jwks_fetches(emulator, path: str = "/fal/jwks.json") -> int:
    return len([r for r in emulator.requests_to("fal", "GET") if r.path == path])


# --------------------------------------------------------------------------- fal


def fal_body(request_id: str, **extra) -> bytes:
    envelope = {"request_id": request_id, "gateway_request_id": request_id, "status": "OK"}
    return json.dumps({**envelope, "payload": {"video": {"url": "x"}}, **extra}).encode()


def fal_headers(
    key: Ed25519PrivateKey, request_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": FAL_USER_ID,
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": fal_webhook_signature(key, request_id, FAL_USER_ID, stamp, body),
    }


def post(client, url: str, body: bytes, headers: dict[str, str]):
    return client.post(url, data=body, content_type="application/json", headers=headers)


@pytest.fixture
def fal_job(emulator, creator):
    return done_at_provider(emulator, submitted(new_job(creator, "fal")))


def test_a_signed_fal_webhook_checks_its_job_at_once(emulator, client, fal_job):
    body = fal_body(fal_job.provider_job_id)
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)

    response = post(client, FAL_URL, body, headers)

    assert response.status_code == 200
    fal_job.refresh_from_db()
    assert fal_job.status == Job.Status.FINISHING  # the finishing task is queued
    assert len(status_calls(emulator, "fal")) == 1


def test_a_fal_webhook_signed_by_another_key_is_refused(emulator, client, fal_job, caplog):
    body = fal_body(fal_job.provider_job_id)
    headers = fal_headers(Ed25519PrivateKey.generate(), fal_job.provider_job_id, body)

    with caplog.at_level(logging.WARNING, logger="studio.views"):
        response = post(client, FAL_URL, body, headers)

    assert response.status_code == 401
    fal_job.refresh_from_db()
    assert fal_job.status == Job.Status.SUBMITTED
    assert status_calls(emulator, "fal") == []
    assert "refused a fal webhook: the signature matches none of fal's keys" in caplog.text
    assert headers["X-Fal-Webhook-Signature"] not in caplog.text


def test_a_tampered_fal_body_is_refused(emulator, client, fal_job):
    body = fal_body(fal_job.provider_job_id)
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)
    tampered = body.replace(b'"OK"', b'"ERROR"')

    assert post(client, FAL_URL, tampered, headers).status_code == 401
    assert status_calls(emulator, "fal") == []


def test_the_body_is_verified_as_sent_not_as_reserialised(emulator, client, fal_job):
    # Same JSON, other spacing: the signature covers the bytes, so only the signed ones pass.
    body = json.dumps(json.loads(fal_body(fal_job.provider_job_id)), indent=2).encode()
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)
    assert post(client, FAL_URL, body, headers).status_code == 200
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    headers = fal_headers(emulator.fal_signing_key, "other", body)
    assert post(client, FAL_URL, compact, headers).status_code == 401


@pytest.mark.parametrize("skew", [-305, 305], ids=["stale", "from-the-future"])
def test_a_fal_webhook_outside_the_window_is_refused(emulator, client, fal_job, skew):
    body = fal_body(fal_job.provider_job_id)
    stamp = int(time.time()) + skew
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body, timestamp=stamp)

    response = post(client, FAL_URL, body, headers)

    assert response.status_code == 401
    assert b"window 300 s" in response.content
    assert status_calls(emulator, "fal") == []


def test_a_replayed_fal_webhook_has_no_second_effect(emulator, client, fal_job):
    body = fal_body(fal_job.provider_job_id)
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)
    assert post(client, FAL_URL, body, headers).status_code == 200
    fal_job.refresh_from_db()
    Job.objects.filter(pk=fal_job.pk).update(status=Job.Status.RUNNING)  # as if not yet done

    again = post(client, FAL_URL, body, headers)
    # The signature in capitals is the same signature.
    shouted = {**headers, "X-Fal-Webhook-Signature": headers["X-Fal-Webhook-Signature"].upper()}
    shouted_again = post(client, FAL_URL, body, shouted)

    assert (again.status_code, shouted_again.status_code) == (200, 200)
    assert len(status_calls(emulator, "fal")) == 1
    assert Job.objects.get(pk=fal_job.pk).status == Job.Status.RUNNING
    assert WebhookDelivery.objects.filter(provider="fal").count() == 1


def test_the_follower_forgets_deliveries_only_once_they_are_too_old_to_replay(db, settings):
    settings.STUDIO_FOLLOW_STEP_SECONDS = 0
    now = timezone.now()
    for name, age in (("old", webhooks.REMEMBER + timedelta(minutes=1)), ("recent", timedelta(0))):
        WebhookDelivery.objects.create(provider="fal", delivery_id=name, signature=name)
        WebhookDelivery.objects.filter(delivery_id=name).update(received_at=now - age)
    following.follow()
    assert list(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == ["recent"]


def test_a_fresh_retry_of_the_same_fal_webhook_is_harmless(emulator, client, fal_job):
    # fal retries with a new timestamp (a new signature): checked again, moved once.
    body = fal_body(fal_job.provider_job_id)
    first = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)
    retry = fal_headers(
        emulator.fal_signing_key, fal_job.provider_job_id, body, timestamp=int(time.time()) - 5
    )
    assert post(client, FAL_URL, body, first).status_code == 200
    assert post(client, FAL_URL, body, retry).status_code == 200
    fal_job.refresh_from_db()
    assert fal_job.status == Job.Status.FINISHING
    assert len(status_calls(emulator, "fal")) == 1  # the job no longer waits at fal


GOOD = "good"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"X-Fal-Webhook-Signature": None}, 400),
        ({"X-Fal-Webhook-Timestamp": None}, 400),
        ({"X-Fal-Webhook-Request-Id": None}, 400),
        ({"X-Fal-Webhook-User-Id": None}, 400),
        ({"X-Fal-Webhook-Signature": "not hex at all"}, 400),
        ({"X-Fal-Webhook-Signature": "abcd"}, 400),  # 2 bytes, not 64
        ({"X-Fal-Webhook-Signature": "ab" * 65}, 400),
        ({"X-Fal-Webhook-Signature": "00" * 64}, 401),  # well formed, wrong
        ({"X-Fal-Webhook-Timestamp": "yesterday"}, 400),
        ({"X-Fal-Webhook-Timestamp": "-5"}, 400),
        ({"X-Fal-Webhook-Timestamp": "9" * 40}, 400),
        ({"X-Fal-Webhook-Timestamp": "١٧٠٠٠٠٠٠٠٠"}, 400),  # digits, but not ASCII ones
        ({"X-Fal-Webhook-Request-Id": "r" * 300}, 400),
        ({"X-Fal-Webhook-User-Id": "someone-else"}, 401),  # signed for another user id
    ],
)
def test_garbled_fal_headers_are_refused_without_an_error(
    emulator, client, fal_job, change, status
):
    body = fal_body(fal_job.provider_job_id)
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    assert post(client, FAL_URL, body, headers).status_code == status
    assert status_calls(emulator, "fal") == []


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe\x00", b"[" * 100_000],
    ids=["empty", "garbage", "list", "string", "not-utf8", "deep"],
)
def test_a_signed_body_that_is_not_a_json_object_is_refused(emulator, client, body):
    headers = fal_headers(emulator.fal_signing_key, "req-1", body)
    response = client.post(FAL_URL, data=body, content_type="text/plain", headers=headers)
    assert response.status_code == 400


def test_only_post_is_accepted(emulator, client):
    assert client.get(FAL_URL).status_code == 405
    assert client.get(GEMINI_URL).status_code == 405


def test_a_signed_fal_webhook_for_no_job_of_ours_is_acknowledged(emulator, client, caplog):
    body = fal_body("someone-elses-request")
    headers = fal_headers(emulator.fal_signing_key, "someone-elses-request", body)
    with caplog.at_level(logging.INFO, logger="studio.webhooks"):
        response = post(client, FAL_URL, body, headers)
    assert response.status_code == 200  # so fal stops retrying
    assert "is for no job Studio is waiting on" in caplog.text
    assert status_calls(emulator, "fal") == []


def test_a_signed_fal_body_with_odd_ids_is_acknowledged_without_an_error(emulator, client):
    body = json.dumps({"request_id": ["a", "list"], "gateway_request_id": {"a": 1}}).encode()
    headers = fal_headers(emulator.fal_signing_key, "req-odd", body)
    assert post(client, FAL_URL, body, headers).status_code == 200


def test_a_signed_gemini_body_with_odd_fields_is_acknowledged_without_an_error(emulator, client):
    body = json.dumps({"data": {"id": ["x"], "user_metadata": "job"}, "user_metadata": 3}).encode()
    headers = gemini_headers(emulator.gemini_webhook_secret, body)
    assert post(client, GEMINI_URL, body, headers).status_code == 200


def test_fals_gateway_request_id_finds_a_retried_request(emulator, client, fal_job):
    body = fal_body("retried-id", gateway_request_id=fal_job.provider_job_id)
    headers = fal_headers(emulator.fal_signing_key, "retried-id", body)
    assert post(client, FAL_URL, body, headers).status_code == 200
    fal_job.refresh_from_db()
    assert fal_job.status == Job.Status.FINISHING


def test_a_jwks_with_several_keys_verifies_with_the_one_that_matches(
    emulator, settings, client, fal_job
):
    other = Ed25519PrivateKey.generate()
    settings.FAL_JWKS_URL = emulator.add_route(
        "GET",
        "/fal/two-keys.json",
        Reply(body=json.dumps(fal_jwks(other.public_key(), emulator.fal_signing_key.public_key()))
              .encode()),
    )  # fmt: skip
    body = fal_body(fal_job.provider_job_id)
    headers = fal_headers(emulator.fal_signing_key, fal_job.provider_job_id, body)
    assert post(client, FAL_URL, body, headers).status_code == 200


def test_fals_keys_are_fetched_once_and_cached(emulator, client):
    for n in range(3):
        body = fal_body(f"unknown-{n}")
        headers = fal_headers(emulator.fal_signing_key, f"unknown-{n}", body)
        assert post(client, FAL_URL, body, headers).status_code == 200
    assert jwks_fetches(emulator) == 1


def test_forged_signatures_refetch_the_keys_at_most_once_per_interval(
    emulator, client, monkeypatch
):
    monkeypatch.setattr(fal_webhook, "JWKS_MIN_REFETCH_SECONDS", 0.5)
    forger = Ed25519PrivateKey.generate()

    def forge(n: int) -> None:
        body = fal_body(f"forged-{n}")
        response = post(client, FAL_URL, body, fal_headers(forger, f"forged-{n}", body))
        assert response.status_code == 401

    for n in range(3):
        forge(n)
    assert jwks_fetches(emulator) == 1  # fetched just now: failures do not fetch again yet
    time.sleep(0.55)
    for n in range(3, 6):
        forge(n)
    assert jwks_fetches(emulator) == 2  # one early refetch per interval, however many fail


def test_a_rotated_key_is_picked_up_by_an_early_refetch(emulator, settings, client, monkeypatch):
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    served = [old]
    settings.FAL_JWKS_URL = emulator.add_route(
        "GET",
        "/fal/rotating.json",
        lambda: Reply(body=json.dumps(fal_jwks(*(k.public_key() for k in served))).encode()),
    )
    body = fal_body("before")
    assert post(client, FAL_URL, body, fal_headers(old, "before", body)).status_code == 200
    served[:] = [new]
    monkeypatch.setattr(fal_webhook, "JWKS_MIN_REFETCH_SECONDS", 0)

    body = fal_body("after")
    assert post(client, FAL_URL, body, fal_headers(new, "after", body)).status_code == 200
    assert jwks_fetches(emulator, "/fal/rotating.json") == 2


def test_keys_older_than_a_day_are_fetched_again(emulator, client, monkeypatch):
    body = fal_body("one")
    response = post(client, FAL_URL, body, fal_headers(emulator.fal_signing_key, "one", body))
    assert response.status_code == 200
    monkeypatch.setattr(fal_webhook, "JWKS_MAX_AGE_SECONDS", 0)
    monkeypatch.setattr(fal_webhook, "JWKS_MIN_REFETCH_SECONDS", 0)
    body = fal_body("two")
    response = post(client, FAL_URL, body, fal_headers(emulator.fal_signing_key, "two", body))
    assert response.status_code == 200
    assert jwks_fetches(emulator) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, b'{"detail": "Not Found"}'),
        Reply(200, b"<html>maintenance</html>", content_type="text/html"),
        Reply(200, b'{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}'),
        Reply(200, b'{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!!"}]}'),
        Reply(200, b'{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ"}]}'),
    ],
    ids=["404", "html", "rsa-only", "bad-base64", "short-key"],
)
def test_unusable_keys_answer_503_so_fal_tries_again_later(emulator, settings, client, reply):
    settings.FAL_JWKS_URL = emulator.add_route("GET", "/fal/broken.json", reply)
    body = fal_body("req")
    response = post(client, FAL_URL, body, fal_headers(emulator.fal_signing_key, "req", body))
    assert response.status_code == 503
    # And the broken URL is not asked again for every delivery.
    post(client, FAL_URL, body, fal_headers(emulator.fal_signing_key, "req", body))
    assert jwks_fetches(emulator, "/fal/broken.json") == 1


def test_an_unreachable_jwks_url_answers_503(emulator, settings, client):
    settings.FAL_JWKS_URL = "http://127.0.0.1:9/jwks.json"  # discard port: nothing listens
    body = fal_body("req")
    response = post(client, FAL_URL, body, fal_headers(emulator.fal_signing_key, "req", body))
    assert response.status_code == 503


# --------------------------------------------------------------------------- Gemini


def gemini_body(job: Job | None = None, operation: str = "", **data) -> bytes:
    if job is not None:
        data.setdefault("user_metadata", {"job": f"studio-job-{job.pk}"})
    if operation:
        data["id"] = operation
    event = {"type": "video.generated", "version": "v1", "timestamp": "2026-01-22T12:00:00Z"}
    return json.dumps({**event, "data": data}).encode()


def gemini_headers(
    secret: str, body: bytes, *, timestamp: int | None = None, message_id: str = ""
) -> dict[str, str]:
    message_id = message_id or f"msg_{secrets.token_hex(8)}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhook_signature(secret, message_id, stamp, body),
    }


def other_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def gemini_job(emulator, creator):
    return done_at_provider(emulator, submitted(new_job(creator, "gemini")))


def test_a_signed_gemini_event_checks_its_job_at_once(emulator, client, gemini_job):
    body = gemini_body(gemini_job)
    response = post(client, GEMINI_URL, body, gemini_headers(emulator.gemini_webhook_secret, body))
    assert response.status_code == 200
    gemini_job.refresh_from_db()
    assert gemini_job.status == Job.Status.FINISHING
    assert len(status_calls(emulator, "gemini")) == 1


def test_a_gemini_event_naming_only_the_operation_finds_the_job(emulator, client, gemini_job):
    # A project-level (static) webhook carries no user_metadata: data.id is the operation.
    operation = gemini_job.provider_job_id.rsplit("/", 1)[1]
    body = gemini_body(operation=operation)
    response = post(client, GEMINI_URL, body, gemini_headers(emulator.gemini_webhook_secret, body))
    assert response.status_code == 200
    gemini_job.refresh_from_db()
    assert gemini_job.status == Job.Status.FINISHING


def test_a_gemini_event_signed_with_another_secret_is_refused(emulator, client, gemini_job):
    body = gemini_body(gemini_job)
    response = post(client, GEMINI_URL, body, gemini_headers(other_secret(), body))
    assert response.status_code == 401
    gemini_job.refresh_from_db()
    assert gemini_job.status == Job.Status.SUBMITTED
    assert status_calls(emulator, "gemini") == []


def test_a_tampered_gemini_body_is_refused(emulator, client, gemini_job):
    body = gemini_body(gemini_job)
    headers = gemini_headers(emulator.gemini_webhook_secret, body)
    tampered = body.replace(b"video.generated", b"video.generatex")
    assert post(client, GEMINI_URL, tampered, headers).status_code == 401


@pytest.mark.parametrize("skew", [-305, 305], ids=["stale", "from-the-future"])
def test_a_gemini_event_outside_the_window_is_refused(emulator, client, gemini_job, skew):
    body = gemini_body(gemini_job)
    headers = gemini_headers(
        emulator.gemini_webhook_secret, body, timestamp=int(time.time()) + skew
    )
    assert post(client, GEMINI_URL, body, headers).status_code == 401
    assert status_calls(emulator, "gemini") == []


def test_a_replayed_gemini_event_has_no_second_effect(emulator, client, gemini_job):
    body = gemini_body(gemini_job)
    headers = gemini_headers(emulator.gemini_webhook_secret, body)
    assert post(client, GEMINI_URL, body, headers).status_code == 200
    Job.objects.filter(pk=gemini_job.pk).update(status=Job.Status.RUNNING)  # as if not yet done
    good = headers["webhook-signature"]
    # The same delivery with an extra (bogus) signature beside the good one is still a replay.
    padded = {**headers, "webhook-signature": f"v1,AAAA {good}"}

    assert post(client, GEMINI_URL, body, headers).status_code == 200
    assert post(client, GEMINI_URL, body, padded).status_code == 200
    assert len(status_calls(emulator, "gemini")) == 1
    assert Job.objects.get(pk=gemini_job.pk).status == Job.Status.RUNNING
    assert WebhookDelivery.objects.filter(provider="gemini").count() == 1


def test_any_of_several_gemini_signatures_may_match(emulator, client, gemini_job):
    # Standard Webhooks: a space-separated list (several while a secret is being rotated).
    body = gemini_body(gemini_job)
    headers = gemini_headers(emulator.gemini_webhook_secret, body)
    wrong = gemini_headers(
        other_secret(), body, timestamp=int(headers["webhook-timestamp"]),
        message_id=headers["webhook-id"],
    )["webhook-signature"]  # fmt: skip
    headers["webhook-signature"] = f"v2,abc {wrong} {headers['webhook-signature']}"
    assert post(client, GEMINI_URL, body, headers).status_code == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"webhook-id": None}, 400),
        ({"webhook-timestamp": None}, 400),
        ({"webhook-signature": None}, 400),
        ({"webhook-timestamp": "soon"}, 400),
        ({"webhook-signature": "v1,"}, 401),
        ({"webhook-signature": "v1,ÿÿÿ"}, 401),  # not ASCII: compared as bytes, no TypeError
        ({"webhook-signature": "nonsense"}, 401),
        ({"webhook-id": "x" * 300}, 400),
    ],
)
def test_garbled_gemini_headers_are_refused_without_an_error(
    emulator, client, gemini_job, change, status
):
    body = gemini_body(gemini_job)
    headers = gemini_headers(emulator.gemini_webhook_secret, body)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    assert post(client, GEMINI_URL, body, headers).status_code == status


def test_gemini_webhooks_are_off_without_a_secret(emulator, settings, client):
    secret = settings.GEMINI_WEBHOOK_SECRET
    settings.GEMINI_WEBHOOK_SECRET = ""
    body = gemini_body(operation="abc")
    assert post(client, GEMINI_URL, body, gemini_headers(secret, body)).status_code == 404


def test_an_unusable_gemini_secret_refuses_without_logging_it(emulator, settings, client, caplog):
    settings.GEMINI_WEBHOOK_SECRET = "whsec_not*base64"
    body = gemini_body(operation="abc")
    with caplog.at_level(logging.INFO):
        response = post(client, GEMINI_URL, body, gemini_headers(other_secret(), body))
    assert response.status_code == 404
    assert "not*base64" not in caplog.text


# --------------------------------------------------------------------------- asking for them


def test_without_a_public_url_no_webhook_is_asked_for(emulator, settings, creator):
    settings.STUDIO_PUBLIC_URL = ""
    submitted(new_job(creator, "fal"))
    submitted(new_job(creator, "gemini"))
    (fal_submit,) = [r for r in emulator.requests_to("fal", "POST") if "/queue/" in r.path]
    assert fal_submit.query == {}
    (gemini_submit,) = emulator.requests_to("gemini", "POST")
    assert "webhookConfig" not in gemini_submit.json


def test_with_a_public_url_fal_is_given_its_webhook(emulator, settings, creator):
    settings.STUDIO_PUBLIC_URL = "https://studio.example.com"
    submitted(new_job(creator, "fal"))
    (fal_submit,) = [r for r in emulator.requests_to("fal", "POST") if "/queue/" in r.path]
    assert fal_submit.query == {"fal_webhook": ["https://studio.example.com/webhooks/fal/"]}


def test_gemini_is_given_a_webhook_only_with_a_public_url_and_a_secret(emulator, settings, creator):
    settings.STUDIO_PUBLIC_URL = "https://studio.example.com"
    settings.GEMINI_WEBHOOK_SECRET = ""
    submitted(new_job(creator, "gemini"))
    settings.GEMINI_WEBHOOK_SECRET = emulator.gemini_webhook_secret
    job = submitted(new_job(creator, "gemini"))

    without, with_secret = emulator.requests_to("gemini", "POST")
    assert "webhookConfig" not in without.json
    assert with_secret.json["webhookConfig"] == {
        "uris": ["https://studio.example.com/webhooks/gemini/"],
        "user_metadata": {"job": f"studio-job-{job.pk}"},
    }


# --------------------------------------------------------------------------- end to end


def wait_for(job: Job, *states: str, timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job.refresh_from_db()
        if job.status in states or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def webhooks_sent(emulator, timeout: float = 10.0) -> list:
    """What the emulator sent, once it has its answer (it records after the reply, which
    comes after the job has already moved)."""
    deadline = time.monotonic() + timeout
    while not emulator.webhooks_sent and time.monotonic() < deadline:
        time.sleep(0.02)
    return emulator.webhooks_sent


@pytest.fixture
def live_studio(emulator, settings, live_server, monkeypatch):
    """Studio served by a live server the emulator can call, with no polling allowed."""
    settings.STUDIO_PUBLIC_URL = live_server.url
    emulator.latency = 1.0

    def no_polling():
        raise AssertionError("a polling step ran")

    monkeypatch.setattr(following, "follow_once", no_polling)
    return emulator


def run_tasks_inline(monkeypatch):
    """From now on django-q2 tasks (the finishing step) run where they are queued: in the
    live server's thread, as the webhook's request queues it."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["fal", "gemini"])
def test_the_providers_webhook_finishes_the_job_without_polling(
    live_studio, live_server, creator, monkeypatch, provider
):
    emulator = live_studio
    job = submitted(new_job(creator, provider))
    assert job.status == Job.Status.SUBMITTED, job.error
    run_tasks_inline(monkeypatch)

    job = wait_for(job, Job.Status.SUCCEEDED, Job.Status.FAILED)

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.clip.width, job.clip.height) == (1280, 720)
    (sent,) = webhooks_sent(emulator)
    assert (sent.provider, sent.status) == (provider, 200)
    assert sent.url == f"{live_server.url}/webhooks/{provider}/"
    # One status call: the one the webhook made. No poll ran before it.
    assert len(status_calls(emulator, provider)) == 1
    assert WebhookDelivery.objects.filter(provider=provider).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_fal_error_webhook_fails_the_job_without_polling(live_studio, creator, monkeypatch):
    emulator = live_studio
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:policy]"))
    run_tasks_inline(monkeypatch)

    job = wait_for(job, Job.Status.FAILED, Job.Status.SUCCEEDED)

    assert job.status == Job.Status.FAILED
    assert "content policy" in job.error
    (sent,) = webhooks_sent(emulator)
    assert sent.json["status"] == "ERROR"
    assert sent.json["error"] == "Invalid status code: 422"
    assert sent.json["payload"]["detail"][0]["type"] == "content_policy_violation"
    assert len(status_calls(emulator, "fal")) == 1

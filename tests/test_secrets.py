"""No key ever reaches a creator, a log line or the database, even when a provider quotes it.

The emulator's `echo_keys` mode quotes the credentials each request carried in the messages
of its replies, as a careless service might; Studio must scrub them before storing, showing
or logging anything a provider said.
"""

import io
import logging

import httpx
import pytest
from django.urls import reverse

from studio import redaction
from studio.models import Job
from tests.emulator import finished, new_job, submitted, use_emulator

KEYS = {
    "FAL_KEY": "sk-fal-3f9c1d2e7a6b5c4d",
    "GEMINI_API_KEY": "AIzaSy-gemini-8e7d6c5b4a39",
    "AIMLAPI_KEY": "sk-aiml-0a1b2c3d4e5f6a7b",
    "OXEN_API_KEY": "oxen-9f8e7d6c5b4a3f2e",
}


@pytest.fixture
def emulator(settings):
    emulator = use_emulator(settings, **KEYS)
    emulator.echo_keys = True
    return emulator


@pytest.fixture
def log_lines():
    """What the product's log handler (the one settings.LOGGING configures) writes."""
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    written = io.StringIO()
    previous = handler.setStream(written)
    yield written
    handler.setStream(previous)


def test_the_emulator_does_echo_the_key_it_was_sent(emulator):
    reply = httpx.post(
        f"{emulator.origin}/aimlapi/v2/video/generations",
        headers={"Authorization": f"Bearer {KEYS['AIMLAPI_KEY']}"},
        json={"model": "google/veo-3.1-lite-generate-001"},  # no prompt: refused
    )
    assert KEYS["AIMLAPI_KEY"] in reply.text


@pytest.mark.parametrize(
    ("provider", "prompt"),
    [
        ("fal", "Pan left [fail:policy@submit]"),
        ("gemini", "Pan left [fail:policy@submit]"),
        ("aimlapi", "Pan left [fail:policy@submit]"),
        ("oxen", "Pan left [fail:policy]"),
    ],
)
def test_a_provider_quoting_the_key_never_puts_it_on_a_page_the_admin_or_the_log(
    emulator, creator, signed_in, admin_client, log_lines, provider, prompt
):
    job = finished(new_job(creator, provider, prompt=prompt))
    assert job.status == Job.Status.FAILED
    assert "[redacted]" in job.error  # the provider did quote it
    shown = [
        job.error,
        signed_in.get(reverse("job", args=[job.pk])).content.decode(),
        signed_in.get(reverse("library")).content.decode(),
        admin_client.get(reverse("admin:studio_job_change", args=[job.pk])).content.decode(),
        admin_client.get(reverse("admin:studio_ledgerentry_changelist")).content.decode(),
        log_lines.getvalue(),
    ]
    for key in KEYS.values():
        assert not [text for text in shown if key in text]


def test_a_retry_logged_with_the_providers_words_is_scrubbed_too(
    emulator, creator, log_lines, settings
):
    settings.STUDIO_LOG_LEVEL = "INFO"
    job = submitted(new_job(creator, "fal", prompt="Pan left [fail:server_error]"))
    assert job.status == Job.Status.QUEUED and "[redacted]" in job.error
    logging.getLogger("studio.jobs").warning("provider said: %s", job.error + KEYS["FAL_KEY"])
    assert KEYS["FAL_KEY"] not in log_lines.getvalue()
    assert "[redacted]" in log_lines.getvalue()


def test_tokens_learned_at_run_time_are_scrubbed(settings):
    token = "ya29.a0AfH6SMBx-learned-bearer-token"
    assert redaction.scrub(f"Bearer {token}") == f"Bearer {token}"
    redaction.remember(token)
    assert redaction.scrub(f"Bearer {token}") == "Bearer [redacted]"
    assert redaction.scrub("a short word") == "a short word"  # nothing under 8 characters

"""Provider health: `manage.py providers check` against the emulator (healthy, a refused key,
a retired model, an unreachable provider), what it records, and where it is shown."""

import io
import socket
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from studio import health, jobs
from studio.models import Job, ProviderStatus
from tests.emulator import new_job, submitted, use_emulator
from tests.factories import radio


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


def check(*names: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("providers", "check", *names, stdout=out)
    except CommandError as failed:
        return out.getvalue() + str(failed), failed.returncode
    return out.getvalue(), 0


def line_of(table: str, label: str) -> list[str]:
    (line,) = [row for row in table.splitlines() if row.startswith(label)]
    return line.split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_configured_provider_is_checked_with_one_cheap_call(emulator, db):
    table, status = check()
    assert status == 0, table
    header = table.splitlines()[0].split()
    assert header[:5] == ["provider", "key", "OK", "model", "OK"]
    for label in ("fal.ai", "AI/ML", "Oxen.ai", "Gemini"):
        assert label in table
    assert "yes" in line_of(table, "fal.ai")[1:3]
    assert "Local renderer" in table and "runs here" in table
    assert "of 12 confirmed" in table  # each row names where its prices come from
    fal = ProviderStatus.objects.get(provider="fal")
    assert (fal.available, fal.key_ok, fal.model_ok) == (True, True, True)
    assert fal.checked_at is not None and fal.latency_ms is not None
    # The documented calls, and nothing that makes a clip.
    assert [r.path for r in emulator.requests_to("fal")] == ["/fal/api/v1/models/pricing"]
    assert [r.path for r in emulator.requests_to("gemini")] == [
        "/gemini/v1beta/models/veo-3.1-lite-generate-001"
    ]
    assert sorted(r.path for r in emulator.requests_to("aimlapi")) == [
        "/aimlapi/model/google/veo-3.1-lite-generate-001",
        "/aimlapi/v2/billing",
    ]
    assert not emulator.requests_to("fal", "POST") and not emulator.requests_to("oxen", "POST")


def test_a_refused_key_fails_the_check_and_marks_the_provider_unavailable(
    emulator, settings, signed_in
):
    settings.FAL_KEY = "invalid"
    table, status = check()
    assert status == 1
    assert "Failed: fal.ai." in table
    assert line_of(table, "fal.ai")[1] == "NO"
    reason = health.unavailable_reason("fal")
    assert reason.startswith("fal.ai refused Studio's key: Authentication required (since ")
    page = signed_in.get(reverse("create")).content.decode()
    assert " disabled" in radio(page, "provider", "fal")
    assert "fal.ai refused Studio&#x27;s key: Authentication required" in page
    # Fixed, checked again: available for everyone again.
    settings.FAL_KEY = "test-fal-key"
    assert check("fal")[1] == 0
    assert health.unavailable_reason("fal") == ""


def test_a_retired_model_fails_the_check_naming_it(emulator, settings, db):
    settings.GEMINI_VEO_MODEL = "veo-3.1-lite-generate-preview"
    table, status = check("gemini")
    assert status == 1
    cells = line_of(table, "Gemini")
    assert cells[2:4] == ["yes", "NO"]  # the key was taken; the model is gone
    assert "is no longer available" in table
    assert "does not serve its model" in health.unavailable_reason("gemini")


def test_an_unknown_model_at_ai_ml_api_fails_its_catalogue_lookup(emulator, settings, db):
    settings.AIMLAPI_MODEL = "google/veo-3-1-lite-generate-preview"
    _, status = check("aimlapi")
    assert status == 1
    status_row = ProviderStatus.objects.get(provider="aimlapi")
    assert (status_row.key_ok, status_row.model_ok, status_row.available) == (True, False, False)


def test_a_provider_that_cannot_be_reached_fails_the_check_but_is_not_marked(
    emulator, settings, db
):
    settings.OXEN_API_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens
    table, status = check("oxen")
    assert status == 1
    assert line_of(table, "Oxen.ai")[1:3] == ["?", "?"]
    assert "could not be reached" in table
    status_row = ProviderStatus.objects.get(provider="oxen")
    assert status_row.available and status_row.checked_at is not None
    assert health.unavailable_reason("oxen") == ""


def test_an_unknown_name_is_refused(db):
    table, status = check("nope")
    assert status == 2 and "There is no provider called 'nope'" in table


def test_a_submit_refused_for_its_model_moves_an_opted_in_job_on(emulator, settings, creator):
    settings.STUDIO_FAILOVER = True
    settings.AIMLAPI_MODEL = "google/veo-3-1-lite-generate-preview"  # never documented
    job = new_job(creator, "aimlapi", mode="text", allow_failover=True, duration=8)
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert (job.status, job.failed_over_from) == (Job.Status.QUEUED, "aimlapi")
    assert "AI/ML API no longer offers this model" in job.error
    assert "received 'google/veo-3-1-lite-generate-preview'" in job.error
    assert not health.unavailable_reason(job.provider)
    assert health.unavailable_reason("aimlapi").startswith(
        "AI/ML API no longer offers the model Studio uses"
    )
    # The job is made where it moved; AI/ML is not offered to anyone meanwhile.
    assert submitted(job).status == Job.Status.SUBMITTED


def test_the_admin_index_shows_each_providers_last_check(emulator, settings, admin_client):
    settings.FAL_KEY = "invalid"
    check()
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="provider-health"' in page
    assert "<strong>unavailable</strong>: fal.ai refused Studio&#x27;s key" in page
    assert "last checked" in page


def test_providers_are_checked_hourly_and_when_a_worker_starts(db, settings, monkeypatch):
    from django_q.signals import post_spawn

    schedule = Schedule.objects.get(name="check-providers")
    assert (schedule.func, schedule.schedule_type) == ("studio.tasks.check_providers", "H")
    # Whichever broker q2 has (the ORM's queue table, or Redis in the stack run).
    asked: list[str] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args: asked.append(func))
    post_spawn.send(sender="django_q", proc_name="Process-1:1")
    assert asked == ["studio.tasks.check_providers"]


def test_a_check_asked_for_again_within_minutes_is_not_run_again(emulator, db):
    assert health.check_unless_recent()
    emulator.requests.clear()
    assert health.check_unless_recent() == []
    assert emulator.requests == []
    ProviderStatus.objects.update(checked_at=timezone.now() - timedelta(hours=1))
    assert health.check_unless_recent()

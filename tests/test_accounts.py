"""Deleting a creator never deletes their money history: one with ledger rows is
deactivated instead (it can no longer sign in), and their ledger, jobs and clips stay."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models import ProtectedError
from django.urls import reverse

from studio import accounts, jobs
from studio.models import Clip, Job, LedgerEntry, Usage
from studio.providers.local import worker
from tests.factories import make_creator, text_job


def finished_job(creator) -> Job:
    """A text-to-video clip made and charged: nothing but the account holds it."""
    job = text_job(creator)
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)
    jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    return job


@pytest.fixture
def boss(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss")
    client.force_login(user)
    return user


def test_the_admin_deactivates_a_creator_with_money_history_instead_of_deleting(
    client, boss, creator
):
    job = finished_job(creator)
    entries = LedgerEntry.objects.filter(creator=creator).count()
    assert entries
    url = reverse("admin:auth_user_delete", args=[creator.pk])
    asked = client.get(url)
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "ana has money history" in page
    assert "will be deactivated instead of deleted" in page
    assert "protected related objects" not in page

    done = client.post(url, {"post": "yes"}, follow=True)
    creator.refresh_from_db()
    assert creator.is_active is False
    assert LedgerEntry.objects.filter(creator=creator).count() == entries
    assert Usage.objects.filter(creator=creator).exists()
    assert Job.objects.filter(pk=job.pk).exists() and Clip.objects.filter(job=job).exists()
    said = [m.message for m in done.context["messages"]]
    assert said == [
        "ana has money history, so the account was deactivated instead of deleted: it can no "
        "longer sign in, and its ledger, jobs and clips stay."
    ]
    logged = LogEntry.objects.get(object_id=str(creator.pk))
    assert (logged.user, logged.get_change_message()) == (
        boss,
        "Deactivated instead of deleted: it has money history.",
    )


def test_a_creator_without_money_history_is_deleted(client, boss):
    newcomer = make_creator("dee")
    client.post(reverse("admin:auth_user_delete", args=[newcomer.pk]), {"post": "yes"})
    assert not get_user_model().objects.filter(pk=newcomer.pk).exists()


def test_accounts_are_deleted_one_at_a_time_in_the_admin(client, boss, creator):
    finished_job(creator)
    changelist = reverse("admin:auth_user_changelist")
    response = client.get(changelist)
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(
        response.wsgi_request
    )


def test_no_other_way_of_deleting_a_creator_takes_the_ledger_with_it(creator):
    finished_job(creator)
    with pytest.raises(ProtectedError):
        creator.delete()
    with pytest.raises(ProtectedError):
        get_user_model().objects.filter(pk=creator.pk).delete()
    assert accounts.delete_account(creator) is False
    creator.refresh_from_db()
    assert creator.is_active is False
    assert LedgerEntry.objects.filter(creator=creator).exists()


def test_delete_account_deletes_an_account_without_history(db):
    newcomer = make_creator("dee")
    assert accounts.delete_account(newcomer) is True
    assert not get_user_model().objects.filter(username="dee").exists()

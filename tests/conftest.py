import os

import pytest

from tests import postgres
from tests.browser import browser, page, studio_url  # noqa: F401 (the browser tests' fixtures)
from tests.factories import make_creator


def pytest_report_header() -> str:
    """Which database the tests run on, so a run's output says it."""
    from django.db import connection

    return f"database: {connection.vendor}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """DATABASE_URL when it is PostgreSQL, else a throwaway server's for the session."""
    given = os.environ.get("DATABASE_URL", "")
    if given.startswith(("postgres://", "postgresql://")):
        yield given
        return
    try:
        with postgres.throwaway_server() as url:
            yield url
    except postgres.PostgresUnavailable as unavailable:
        raise pytest.fail.Exception(str(unavailable), pytrace=False) from None


@pytest.fixture
def creator(db):
    return make_creator("ana")


@pytest.fixture
def other_creator(db):
    return make_creator("ben")


@pytest.fixture
def signed_in(client, creator):
    client.force_login(creator)
    return client


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """What a process learns as it runs starts afresh for each test: pacing's typical
    generation times, the fal webhook keys it fetched, and Vertex AI's credentials."""
    from studio import pacing
    from studio.providers.fal import webhook
    from studio.providers.vertex import auth

    monkeypatch.setattr(pacing, "_typical", {})
    monkeypatch.setattr(webhook, "KEYS", webhook.KeyCache())
    auth.forget()


@pytest.fixture
def register_provider(monkeypatch):
    """Make a test's own provider class known to the registry for one test."""
    from studio.providers import registry

    def register(cls):
        monkeypatch.setitem(registry.LABELS, cls.name, cls.label or cls.name)
        monkeypatch.setitem(registry._classes, cls.name, cls)
        return cls

    return register


@pytest.fixture
def tasks_inline(monkeypatch):
    """Run django-q2 tasks inline, as `sync` mode does, instead of queueing them."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


def pytest_collection_modifyitems(items):
    """Transactional tests empty every table when they end, rows the migrations seeded (the
    price table, the follower's schedule) included: each one gets them back first."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction"):
            kwargs = {**marker.kwargs, "serialized_rollback": True}
            item.add_marker(pytest.mark.django_db(*marker.args, **kwargs), append=False)

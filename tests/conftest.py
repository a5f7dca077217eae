import pytest

from tests.factories import make_creator


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


@pytest.fixture
def tasks_inline(monkeypatch):
    """Run django-q2 tasks inline, as `sync` mode does, instead of queueing them."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)

"""Sign-in throttling (django-axes): five wrong passwords for one account from one address
lock that pair out for 15 minutes, on Studio's sign-in page and the admin's alike, with a
message on the page that says so and until when; an admin can unlock it sooner."""

import html
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import F
from django.urls import reverse

LOGIN_PAGES = [reverse("login"), reverse("admin:login")]
LOCKED = "Too many failed sign-ins for this account from your address"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "sam", password="right-password-1", is_staff=True, is_superuser=True
    )


def sign_in(client, url, username, password, address="203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_five_wrong_passwords_lock_the_account_from_that_address(client, staff, url):
    for _ in range(4):
        refused = sign_in(client, url, "sam", "wrong")
        assert refused.status_code == 200
        assert LOCKED not in refused.content.decode()
    fifth = sign_in(client, url, "sam", "wrong")  # the fifth failure says so at once
    assert fifth.status_code == 429
    assert LOCKED in fifth.content.decode()
    locked = sign_in(client, url, "sam", "right-password-1")
    assert locked.status_code == 429
    page = html.unescape(locked.content.decode())
    assert LOCKED in page
    assert "signing in is locked for 15 minutes" in page
    assert "Ask the studio's admin to unlock it sooner." in page
    assert 'name="password"' in page  # it is the sign-in page, with its form
    assert not signed_in(client)


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_thirty_wrong_passwords_in_a_row_never_get_in(client, staff, url):
    answers = [sign_in(client, url, "sam", f"guess-{n}").status_code for n in range(30)]
    assert answers == [200] * 4 + [429] * 26
    assert sign_in(client, url, "sam", "right-password-1").status_code == 429


def test_the_lock_is_for_that_account_and_address_only(client, staff, creator):
    for _ in range(5):
        sign_in(client, reverse("login"), "sam", "wrong")
    elsewhere = sign_in(client, reverse("login"), "sam", "right-password-1", address="198.51.100.2")
    assert elsewhere.status_code == 302
    client.logout()
    other = sign_in(client, reverse("login"), creator.username, "pw-" + creator.username * 3)
    assert other.status_code == 302


def test_the_lock_ends_after_15_minutes(client, staff):
    from axes.models import AccessAttempt

    for _ in range(5):
        sign_in(client, reverse("login"), "sam", "wrong")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert sign_in(client, reverse("login"), "sam", "right-password-1").status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=2))
    assert sign_in(client, reverse("login"), "sam", "right-password-1").status_code == 302


def test_a_right_password_starts_the_count_again(client, staff):
    for _ in range(4):
        sign_in(client, reverse("login"), "sam", "wrong")
    assert sign_in(client, reverse("login"), "sam", "right-password-1").status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, reverse("login"), "sam", "wrong")
    assert sign_in(client, reverse("login"), "sam", "right-password-1").status_code == 302


def test_an_admin_unlocks_an_account_from_the_admin(client, staff, creator):
    from axes.models import AccessAttempt

    for _ in range(5):
        sign_in(client, reverse("login"), creator.username, "wrong")
    right = "pw-" + creator.username * 3
    assert sign_in(client, reverse("login"), creator.username, right).status_code == 429
    [attempt] = AccessAttempt.objects.all()
    client.force_login(staff)
    listed = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert "Locked Out" in listed.content.decode()
    client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    client.logout()
    unlocked = sign_in(client, reverse("login"), creator.username, right)
    assert unlocked.status_code == 302


def test_behind_a_trusted_proxy_the_lock_is_for_the_address_it_saw(client, staff, settings):
    settings.STUDIO_TRUSTED_PROXIES = 1
    proxy = "10.0.0.5"  # every request arrives from the proxy

    def through_proxy(password, seen, sent_by_client=""):
        forwarded = f"{sent_by_client}, {seen}" if sent_by_client else seen
        return client.post(
            reverse("login"),
            {"username": "sam", "password": password},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    # Five failures from one creator, each pretending to be somewhere else: the address the
    # proxy saw counts, not what they wrote in the header.
    answers = [
        through_proxy("wrong", "203.0.113.7", sent_by_client=f"192.0.2.{n}").status_code
        for n in range(5)
    ]
    assert answers == [200] * 4 + [429]
    assert through_proxy("right-password-1", "203.0.113.7").status_code == 429
    # Someone else behind the same proxy is not locked out with them.
    assert through_proxy("right-password-1", "198.51.100.20").status_code == 302


def test_without_trusted_proxies_the_forwarded_header_is_ignored(client, staff):
    for n in range(5):
        client.post(
            reverse("login"),
            {"username": "sam", "password": "wrong"},
            REMOTE_ADDR="203.0.113.7",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    answer = sign_in(client, reverse("login"), "sam", "right-password-1")
    assert answer.status_code == 429

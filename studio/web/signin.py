"""The page a locked-out sign-in gets (django-axes calls `locked_out`): the same sign-in page
the attempt came from, Studio's or the admin's, saying why and until when, with status 429;
and whose address an attempt counts for (`client_address`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import time_format

TOO_MANY_REQUESTS = 429


def client_address(request: HttpRequest) -> str:
    """The address a sign-in attempt comes from. Behind STUDIO_TRUSTED_PROXIES reverse proxies
    that each append the address they saw to X-Forwarded-For, it is the one the outermost
    proxy saw; entries further left are whatever the client sent, and are never trusted.
    Without proxies (or with a header shorter than their count) it is the connection's."""
    remote: str = request.META.get("REMOTE_ADDR", "")
    proxies: int = settings.STUDIO_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    seen = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    seen = [part for part in seen if part]
    return seen[-proxies] if len(seen) >= proxies else remote


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    until = timezone.localtime(timezone.now() + settings.AXES_COOLOFF_TIME)
    return (
        f"Too many failed sign-ins for this account from your address: signing in is locked "
        f"for {minutes} minutes, until {time_format(until, 'H:i')} ({until.tzname()}). "
        "Ask the studio's admin to unlock it sooner."
    )


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    form = AuthenticationForm(request, data=request.POST or None)
    form.is_valid()  # the backend refuses while locked: the form has the usual error
    form.errors.clear()
    form.add_error(None, lockout_message())
    redirect_to = request.POST.get(REDIRECT_FIELD_NAME, request.GET.get(REDIRECT_FIELD_NAME, ""))
    if request.path == reverse("admin:login"):
        context = {
            **admin.site.each_context(request),
            "form": form,
            "title": "Log in",
            "app_path": request.get_full_path(),
            "username": "",
            REDIRECT_FIELD_NAME: redirect_to,
        }
        return render(request, "admin/login.html", context, status=TOO_MANY_REQUESTS)
    context = {"form": form, REDIRECT_FIELD_NAME: redirect_to}
    return render(request, "registration/login.html", context, status=TOO_MANY_REQUESTS)

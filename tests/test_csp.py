"""Content-Security-Policy (django-csp): every page says where scripts, styles and media may
come from (Studio itself), that no other site may frame it, and no template holds an inline
script, style or event handler for it to refuse. Media keep their own `sandbox` policy.
The browser suite (tests/test_browser.py) checks no page reports a violation."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline script"),
    (re.compile(r"<style\b", re.I), "a style element"),
    (re.compile(r"\sstyle=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=str)
def test_no_template_has_inline_script_or_style(template):
    text = template.read_text()
    for pattern, what in INLINE:
        found = pattern.search(text)
        assert not found, f"{template.relative_to(TEMPLATES)} has {what}: {found.group(0)}"


def policy_of(response) -> dict[str, str]:
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in response["Content-Security-Policy"].split(";"))
        if part
    }


@pytest.mark.parametrize("name", ["login", "create", "library"])
def test_every_page_has_the_policy(signed_in, name):
    policy = policy_of(signed_in.get(reverse(name), follow=True))
    assert policy["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "img-src", "media-src", "connect-src",
                      "form-action"):  # fmt: skip
        assert policy[directive] == "'self'", directive
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"


def test_the_admin_and_errors_have_it_too(client, db):
    for url in ("/admin/login/", "/no/such/page/"):
        assert "frame-ancestors 'none'" in client.get(url)["Content-Security-Policy"]


def test_media_keep_their_sandbox(signed_in, creator):
    from tests.test_views import finished_job

    job = finished_job(creator)
    response = signed_in.get(reverse("clip_poster", args=[job.clip.pk]))
    assert response["Content-Security-Policy"] == "sandbox"

"""The create page and the hosted providers: availability, pre-flight, prices side by side."""

import dataclasses
import json
import re
from html import unescape

import pytest
from django.urls import reverse

from studio.models import Job
from studio.providers.fal.client import FalProvider
from tests.factories import photo, upload

KEYS = {
    "FAL_KEY": "k1",
    "GEMINI_API_KEY": "k2",
    "AIMLAPI_KEY": "k3",
    "OXEN_API_KEY": "k4",
    "VERTEX_PROJECT": "p5",  # with application default credentials, looked up at submit
}


@pytest.fixture
def keys(settings):
    for name, value in KEYS.items():
        setattr(settings, name, value)


def panel(client, **values):
    data = {"mode": "image", "duration": "8", "resolution": "720p", "aspect": "auto", "audio": "on"}
    data.update(values)
    return client.get(reverse("options"), data).content.decode()


def data(html: str, name: str) -> dict:
    """A JSON data attribute of the panel: what the page applies to its fields."""
    return json.loads(unescape(re.search(rf'data-{name}="([^"]*)"', html).group(1)))


def price_row(html: str, provider: str) -> str:
    return re.search(rf'<tr[^>]*data-provider="{provider}".*?</tr>', html, re.S).group(0)


def test_a_provider_without_a_key_is_shown_unavailable_with_the_reason(signed_in, settings):
    settings.FAL_KEY = ""
    page = signed_in.get(reverse("create")).content.decode()
    assert re.search(r'<option value="fal"[^>]*disabled[^>]*>fal.ai \(unavailable\)', page)
    assert "Set FAL_KEY to use fal.ai." in price_row(page, "fal")


def test_vertex_without_a_project_is_shown_unavailable_with_the_reason(signed_in, settings):
    settings.VERTEX_PROJECT = ""
    page = signed_in.get(reverse("create")).content.decode()
    assert re.search(r'<option value="vertex"[^>]*disabled[^>]*>Vertex AI \(unavailable\)', page)
    assert "Set VERTEX_PROJECT and credentials to use Vertex AI." in price_row(page, "vertex")


def test_choosing_an_unavailable_provider_is_refused_with_the_reason(signed_in, settings):
    settings.FAL_KEY = ""
    response = signed_in.post(
        reverse("create"),
        {"mode": "text", "prompt": "rain", "provider": "fal", "duration": "8",
         "resolution": "720p", "aspect": "16:9"},
    )  # fmt: skip
    assert response.context["form"].errors["provider"] == [
        "fal.ai is not available: Set FAL_KEY to use fal.ai."
    ]
    assert not Job.objects.exists()


def test_prices_are_shown_side_by_side_for_the_current_options(signed_in, keys):
    html = panel(signed_in, provider="local", duration="8", resolution="720p")
    assert "$0.00" in price_row(html, "local")
    assert "$0.40" in price_row(html, "fal")
    assert "$0.40" in price_row(html, "gemini")
    assert "$0.48" in price_row(html, "aimlapi")
    assert "$0.40" in price_row(html, "vertex")
    html = panel(signed_in, provider="local", duration="8", resolution="1080p", audio="")
    assert "$0.40" in price_row(html, "fal")
    assert "$0.40" in price_row(html, "vertex")  # its video-only tier
    assert "$0.64" in price_row(html, "gemini")  # which always has sound


def test_switching_provider_keeps_valid_choices_and_fixes_the_rest(signed_in, keys):
    html = panel(signed_in, provider="fal", rendered_for="local", duration="4", resolution="1080p")
    assert data(html, "apply") == {"duration": 8}
    assert 'class="problem"' not in html
    assert "8 s at 1080p" in html
    html = panel(signed_in, provider="local", rendered_for="fal", duration="6", resolution="720p")
    assert data(html, "apply") == {}


def test_switching_to_gemini_turns_sound_on_and_clears_the_seed(signed_in, keys):
    html = panel(signed_in, provider="gemini", rendered_for="local", audio="", seed="42")
    assert data(html, "apply") == {"audio": True, "seed": None}
    assert 'class="problem"' not in html


def test_switching_to_oxen_in_first_last_mode_asks_the_page_to_change_mode(signed_in, keys):
    html = panel(signed_in, provider="oxen", rendered_for="local", mode="first_last")
    assert data(html, "apply") == {"mode": "image"}
    assert data(html, "disabled")["mode"] == ["first_last"]


def test_what_the_provider_would_refuse_is_explained_with_a_fix(signed_in, keys):
    html = panel(signed_in, provider="fal", rendered_for="fal", duration="4", resolution="1080p")
    assert "fal.ai makes 1080p clips only 8 s long; choose 8 s or 720p." in html
    assert 'data-fix="{&quot;duration&quot;: 8}">Use 8 s</button>' in html
    assert data(html, "apply") == {}  # not a switch: the creator's choice stays, explained


def test_unsupported_choices_are_disabled(signed_in, keys):
    html = panel(signed_in, provider="fal", rendered_for="fal")
    assert data(html, "disabled") == {"duration": [], "resolution": [], "aspect": [], "mode": []}
    html = panel(signed_in, provider="oxen", rendered_for="oxen")
    assert data(html, "disabled")["mode"] == ["first_last"]


def test_submit_is_refused_with_the_preflight_message(signed_in, keys):
    response = signed_in.post(
        reverse("create"),
        {"mode": "image", "image": upload(photo(1280, 720)), "prompt": "push in",
         "provider": "fal", "duration": "4", "resolution": "1080p", "aspect": "16:9",
         "audio": "on"},
    )  # fmt: skip
    assert response.context["form"].errors["duration"] == [
        "fal.ai makes 1080p clips only 8 s long; choose 8 s or 720p."
    ]
    assert not Job.objects.exists()


def test_a_seed_for_gemini_is_refused_before_submit(signed_in, keys):
    response = signed_in.post(
        reverse("create"),
        {"mode": "text", "prompt": "rain", "provider": "gemini", "duration": "8",
         "resolution": "720p", "aspect": "16:9", "audio": "on", "seed": "5"},
    )  # fmt: skip
    assert "takes no seed" in response.context["form"].errors["seed"][0]


def test_an_image_too_big_for_the_provider_is_named(signed_in, creator, keys, monkeypatch):
    small_limit = dataclasses.replace(FalProvider.capabilities, max_image_bytes=20_000)
    monkeypatch.setattr(FalProvider, "capabilities", small_limit)
    signed_in.post(reverse("upload_still", args=["image"]), {"image": upload(photo(1280, 720))})
    still = creator.images.get()
    html = panel(signed_in, provider="fal", rendered_for="fal", image_id=str(still.pk))
    assert "fal.ai accepts images up to 0.0 MB; this one is" in html

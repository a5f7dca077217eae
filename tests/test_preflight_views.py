"""The create page and the hosted providers: availability, pre-flight, prices side by side."""

import dataclasses
import json
import re
from html import unescape

import pytest
from django.urls import reverse

from studio.models import Job
from studio.providers.fal.client import FalProvider
from tests.factories import photo, radio, upload

KEYS = {
    "FAL_KEY": "k1", "GEMINI_API_KEY": "k2", "AIMLAPI_KEY": "k3", "OXEN_API_KEY": "k4",
    "GEMINI_VEO_MODEL": "veo-3.1-lite-generate-001",  # a model an operator set: offered
    "VERTEX_PROJECT": "p5",  # with application default credentials, looked up at submit
}  # fmt: skip


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
    """The provider's price (or why it cannot make the clip) on its card in the chooser: the
    rest of the line its price span starts."""
    return re.search(rf'class="provider-price" id="price-{provider}"[^>]*>(.*)', html).group(1)


def test_a_provider_without_a_key_is_shown_unavailable_with_the_reason(signed_in, settings):
    settings.FAL_KEY = ""
    page = signed_in.get(reverse("create")).content.decode()
    assert " disabled" in radio(page, "provider", "fal")
    assert "not set up on this Studio" in price_row(page, "fal")
    assert "FAL_KEY" not in page  # the operator's words stay in the admin


def test_vertex_without_a_project_is_shown_unavailable_with_the_reason(signed_in, settings):
    settings.VERTEX_PROJECT = ""
    page = signed_in.get(reverse("create")).content.decode()
    assert " disabled" in radio(page, "provider", "vertex")
    assert "not set up on this Studio" in price_row(page, "vertex")


def test_choosing_an_unavailable_provider_is_refused_with_the_reason(signed_in, settings):
    settings.FAL_KEY = ""
    response = signed_in.post(
        reverse("create"),
        {"mode": "text", "prompt": "rain", "provider": "fal", "duration": "8",
         "resolution": "720p", "aspect": "16:9"},
    )  # fmt: skip
    assert response.context["form"].errors["provider"] == [
        "fal.ai is not available: not set up on this Studio."
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
    # Gemini always adds sound: it cannot make this silent clip, so it has no price for it.
    assert "always adds sound" in price_row(html, "gemini")
    assert "$" not in price_row(html, "gemini")


def test_switching_provider_keeps_every_value_and_offers_the_fixes(signed_in, keys):
    html = panel(signed_in, provider="fal", rendered_for="local", duration="4", resolution="1080p")
    assert data(html, "apply") == {}  # nothing changes under the creator
    assert "fal.ai makes 1080p clips only 8 s long" in html
    assert 'data-fix="{&quot;duration&quot;: 8}">Use 8 s</button>' in html
    assert 'data-testid="estimate"' not in html  # no price for a clip fal would refuse
    assert "Fix what fal.ai can&#x27;t make first." in html
    html = panel(signed_in, provider="local", rendered_for="fal", duration="6", resolution="720p")
    assert data(html, "apply") == {}
    assert 'class="problem"' not in html


def test_switching_to_gemini_keeps_silence_and_the_seed_explained(signed_in, keys):
    html = panel(signed_in, provider="gemini", rendered_for="local", audio="", seed="42")
    assert data(html, "apply") == {}
    assert "Gemini API always adds sound" in html
    assert "Gemini API takes no seed" in html
    assert 'data-fix="{&quot;audio&quot;: true}">Turn sound on</button>' in html
    assert 'data-fix="{&quot;seed&quot;: null}">Clear the seed</button>' in html
    # Both at once, as one more button.
    assert 'data-fix="{&quot;audio&quot;: true, &quot;seed&quot;: null}">Use everything' in html


def test_switching_to_oxen_in_first_last_mode_keeps_the_mode_and_offers_image(signed_in, keys):
    html = panel(signed_in, provider="oxen", rendered_for="local", mode="first_last")
    assert data(html, "apply") == {}
    assert "Oxen.ai cannot make first and last frame clips" in html
    assert data(html, "disabled")["mode"] == ["first_last"]  # the page keeps it while chosen


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

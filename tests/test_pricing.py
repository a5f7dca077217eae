"""Prices come from the admin-editable table, seeded from shared/providers.md §6."""

from decimal import Decimal

import pytest

from studio import pricing
from studio.models import Job, Price
from tests.factories import clip_options, price_of

pytestmark = pytest.mark.django_db

# providers.md §6, per (resolution, audio); every mode carries the same figure.
SEEDED = {
    "fal": {("720p", True): "0.05", ("720p", False): "0.03",
            ("1080p", True): "0.08", ("1080p", False): "0.05"},
    # Gemini cannot turn audio off, so both rows carry the audio price.
    "gemini": {("720p", True): "0.05", ("720p", False): "0.05",
               ("1080p", True): "0.08", ("1080p", False): "0.08"},
    # Google's list price (research §2.7); the video-only tier is unconfirmed.
    "vertex": {("720p", True): "0.05", ("720p", False): "0.03",
               ("1080p", True): "0.08", ("1080p", False): "0.05"},
    # Provisional: 20% above Google's list price.
    "aimlapi": {("720p", True): "0.06", ("720p", False): "0.06",
                ("1080p", True): "0.10", ("1080p", False): "0.10"},
    "oxen": {("720p", True): "0.06", ("720p", False): "0.06",
             ("1080p", True): "0.10", ("1080p", False): "0.10"},
}  # fmt: skip
EVERY_OPTION = [
    (provider, mode, resolution, audio, seconds)
    for provider, figures in SEEDED.items()
    for mode in Job.Mode.values
    for (resolution, audio) in figures
    for seconds in Job.DURATIONS
]


@pytest.mark.parametrize(("provider", "mode", "resolution", "audio", "seconds"), EVERY_OPTION)
def test_every_seeded_price_is_rate_times_seconds(provider, mode, resolution, audio, seconds):
    cost = price_of(
        provider=provider, mode=mode, resolution=resolution, audio=audio, seconds=seconds
    )
    assert isinstance(cost, Decimal)
    assert cost == Decimal(SEEDED[provider][(resolution, audio)]) * seconds


def test_fal_examples_from_its_pricing_page():
    # "A 4 second video at 720p with audio will cost $0.20"
    fal = {"provider": "fal", "mode": "image", "audio": True}
    four = price_of(**fal, resolution="720p", seconds=4)
    eight = price_of(**fal, resolution="1080p", seconds=8)
    assert (four, eight) == (Decimal("0.20"), Decimal("0.64"))


@pytest.mark.parametrize("mode", Job.Mode.values)
@pytest.mark.parametrize("resolution", Job.Resolution.values)
@pytest.mark.parametrize("audio", [True, False])
def test_local_renderer_is_free(mode, resolution, audio):
    assert price_of(
        provider="local", mode=mode, resolution=resolution, audio=audio, seconds=8
    ) == Decimal("0.00")


def test_every_seeded_price_names_its_source_and_provisional_ones_say_so():
    assert Price.objects.count() == 5 * 3 * 2 * 2
    assert not Price.objects.filter(source="").exists()
    assert set(Price.objects.filter(confirmed=False).values_list("provider", flat=True)) == {
        "aimlapi", "oxen", "fal",  # fal's text and first-last rows are assumed equal to image
        "vertex",  # its video-only tier has one reading of Google's page, not two
    }  # fmt: skip
    vertex = Price.objects.filter(provider="vertex")
    assert {(p.audio, p.confirmed) for p in vertex} == {(True, True), (False, False)}
    assert {str(p.as_of) for p in vertex} == {"2026-10-08"}
    gemini = Price.objects.filter(provider="gemini").first()
    assert str(gemini.as_of) == "2026-03-31"


def test_estimate_is_quantised_to_the_cent():
    Price.objects.filter(provider="fal", resolution="720p", audio=False).update(
        usd_per_second=Decimal("0.0333")
    )
    cost = price_of(provider="fal", mode="image", resolution="720p", audio=False, seconds=6)
    assert str(cost) == "0.20"


def test_an_edited_price_is_used_from_then_on():
    Price.objects.filter(provider="fal", mode="image", resolution="720p", audio=True).update(
        usd_per_second=Decimal("0.07")
    )
    quote = pricing.quote(
        "fal", clip_options(mode="image", resolution="720p", audio=True, duration=8)
    )
    assert quote == pricing.Quote(Decimal("0.07"), Decimal("0.56"))


def test_a_missing_price_is_refused_not_guessed():
    Price.objects.filter(provider="fal", mode="text").delete()
    with pytest.raises(pricing.UnknownPrice, match="fal at 720p"):
        price_of(provider="fal", mode="text", resolution="720p", audio=True, seconds=4)


def test_every_provider_s_cost_in_one_query_is_what_quote_says(django_assert_num_queries):
    Price.objects.filter(provider="oxen").delete()
    Price.objects.filter(provider="fal", mode="image", resolution="1080p", audio=True).update(
        usd_per_second=Decimal("0.0333")
    )
    options = clip_options(mode="image", resolution="1080p", audio=True, duration=6)
    with django_assert_num_queries(1):
        found = pricing.costs(options)
    assert found["oxen"] is None and found["local"] == Decimal("0.00")
    assert found["fal"] == Decimal("0.20")
    for name, cost in found.items():
        if cost is not None:
            assert cost == pricing.quote(name, options).cost, name

from decimal import Decimal

import pytest

from studio import pricing

FAL = {
    ("720p", True): "0.05",
    ("720p", False): "0.03",
    ("1080p", True): "0.08",
    ("1080p", False): "0.05",
}


@pytest.mark.parametrize("seconds", [4, 6, 8])
@pytest.mark.parametrize(("resolution", "audio"), list(FAL))
def test_fal_price_is_rate_times_seconds(resolution, audio, seconds):
    cost = pricing.estimate(provider="fal", resolution=resolution, audio=audio, seconds=seconds)
    assert cost == Decimal(FAL[(resolution, audio)]) * seconds
    assert isinstance(cost, Decimal)


def test_fal_examples_from_its_pricing_page():
    # "A 4 second video at 720p with audio will cost $0.20"
    assert pricing.estimate(provider="fal", resolution="720p", audio=True, seconds=4) == Decimal(
        "0.20"
    )
    assert pricing.estimate(provider="fal", resolution="1080p", audio=True, seconds=8) == Decimal(
        "0.64"
    )


@pytest.mark.parametrize("audio", [True, False])
def test_gemini_charges_the_audio_price_either_way(audio):
    assert pricing.estimate(
        provider="gemini", resolution="720p", audio=audio, seconds=8
    ) == Decimal("0.40")
    assert pricing.estimate(
        provider="gemini", resolution="1080p", audio=audio, seconds=6
    ) == Decimal("0.48")


@pytest.mark.parametrize("resolution", ["720p", "1080p"])
@pytest.mark.parametrize("audio", [True, False])
def test_local_renderer_is_free(resolution, audio):
    assert pricing.estimate(
        provider="local", resolution=resolution, audio=audio, seconds=8
    ) == Decimal("0.00")


def test_estimate_is_quantised_to_the_cent():
    assert (
        str(pricing.estimate(provider="fal", resolution="720p", audio=False, seconds=6)) == "0.18"
    )


def test_unknown_price_is_refused_not_guessed():
    with pytest.raises(pricing.UnknownPrice, match="nowhere at 720p"):
        pricing.estimate(provider="nowhere", resolution="720p", audio=True, seconds=4)

"""What a clip costs, before it is made: pure functions over Decimal, never float."""

from decimal import Decimal

# USD per second of output, by (provider, resolution, audio). Sources: shared/providers.md §6.
# fal: fal.ai model page for veo3.1/lite/image-to-video (llms.txt, stored 2026).
# gemini: third-party copies of Google's pricing page (launch 2026-03-31); Gemini cannot turn
#   audio off through the documented API, so both rows carry the with-audio price.
# aimlapi, oxen: UNCONFIRMED (no published figure in providers.md). Provisional: 20% above
#   Google's list price, so an estimate errs high rather than low; AI/ML API reports
#   `meta.usage.usd_spent` per job and Oxen publishes `cost_per_second*` on its model page,
#   to check against on the first live calls.
PRICE_PER_SECOND: dict[tuple[str, str, bool], Decimal] = {
    ("local", "720p", True): Decimal("0"),
    ("local", "720p", False): Decimal("0"),
    ("local", "1080p", True): Decimal("0"),
    ("local", "1080p", False): Decimal("0"),
    ("fal", "720p", True): Decimal("0.05"),
    ("fal", "720p", False): Decimal("0.03"),
    ("fal", "1080p", True): Decimal("0.08"),
    ("fal", "1080p", False): Decimal("0.05"),
    ("gemini", "720p", True): Decimal("0.05"),
    ("gemini", "720p", False): Decimal("0.05"),
    ("gemini", "1080p", True): Decimal("0.08"),
    ("gemini", "1080p", False): Decimal("0.08"),
    ("aimlapi", "720p", True): Decimal("0.06"),
    ("aimlapi", "720p", False): Decimal("0.06"),
    ("aimlapi", "1080p", True): Decimal("0.10"),
    ("aimlapi", "1080p", False): Decimal("0.10"),
    ("oxen", "720p", True): Decimal("0.06"),
    ("oxen", "720p", False): Decimal("0.06"),
    ("oxen", "1080p", True): Decimal("0.10"),
    ("oxen", "1080p", False): Decimal("0.10"),
}

CENT = Decimal("0.01")


class UnknownPrice(LookupError):
    pass


def price_per_second(provider: str, resolution: str, audio: bool) -> Decimal:
    try:
        return PRICE_PER_SECOND[(provider, resolution, audio)]
    except KeyError:
        raise UnknownPrice(f"No price is known for {provider} at {resolution}.") from None


def estimate(*, provider: str, resolution: str, audio: bool, seconds: int) -> Decimal:
    """The price of one clip, in USD, to the cent (the figure shown and stored on the job)."""
    return (price_per_second(provider, resolution, audio) * seconds).quantize(CENT)

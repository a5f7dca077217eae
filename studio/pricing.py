"""What a clip costs, before it is made: Decimal, never float.

Prices live in the `Price` table (admin-editable, seeded from shared/providers.md §6 with each
figure's source). A job copies the price it was created at, so what a clip was charged never
changes with the table. The local renderer is free and has no rows.
"""

from dataclasses import dataclass
from decimal import Decimal

from studio.models import Price

CENT = Decimal("0.01")
FREE_PROVIDERS = frozenset({"local"})


class UnknownPrice(LookupError):
    pass


@dataclass(frozen=True)
class Quote:
    usd_per_second: Decimal
    cost: Decimal  # to the cent: the figure shown and reserved


def price_per_second(provider: str, mode: str, resolution: str, audio: bool) -> Decimal:
    if provider in FREE_PROVIDERS:
        return Decimal("0")
    price = (
        Price.objects.filter(provider=provider, mode=mode, resolution=resolution, audio=audio)
        .values_list("usd_per_second", flat=True)
        .first()
    )
    if price is None:
        raise UnknownPrice(
            f"No price is set for {provider} at {resolution} ({mode}); "
            "an admin must add it to the price table first."
        )
    return price


def quote(*, provider: str, mode: str, resolution: str, audio: bool, seconds: int) -> Quote:
    per_second = price_per_second(provider, mode, resolution, audio)
    return Quote(per_second, (per_second * seconds).quantize(CENT))


def estimate(*, provider: str, mode: str, resolution: str, audio: bool, seconds: int) -> Decimal:
    """The price of one clip, in USD, to the cent."""
    return quote(
        provider=provider, mode=mode, resolution=resolution, audio=audio, seconds=seconds
    ).cost

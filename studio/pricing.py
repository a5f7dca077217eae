"""What a clip costs, before it is made: Decimal, never float.

Prices live in the `Price` table (admin-editable). Each provider's package holds its seed
data with each figure's source (studio/providers/<name>/prices.py); `seed_missing_prices`
adds the rows that are missing after every `migrate`, and never changes one an admin edited.
A job copies the price it was created at, so what a clip was charged never changes with the
table. Free providers (the local renderer) have no rows.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from studio.models import Price
from studio.options import ClipOptions
from studio.providers.registry import provider_class, provider_classes

CENT = Decimal("0.01")


class UnknownPrice(LookupError):
    pass


@dataclass(frozen=True)
class Quote:
    usd_per_second: Decimal
    cost: Decimal  # to the cent: the figure shown and reserved


def quote(provider: str, options: ClipOptions) -> Quote:
    """The price of one clip of `options` at `provider`, or UnknownPrice."""
    if provider_class(provider).free:
        return Quote(Decimal("0"), Decimal("0.00"))
    per_second = (
        Price.objects.filter(
            provider=provider,
            mode=options.mode,
            resolution=options.resolution,
            audio=options.audio,
        )
        .values_list("usd_per_second", flat=True)
        .first()
    )
    if per_second is None:
        raise UnknownPrice(
            f"No price is set for {provider} at {options.resolution} ({options.mode}); "
            "an admin must add it to the price table first."
        )
    return Quote(per_second, (per_second * options.duration).quantize(CENT))


def costs(options: ClipOptions) -> dict[str, Decimal | None]:
    """What one clip of `options` costs at every provider (None where no price is set), in
    one query: the create page shows them all side by side. The same figures as `quote`."""
    per_second = dict(
        Price.objects.filter(
            mode=options.mode, resolution=options.resolution, audio=options.audio
        ).values_list("provider", "usd_per_second")
    )
    found: dict[str, Decimal | None] = {}
    for name, cls in provider_classes().items():
        rate = Decimal("0") if cls.free else per_second.get(name)
        found[name] = None if rate is None else (rate * options.duration).quantize(CENT)
    return found


def seed_missing_prices(**kwargs: Any) -> None:
    """Add every provider's seeded price that the table lacks (a post_migrate receiver)."""
    for name, cls in provider_classes().items():
        for row in cls.prices:
            Price.objects.get_or_create(
                provider=name,
                mode=row.mode,
                resolution=row.resolution,
                audio=row.audio,
                defaults={
                    "usd_per_second": row.usd_per_second,
                    "source": row.source,
                    "as_of": row.as_of,
                    "confirmed": row.confirmed,
                },
            )

"""Oxen.ai's prices per second of output, seeded into the admin's price table
(studio/pricing.py). It publishes no figure we could confirm (shared/providers.md §6): these
are provisional, 20% above Google's list price so an estimate errs high."""

import datetime

from studio.providers.base import price_rows

SOURCE = (
    "Provisional: no published figure (providers.md §6); 20% above Google's list price so "
    "estimates err high. Check against the provider's bill."
)
# (resolution, audio): USD per second; the same with or without sound.
FIGURES = {
    ("720p", True): "0.06",
    ("720p", False): "0.06",
    ("1080p", True): "0.10",
    ("1080p", False): "0.10",
}

PRICES = price_rows(FIGURES, source=SOURCE, as_of=datetime.date(2026, 11, 20), confirmed=False)

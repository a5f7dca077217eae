"""The Gemini API's prices per second of output (shared/providers.md §6), seeded into the
admin's price table (studio/pricing.py)."""

import datetime
from decimal import Decimal

from studio.options import Mode
from studio.providers.base import PriceRow

SOURCE = (
    "Gemini API pricing page as quoted by Lumenfall, XainFlow and wideframe at launch; "
    "audio cannot be turned off, so no-audio rows carry the audio price"
)
AS_OF = datetime.date(2026, 3, 31)
# (resolution, audio): USD per second.
FIGURES = {
    ("720p", True): "0.05",
    ("720p", False): "0.05",
    ("1080p", True): "0.08",
    ("1080p", False): "0.08",
}

PRICES = tuple(
    PriceRow(mode, resolution, audio, Decimal(usd), SOURCE, AS_OF)
    for mode in Mode.values
    for (resolution, audio), usd in FIGURES.items()
)

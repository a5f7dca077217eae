"""The Gemini API's prices per second of output (shared/providers.md §6), seeded into the
admin's price table (studio/pricing.py)."""

import datetime

from studio.providers.base import price_rows

SOURCE = (
    "Gemini API pricing page as quoted by Lumenfall, XainFlow and wideframe at launch; "
    "audio cannot be turned off, so no-audio rows carry the audio price"
)
# (resolution, audio): USD per second.
FIGURES = {
    ("720p", True): "0.05",
    ("720p", False): "0.05",
    ("1080p", True): "0.08",
    ("1080p", False): "0.08",
}

PRICES = price_rows(FIGURES, source=SOURCE, as_of=datetime.date(2026, 3, 31))

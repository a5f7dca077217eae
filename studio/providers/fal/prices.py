"""fal.ai's prices per second of output (shared/providers.md §6), seeded into the admin's
price table (studio/pricing.py)."""

from studio.providers.base import price_rows

PAGE = "fal.ai/models/fal-ai/veo3.1/lite/image-to-video/llms.txt (no date on the page)"
SAME = (
    "Assumed equal to fal's image-to-video price (providers.md §6: presumably the same; "
    "unconfirmed)"
)
# (resolution, audio): USD per second, from the image-to-video page.
FIGURES = {
    ("720p", True): "0.05",
    ("720p", False): "0.03",
    ("1080p", True): "0.08",
    ("1080p", False): "0.05",
}

PRICES = price_rows(FIGURES, source=PAGE, modes=("image",)) + price_rows(
    FIGURES, source=SAME, confirmed=False, modes=("text", "first_last")
)

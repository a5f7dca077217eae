"""The price table as shared/providers.md §6 gives it, and each existing job's own price."""

import datetime
from decimal import Decimal

from django.db import migrations

FAL_PAGE = "fal.ai/models/fal-ai/veo3.1/lite/image-to-video/llms.txt (no date on the page)"
FAL_SAME = (
    "Assumed equal to fal's image-to-video price (providers.md §6: presumably the same; "
    "unconfirmed)"
)
GEMINI = (
    "Gemini API pricing page as quoted by Lumenfall, XainFlow and wideframe at launch; "
    "audio cannot be turned off, so no-audio rows carry the audio price"
)
PROVISIONAL = (
    "Provisional: no published figure (providers.md §6); 20% above Google's list price so "
    "estimates err high. Check against the provider's bill."
)

# provider: {(resolution, audio): usd per second}
FIGURES = {
    "fal": {("720p", True): "0.05", ("720p", False): "0.03",
            ("1080p", True): "0.08", ("1080p", False): "0.05"},
    "gemini": {("720p", True): "0.05", ("720p", False): "0.05",
               ("1080p", True): "0.08", ("1080p", False): "0.08"},
    "aimlapi": {("720p", True): "0.06", ("720p", False): "0.06",
                ("1080p", True): "0.10", ("1080p", False): "0.10"},
    "oxen": {("720p", True): "0.06", ("720p", False): "0.06",
             ("1080p", True): "0.10", ("1080p", False): "0.10"},
}  # fmt: skip
MODES = ("image", "text", "first_last")


def source(provider: str, mode: str) -> tuple[str, datetime.date | None, bool]:
    if provider == "fal":
        return (FAL_PAGE, None, True) if mode == "image" else (FAL_SAME, None, False)
    if provider == "gemini":
        return GEMINI, datetime.date(2026, 3, 31), True
    return PROVISIONAL, datetime.date(2026, 11, 20), False


def seed(apps, schema_editor):
    Price = apps.get_model("studio", "Price")
    for provider, figures in FIGURES.items():
        for mode in MODES:
            text, as_of, confirmed = source(provider, mode)
            for (resolution, audio), usd in figures.items():
                Price.objects.get_or_create(
                    provider=provider, mode=mode, resolution=resolution, audio=audio,
                    defaults={"usd_per_second": Decimal(usd), "source": text, "as_of": as_of,
                              "confirmed": confirmed},
                )  # fmt: skip
    Job = apps.get_model("studio", "Job")
    for job in Job.objects.exclude(estimated_cost=0).iterator():
        job.price_per_second = (job.estimated_cost / job.duration).quantize(Decimal("0.0001"))
        job.save(update_fields=["price_per_second"])


class Migration(migrations.Migration):
    dependencies = [("studio", "0005_prices_grants_batches")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

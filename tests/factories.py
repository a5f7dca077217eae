"""Test inputs made by the tests themselves: nothing binary is committed."""

import io

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw


def photo(
    width: int = 1280, height: int = 720, fmt: str = "JPEG", mode: str = "RGB", **save
) -> bytes:
    """A photo-like image: gradients and shapes, so motion and crops are visible."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 4):
        shade = int(255 * y / height)
        draw.rectangle([0, y, width, y + 4], fill=(shade, 120, 255 - shade))
    draw.ellipse(
        [width // 3, height // 3, width // 2, height // 2 + height // 6], fill=(250, 210, 40)
    )
    draw.rectangle([width // 10, height // 10, width // 5, height // 4], fill=(20, 20, 20))
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def upload(
    data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def make_creator(username: str = "ana"):
    return get_user_model().objects.create_user(username=username, password="pw-" + username * 3)


def clip_options(**fields):
    """ClipOptions from keyword fields (stills may be SourceImages); the prompt defaults."""
    from studio.models import SourceImage
    from studio.options import STILL_ROLES, ClipOptions, Still

    for role in STILL_ROLES:
        if isinstance(fields.get(role), SourceImage):
            fields[role] = Still.of(fields[role])
    fields.setdefault("prompt", "rain")
    return ClipOptions(**fields)


def create_job(*, creator, provider: str, allow_failover: bool = False, **fields):
    """jobs.create_job with the options given as keywords."""
    from studio import jobs

    return jobs.create_job(
        creator=creator, provider=provider, options=clip_options(**fields),
        allow_failover=allow_failover,
    )  # fmt: skip


def create_jobs(*, creator, provider: str, variations: list[dict], **fields):
    """jobs.create_jobs: one job per variation (keywords that differ from `fields`)."""
    from studio import jobs

    batch = [clip_options(**{**fields, **variation}) for variation in variations]
    return jobs.create_jobs(creator=creator, provider=provider, batch=batch)


def text_job(creator, prompt: str = "rain over the harbour"):
    """A queued text-to-video job on the local renderer."""
    return create_job(
        creator=creator, provider="local", mode="text", prompt=prompt, duration=4,
        resolution="720p", aspect="16:9", audio=False,
    )  # fmt: skip


def set_price(provider: str, usd_per_second: str) -> None:
    """One price for every option of `provider` (a test's own fake provider, say)."""
    from decimal import Decimal

    from studio.models import Job, Price

    for mode in Job.Mode.values:
        for resolution in Job.Resolution.values:
            for audio in (True, False):
                Price.objects.update_or_create(
                    provider=provider, mode=mode, resolution=resolution, audio=audio,
                    defaults={"usd_per_second": Decimal(usd_per_second), "source": "test"},
                )  # fmt: skip


def price_of(*, provider: str, seconds: int, **fields):
    """What one clip of these options costs at `provider` (pricing.quote's cost)."""
    from studio import pricing

    return pricing.quote(provider, clip_options(duration=seconds, **fields)).cost


def radio(html: str, name: str, value: str) -> str:
    """The radio button of choice `value` of field `name` on a page (its whole tag)."""
    import re

    return re.search(rf'<input type="radio" name="{name}" value="{value}"[^>]*>', html).group(0)

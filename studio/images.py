"""Creators' stills: check an upload by its content, normalise it, store it once per creator.

Every rejection names the limit and the actual value, because the creator has to fix it.
"""

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.models import SourceImage

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class ImageRejected(ValueError):
    """The upload cannot be used; the message says why, in the creator's words."""


@dataclass(frozen=True)
class NormalisedImage:
    data: bytes
    width: int
    height: int
    content_type: str
    upload_sha256: str
    warnings: tuple[str, ...] = field(default=())


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def normalise(upload: BinaryIO, *, size: int) -> NormalisedImage:
    """Validate an uploaded still and return it re-encoded as clean 8-bit RGB JPEG.

    Raises ImageRejected with a specific message. The pixel count is checked from the
    header, before anything is decoded, so a decompression bomb is never expanded.
    """
    max_bytes = settings.STUDIO_MAX_UPLOAD_BYTES
    if size > max_bytes:
        raise ImageRejected(
            f"The image is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}."
        )
    if size == 0:
        raise ImageRejected("The file is empty.")

    upload.seek(0)
    raw = upload.read()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
    except UnidentifiedImageError:
        raise ImageRejected(
            "This file is not an image Studio can read. Upload a JPEG, PNG or WebP."
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"The image could not be read ({exc}).") from None

    if image.format not in ACCEPTED_FORMATS:
        raise ImageRejected(f"{image.format} images are not accepted. Upload a JPEG, PNG or WebP.")
    if getattr(image, "n_frames", 1) > 1:
        raise ImageRejected(f"Animated {image.format} images are not accepted; upload a still.")

    width, height = image.size
    max_pixels = settings.STUDIO_MAX_PIXELS
    if width * height > max_pixels:
        raise ImageRejected(
            f"The image is {width}×{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels."
        )
    short_side = min(width, height)
    if short_side < settings.STUDIO_MIN_SHORT_SIDE:
        raise ImageRejected(
            f"The image is {width}×{height}; its short side must be at least "
            f"{settings.STUDIO_MIN_SHORT_SIDE} px."
        )

    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageRejected("The image is damaged or truncated; export it again.") from None

    out = io.BytesIO()
    # Re-encoding without exif= drops every bit of metadata (GPS, camera, comments).
    rgb.save(out, "JPEG", quality=92, subsampling=0, optimize=True)
    notes = []
    if min(rgb.size) < settings.STUDIO_WARN_SHORT_SIDE:
        notes.append(
            f"The image's short side is {min(rgb.size)} px; providers want 720 px or more, "
            "so the clip will look soft."
        )
    return NormalisedImage(
        data=out.getvalue(),
        width=rgb.width,
        height=rgb.height,
        content_type="image/jpeg",
        upload_sha256=digest,
        warnings=tuple(notes),
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def store(owner, image: NormalisedImage) -> SourceImage:
    """Save a normalised image under a generated name, once per creator and content."""
    existing = SourceImage.objects.filter(owner=owner, upload_sha256=image.upload_sha256).first()
    if existing:
        return existing
    name = default_storage.save(f"images/{uuid.uuid4().hex}.jpg", ContentFile(image.data))
    try:
        with transaction.atomic():
            return SourceImage.objects.create(
                owner=owner,
                file=name,
                upload_sha256=image.upload_sha256,
                width=image.width,
                height=image.height,
                content_type=image.content_type,
            )
    except IntegrityError:
        # The same image arrived twice at once: keep the first, drop our copy.
        default_storage.delete(name)
        return SourceImage.objects.get(owner=owner, upload_sha256=image.upload_sha256)


def open_image(name: str) -> Image.Image:
    """A stored still, decoded (stored stills are already normalised RGB)."""
    with default_storage.open(name, "rb") as f:
        image = Image.open(f)
        image.load()
    return image

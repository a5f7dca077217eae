"""Creators' stills: check an upload by its content, normalise it, store it once per creator.

Every rejection names the limit and the actual value, because the creator has to fix it.
Providers charge first and then crop or reject what does not suit them, so everything they
could object to is caught here, before any money is spent.

What is stored and sent is always the normalised image: 8-bit sRGB JPEG, upright, at most
STUDIO_MAX_LONG_SIDE on its long side, with no metadata at all.

Hidden documents ("polyglots"). A file is rejected when it is a valid image but another
program would also read it as a web page, script, PDF or ZIP/JAR. Signatures looked for:
  markup   <html <body <script <iframe <svg <object <embed (followed by space, / or >),
           <!doctype html, <?php  (any letter case)
  PDF      %PDF-
  ZIP/JAR  PK\\x03\\x04 (a file entry) or PK\\x05\\x06 (the end record)
They are looked for where those programs look: in the first 4 KB (browsers sniff the first
512 bytes, PDF readers the first 1,024) and everything after the end of the image (JPEG: the
first end-of-image marker after the first scan; PNG: the IEND chunk; WebP: the RIFF length),
except that in that trailer a ZIP file entry counts only in its first 4 KB, and a ZIP end
record only in the last 64 KB of the file, where ZIP readers look for it. Camera trailers
after a JPEG (a Multi-Picture second image, Samsung or Google motion-photo data) contain
none of these, and four random bytes are too likely to appear by chance in megabytes of
compressed data to be searched for everywhere. The compressed image data itself past 4 KB
is not searched: re-encoding drops anything hidden there.
"""

import hashlib
import io
import logging
import re
import struct
import uuid
import warnings
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, field
from datetime import timedelta
from typing import Protocol

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, ProtectedError, Q
from django.utils import timezone
from PIL import ExifTags, Image, ImageCms, ImageColor, ImageFilter, ImageOps

from studio.models import Job, SourceImage

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Pillow calls a JPEG with a Multi-Picture (MPF) second image "MPO"; cameras write them,
# and the first picture is an ordinary JPEG.
JPEG_FORMATS = ("JPEG", "MPO")
# How each accepted format is named to creators.
_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
OUTPUT_CONTENT_TYPE = "image/jpeg"
JPEG_QUALITY = 92

RATIOS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16)}
RATIO_TOLERANCE = 0.01

_ACCEPTED = "Upload a JPEG, PNG or WebP."
_HEAD_BYTES = 4096
_ZIP_END_WINDOW = 22 + 65535  # a ZIP end record plus the longest archive comment
_MARKUP = re.compile(
    rb"<(?:html|body|script|iframe|svg|object|embed)[\s/>]|<!doctype\s+html|<\?php", re.I
)
# Three times faster than bytes.find over 20 MB of scan data, where FF bytes are common.
_END_OF_IMAGE = re.compile(b"\xff\xd9")
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


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


class Upload(Protocol):
    """What a still arrives as: an uploaded file, or any binary file object."""

    def seek(self, offset: int, /) -> object: ...

    def read(self, size: int = -1, /) -> bytes: ...


class HasSize(Protocol):
    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


@dataclass(frozen=True)
class CropBox:
    left: int
    top: int
    width: int
    height: int


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _sizes(actual: int, limit: int) -> tuple[str, str]:
    """Both sizes in MB, or in bytes when MB would show them as equal (one byte over)."""
    if _megabytes(actual) != _megabytes(limit):
        return _megabytes(actual), _megabytes(limit)
    return f"{actual:,} bytes", f"{limit:,} bytes"


def _dimensions(width: int, height: int) -> str:
    return f"{width}×{height}"


# Validation and normalisation ---------------------------------------------------------


def normalise(upload: Upload, *, size: int) -> NormalisedImage:
    """Validate an uploaded still and return it re-encoded as clean 8-bit sRGB JPEG.

    Raises ImageRejected with a specific message. The pixel count is checked from the
    header, before anything is decoded, so a decompression bomb is never expanded.
    """
    raw = _read(upload, size)
    image = _open(raw)
    kind = _NAMES[image.format or ""]
    frames = getattr(image, "n_frames", 1)
    if image.format not in JPEG_FORMATS and frames > 1:
        raise ImageRejected(
            f"This is an animated {kind} with {frames} frames; upload a still image."
        )

    width, height = image.size
    _check_pixels(width, height)
    minimum = settings.STUDIO_MIN_SHORT_SIDE
    if min(width, height) < minimum:
        raise ImageRejected(
            f"The image is {_dimensions(width, height)}; its short side must be at least "
            f"{minimum} px."
        )
    # Sizes here are as stored; EXIF orientation is applied last and only swaps the two.
    target = _capped_size(width, height)
    if min(target) < minimum:
        raise ImageRejected(
            f"The image is {_dimensions(width, height)}, too long and narrow: scaled to "
            f"{settings.STUDIO_MAX_LONG_SIDE} px on its long side, its short side would be "
            f"{min(target)} px, under the {minimum} px minimum. Crop it closer to 16:9 or 9:16."
        )

    background = ImageColor.getrgb(settings.STUDIO_ALPHA_BACKGROUND)
    # libjpeg and zlib let go of the GIL while decoding, so on a second core the checks on
    # the bytes take no extra time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        examined = pool.submit(_examine, raw, kind)
        rgb = _decode_or_reject(image, kind, target, background)
    content = examined.result()
    if content.hidden_document:
        raise ImageRejected(
            f"This {kind} also contains {content.hidden_document}. Files that hide another "
            "document are not accepted; export the picture again as a plain image."
        )
    if not content.intact:
        raise ImageRejected(
            f"This {kind} is damaged (its checksums do not match) and would come out garbled; "
            "export it again."
        )
    notes = []
    if min(rgb.size) < settings.STUDIO_WARN_SHORT_SIDE:
        notes.append(
            f"The image's short side is {min(rgb.size)} px; providers want "
            f"{settings.STUDIO_WARN_SHORT_SIDE} px or more, so the clip will look soft."
        )
    return NormalisedImage(
        data=encode(rgb),
        width=rgb.width,
        height=rgb.height,
        content_type=OUTPUT_CONTENT_TYPE,
        upload_sha256=content.sha256,
        warnings=tuple(notes),
    )


def check_last_frame(first: HasSize, last: HasSize) -> None:
    """The last frame of a first-and-last-frame clip must match the first frame's size.

    Both are compared as normalised (upright, capped), which is what the provider gets.
    """
    if (first.width, first.height) != (last.width, last.height):
        raise ImageRejected(
            f"The last frame is {_dimensions(last.width, last.height)} but the first frame is "
            f"{_dimensions(first.width, first.height)}; both frames must be the same size."
        )


def over_the_limit() -> str:
    """What a still over STUDIO_MAX_UPLOAD_BYTES is told, when only that much is known."""
    return f"The image is more than {_megabytes(settings.STUDIO_MAX_UPLOAD_BYTES)}, the limit."


def _read(upload: Upload, size: int) -> bytes:
    """The whole upload, read once; never more than one byte past the limit."""
    limit = settings.STUDIO_MAX_UPLOAD_BYTES
    if size > limit:
        actual, allowed = _sizes(size, limit)
        raise ImageRejected(f"The image is {actual}; the limit is {allowed}.")
    upload.seek(0)
    raw = upload.read(limit + 1)
    if len(raw) > limit:
        # The declared size was wrong; all we know is that the file is over the limit.
        raise ImageRejected(over_the_limit())
    if not raw:
        raise ImageRejected("The file is empty.")
    return raw


def _open(raw: bytes) -> Image.Image:
    """Identify the upload by its content (never its name or type) and read its header."""
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 MP (our own, lower limit is checked next) and about odd
            # metadata it then skips; neither is news for the creator.
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(raw), formats=list(ACCEPTED_FORMATS))
    except Image.DecompressionBombError as exc:
        raise _bomb_rejection(exc) from None
    except MemoryError:
        raise
    except Exception:
        # Not one of ours, or one of ours with a broken header: say which.
        raise _unreadable(raw) from None


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_VIDEO_BRANDS = {b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"avc1", b"3gp4", b"3gp5"}
_OURS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"RIFF": "WebP"}


def _unreadable(raw: bytes) -> ImageRejected:
    """The rejection for a file Pillow cannot open as JPEG, PNG or WebP, naming what it is."""
    if name := _other_image_format(raw):
        return ImageRejected(f"{name} images are not accepted. {_ACCEPTED}")
    if document := _document(raw):
        return ImageRejected(f"This file is {document}, not an image Studio can read. {_ACCEPTED}")
    for signature, name in _OURS.items():
        if raw.startswith(signature) and (name != "WebP" or raw[8:12] == b"WEBP"):
            return ImageRejected(f"This {name} is damaged and cannot be read; export it again.")
    if name := _pillow_format(raw):
        return ImageRejected(f"{name} images are not accepted. {_ACCEPTED}")
    return ImageRejected(f"This file is not an image Studio can read. {_ACCEPTED}")


def _other_image_format(raw: bytes) -> str | None:
    """Image formats Pillow cannot name for us: HEIC (no plugin here) and SVG (text)."""
    if raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS:
        return "HEIC"
    if raw[4:8] == b"ftyp" and raw[8:12] in _AVIF_BRANDS:
        return "AVIF"
    if re.search(rb"<svg[\s>]", raw[:_HEAD_BYTES], re.I):
        return "SVG"
    return None


def _document(raw: bytes) -> str | None:
    if raw[4:8] == b"ftyp" and raw[8:12] in _VIDEO_BRANDS:
        return "a video"
    if b"%PDF-" in raw[:1024]:
        return "a PDF document"
    if _MARKUP.search(raw, 0, 512):
        return "a web page"
    if raw.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    return None


def _pillow_format(raw: bytes) -> str | None:
    """The format Pillow reads this as (GIF, TIFF, BMP...), from the header alone."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as other:
                return other.format
    except MemoryError:
        raise
    except Exception:
        return None


def _bomb_rejection(exc: Image.DecompressionBombError) -> ImageRejected:
    """Pillow refuses past about 179 MP before we see the size; its message has the count."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    actual = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "far too many pixels"
    limit = settings.STUDIO_MAX_PIXELS / 1e6
    return ImageRejected(f"The image has {actual}; the limit is {limit:g} megapixels.")


def _check_pixels(width: int, height: int) -> None:
    limit = settings.STUDIO_MAX_PIXELS
    actual = width * height
    if actual <= limit:
        return
    if f"{actual / 1e6:.1f}" != f"{limit / 1e6:.1f}":
        counts = f"{actual / 1e6:.1f} megapixels); the limit is {limit / 1e6:g} megapixels"
    else:  # just over: megapixels would show the same number twice
        counts = f"{actual:,} pixels); the limit is {limit:,} pixels"
    raise ImageRejected(f"The image is {_dimensions(width, height)} ({counts}.")


@dataclass(frozen=True)
class _Content:
    """What the upload's bytes, rather than its pixels, say."""

    sha256: str
    hidden_document: str | None
    intact: bool


def _examine(raw: bytes, kind: str) -> _Content:
    return _Content(
        sha256=hashlib.sha256(raw).hexdigest(),
        hidden_document=_hidden_document(raw, kind),
        intact=kind != "PNG" or _png_checksums_match(raw),
    )


def _hidden_document(raw: bytes, kind: str) -> str | None:
    """What other document the image also is, if any (see the module docstring)."""
    end = _image_end(raw, kind)
    head_end = min(_HEAD_BYTES, len(raw))
    for start, stop in ((0, head_end), (max(end, head_end), len(raw))):
        if markup := _MARKUP.search(raw, start, stop):
            return _describe_markup(markup.group())
        if raw.find(b"%PDF-", start, stop) >= 0:
            return "a PDF document"
    if (
        raw.find(b"PK\x03\x04", 0, head_end) >= 0
        or raw.find(b"PK\x03\x04", end, end + _HEAD_BYTES) >= 0
        or _has_zip_end_record(raw)
    ):
        return "a ZIP archive"
    return None


def _has_zip_end_record(raw: bytes) -> bool:
    """A ZIP end record where ZIP readers look for one: in the last 64 KB, image or not.

    Besides its 4-byte signature a real one says "disk 0 of 0" and has as many entries on
    this disk as in all: 10 more fixed bytes that compressed image data never fakes.
    """
    pos = raw.find(b"PK\x05\x06", max(0, len(raw) - _ZIP_END_WINDOW))
    while 0 <= pos <= len(raw) - 12:
        disk, directory_disk, here, total = struct.unpack_from("<4H", raw, pos + 4)
        if disk == directory_disk == 0 and here == total:
            return True
        pos = raw.find(b"PK\x05\x06", pos + 1)
    return False


def _describe_markup(text: bytes) -> str:
    text = text.lower()
    if text.startswith(b"<?php"):
        return "PHP code"
    if text.startswith(b"<script"):
        return "a script"
    if text.startswith(b"<svg"):
        return "SVG markup"
    return "a web page"


def _image_end(raw: bytes, kind: str) -> int:
    """Where the image's own bytes end; anything after is a trailer."""
    if kind == "JPEG":
        return _jpeg_end(raw)
    if kind == "PNG":
        return _png_end(raw)
    riff_size = int.from_bytes(raw[4:8], "little")
    return min(len(raw), 8 + riff_size + riff_size % 2)


def _jpeg_end(raw: bytes) -> int:
    """Just past the first end-of-image marker after the first scan.

    Inside compressed scan data every 0xFF byte is followed by 0x00 or a restart marker,
    so the first FF D9 after the scan header is the real end; a thumbnail's FF D9 in an
    EXIF segment comes before the first scan and is skipped segment by segment.
    """
    pos = 2
    while pos + 4 <= len(raw):
        if raw[pos] != 0xFF:
            # Stray bytes between segments: libjpeg skips to the next marker, and so do we.
            pos = raw.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = raw[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xD9:
            return pos + 2
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        else:
            length = int.from_bytes(raw[pos + 2 : pos + 4], "big")
            if marker == 0xDA:
                end = _END_OF_IMAGE.search(raw, pos + 2 + length)
                return end.end() if end else len(raw)
            pos += 2 + length
    return len(raw)


def _png_chunks(raw: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Each chunk's type, start and end, up to IEND (its bytes may also occur in data)."""
    pos = 8
    while pos + 12 <= len(raw):
        length = int.from_bytes(raw[pos : pos + 4], "big")
        kind, end = raw[pos + 4 : pos + 8], pos + 12 + length
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def _png_end(raw: bytes) -> int:
    """Just past the IEND chunk."""
    return min(len(raw), max((end for _, _, end in _png_chunks(raw)), default=len(raw)))


def _png_checksums_match(raw: bytes) -> bool:
    """Pillow does not check image data checksums: a flipped bit would decode as garbage."""
    for _, start, end in _png_chunks(raw):
        if end > len(raw):
            return False
        checksum = int.from_bytes(raw[end - 4 : end], "big")
        if zlib.crc32(memoryview(raw)[start + 4 : end - 4]) != checksum:
            return False
    return True


def _capped_size(width: int, height: int) -> tuple[int, int]:
    """The size after capping the long side; the long side itself is exact."""
    cap = settings.STUDIO_MAX_LONG_SIDE
    if max(width, height) <= cap:
        return width, height
    if width >= height:
        return cap, max(1, round(height * cap / width))
    return max(1, round(width * cap / height)), cap


def _decode_or_reject(
    image: Image.Image, kind: str, target: tuple[int, int], background: tuple[int, ...]
) -> Image.Image:
    """The normalised pixels, or ImageRejected.

    Everything Pillow or littleCMS might raise on a hostile file is caught here: a file
    that got this far but cannot be decoded is damaged, whatever the exception says.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # about metadata Pillow skips; pixels raise
            return _normalised_pixels(image, target, background)
    except MemoryError:
        raise
    except Exception as exc:
        # Logged, so that a bug of ours passing as a damaged file would still be seen.
        logger.info("Rejected an undecodable %s: %r", kind, exc, exc_info=settings.DEBUG)
        raise ImageRejected(
            f"This {kind} is damaged or truncated and cannot be read; export it again."
        ) from None


def _normalised_pixels(
    image: Image.Image, target: tuple[int, int], background: tuple[int, ...]
) -> Image.Image:
    """Decode, make 8-bit, scale to target, convert to sRGB, flatten alpha, turn upright."""
    if image.format in JPEG_FORMATS and target != image.size:
        # Let libjpeg scale by 1/2, 1/4 or 1/8 while decoding (never below target), so a
        # 24 MP photo is never held at full size. target is in stored orientation, as the
        # decoder sees it, so orientations 5-8 need no swapping here.
        image.draft("RGB", target)
    image.load()
    icc = image.info.get("icc_profile")
    orientation = _orientation(image)
    pixels = _eight_bit(image)
    if pixels.size != target:
        # Antialiased bicubic: closer to Lanczos on a large photo than the JPEG encoding that
        # follows, and faster, which keeps intake within its goal (README: Benchmarks).
        pixels = pixels.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
    rgb = _flatten(_to_srgb(pixels, icc), background)
    return rgb.transpose(_ORIENTATIONS[orientation]) if orientation != 1 else rgb


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1  # broken EXIF: the metadata is dropped anyway, keep the picture as stored
    return value if value in _ORIENTATIONS else 1


def _eight_bit(image: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA or CMYK at 8 bits per channel, so it can be resized."""
    if "transparency" in image.info and image.mode in ("1", "L", "P", "RGB"):
        return image.convert("RGBA")  # a palette or colour-key transparency becomes alpha
    if image.mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image
    if image.mode.startswith("I"):
        # 16-bit greyscale: Pillow's own conversion clips at 255 instead of scaling.
        values = np.asarray(image).astype(np.int64).clip(0, 65535)
        return Image.fromarray(((values + 128) // 257).astype(np.uint8))
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("PA", "RGBa", "La"):
        return image.convert("RGBA")
    return image.convert("RGB")


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB, or RGBA when there is alpha, in sRGB (the embedded profile applied, then dropped)."""
    mode = "RGBA" if image.mode in ("LA", "RGBA") else "RGB"
    if icc:
        try:
            converted = ImageCms.profileToProfile(
                image,
                io.BytesIO(icc),
                _SRGB,
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                outputMode=mode,
                flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
            )
            if converted is not None:  # None only when converting in place
                return converted
        except ImageCms.PyCMSError:
            # A broken profile, or one for another colour space than the pixels: viewers
            # ignore those and show the pixels as sRGB, so do the same.
            pass
    return image if image.mode == mode else image.convert(mode)


def _flatten(image: Image.Image, background: tuple) -> Image.Image:
    if image.mode != "RGBA":
        return image
    canvas = Image.new("RGB", image.size, background)
    canvas.paste(image, mask=image.getchannel("A"))
    return canvas


def encode(image: Image.Image) -> bytes:
    """The one JPEG encoding for everything Studio stores: sRGB, 4:4:4, no metadata at all."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    # Pillow copies a JPEG comment from image.info unless told otherwise; EXIF, XMP and
    # ICC are written only when passed, and sRGB is what a JPEG without a profile means.
    image.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=0, comment=b"", exif=b"")
    return out.getvalue()


# Framing to the clip's aspect ratio ---------------------------------------------------


def target_ratio(aspect: str, size: tuple[int, int]) -> tuple[int, int]:
    """The ratio for an aspect choice; "auto" picks 9:16 for portrait, else 16:9."""
    if aspect == "auto":
        width, height = size
        return RATIOS["9:16"] if height > width else RATIOS["16:9"]
    if aspect not in RATIOS:
        raise ImageRejected(f'The aspect ratio "{aspect}" is not offered; choose 16:9 or 9:16.')
    return RATIOS[aspect]


def fits_ratio(
    size: tuple[int, int], ratio: tuple[int, int], tolerance: float = RATIO_TOLERANCE
) -> bool:
    """Whether size is already ratio, within tolerance (relative), so needs no framing."""
    width, height = size
    if width <= 0 or height <= 0:
        return False
    return abs((width * ratio[1]) / (height * ratio[0]) - 1) <= tolerance


def centred_crop(size: tuple[int, int], ratio: tuple[int, int]) -> CropBox:
    """The largest box of ratio (to the nearest pixel) inside size, centred."""
    width, height = size
    rw, rh = ratio
    if width * rh > height * rw:  # wider than the ratio: full height
        box_width, box_height = round(height * rw / rh), height
    else:
        box_width, box_height = width, round(width * rh / rw)
    box_width, box_height = max(1, box_width), max(1, box_height)
    return CropBox((width - box_width) // 2, (height - box_height) // 2, box_width, box_height)


def checked_crop(size: tuple[int, int], ratio: tuple[int, int], box: CropBox) -> CropBox:
    """A crop box from the browser, if it is inside the image and of the ratio."""
    width, height = size
    if not all(isinstance(value, int) for value in astuple(box)):
        raise ImageRejected(f"The crop frame {astuple(box)} must be in whole pixels.")
    if box.width <= 0 or box.height <= 0:
        raise ImageRejected(
            f"The crop frame is {box.width}×{box.height} px; it must be at least 1 px each way."
        )
    if box.left < 0 or box.top < 0:
        raise ImageRejected(
            f"The crop frame starts at ({box.left}, {box.top}), outside the image; "
            "it must start at (0, 0) or further in."
        )
    right, bottom = box.left + box.width, box.top + box.height
    if right > width or bottom > height:
        raise ImageRejected(
            f"The crop frame reaches ({right}, {bottom}), outside the "
            f"{_dimensions(width, height)} image."
        )
    if not fits_ratio((box.width, box.height), ratio):
        raise ImageRejected(
            f"The crop frame is {box.width}×{box.height} ({box.width / box.height:.3f}:1); "
            f"it must be {ratio[0]}:{ratio[1]} ({ratio[0] / ratio[1]:.3f}:1) within "
            f"{RATIO_TOLERANCE:.0%}."
        )
    return box


def crop(image: Image.Image, box: CropBox) -> Image.Image:
    return image.crop((box.left, box.top, box.left + box.width, box.top + box.height))


def pad(image: Image.Image, ratio: tuple[int, int]) -> Image.Image:
    """The whole image, centred on the smallest canvas of ratio, over a blurred copy of itself.

    The canvas keeps the image's resolution; its sides are even (video encoders need that),
    which keeps the ratio within a fraction of a per cent for any usable image.
    """
    width, height = image.size
    canvas = _padded_size(width, height, ratio)
    # Blurring at 1/8 scale is 64 times less work, and the upscale softens it further.
    small = (max(1, canvas[0] // 8), max(1, canvas[1] // 8))
    backdrop = ImageOps.fit(image.reduce(max(1, min(width // small[0], height // small[1]))), small)
    backdrop = backdrop.filter(ImageFilter.GaussianBlur(max(small) / 30))
    backdrop = backdrop.resize(canvas, Image.Resampling.BICUBIC)
    backdrop.paste(image, ((canvas[0] - width) // 2, (canvas[1] - height) // 2))
    return backdrop


def _padded_size(width: int, height: int, ratio: tuple[int, int]) -> tuple[int, int]:
    rw, rh = ratio

    if width * rh >= height * rw:  # at least as wide as the ratio: grow the height
        canvas_width = _even_up(width)
        return canvas_width, max(_even_up(height), 2 * round(canvas_width * rh / rw / 2))
    canvas_height = _even_up(height)
    return max(_even_up(width), 2 * round(canvas_height * rw / rh / 2)), canvas_height


def _even_up(n: int) -> int:
    return n + n % 2


# Storage --------------------------------------------------------------------------------


def store(
    owner: User, image: NormalisedImage, *, derived_from: SourceImage | None = None
) -> SourceImage:
    """Save a normalised image under a generated name, once per creator and content."""
    now = timezone.now()
    existing = SourceImage.objects.filter(owner=owner, upload_sha256=image.upload_sha256).first()
    if existing:
        # Uploaded again: kept another retention period from now.
        SourceImage.objects.filter(pk=existing.pk).update(last_uploaded_at=now)
        existing.last_uploaded_at = now
        return existing
    name = default_storage.save(f"images/{uuid.uuid4().hex}.jpg", ContentFile(image.data))
    try:
        with transaction.atomic():
            return SourceImage.objects.create(
                owner=owner,
                file=name,
                created_at=now,
                last_uploaded_at=now,
                upload_sha256=image.upload_sha256,
                derived_from=derived_from,
                width=image.width,
                height=image.height,
                content_type=image.content_type,
                size_bytes=len(image.data),
            )
    except IntegrityError:
        # The same image arrived twice at once: keep the first, drop our copy.
        default_storage.delete(name)
        return SourceImage.objects.get(owner=owner, upload_sha256=image.upload_sha256)


def delete_still(still: SourceImage) -> None:
    """Remove a still no job uses (a job's still is protected: ProtectedError); its file goes
    once the row is gone for good."""
    name = still.file.name
    with transaction.atomic():
        still.delete()
        transaction.on_commit(lambda: default_storage.delete(name))


def purge_unused_stills() -> int:
    """Delete the stills no job uses that were last uploaded more than
    STUDIO_STILL_RETENTION_DAYS ago, each row before its file. Returns how many went.

    A still a job takes meanwhile is protected by the job's foreign key, and skipped."""
    cutoff = timezone.now() - timedelta(days=settings.STUDIO_STILL_RETENTION_DAYS)
    used = Job.objects.filter(Q(image=OuterRef("pk")) | Q(last_frame=OuterRef("pk")))
    purged = 0
    for still in SourceImage.objects.filter(last_uploaded_at__lt=cutoff).filter(~Exists(used)):
        try:
            delete_still(still)
        except (ProtectedError, IntegrityError):
            continue
        purged += 1
    if purged:
        logger.info(
            "purged %d still(s) no job used for %d days",
            purged,
            settings.STUDIO_STILL_RETENTION_DAYS,
        )
    return purged


def framed(
    still: SourceImage, *, ratio: tuple[int, int], framing: str, box: CropBox | None = None
) -> SourceImage:
    """A stored copy of still cropped to box (centred if none) or padded to ratio.

    Encoded as the padded preview is, so the preview is exactly what is sent. Stored once
    per creator like any still, keyed by the hash of its own bytes.
    """
    picture = open_image(still.file.name)
    if framing == "crop":
        # The box was checked against the form's copy of the size; check it against the file.
        box = checked_crop(picture.size, ratio, box or centred_crop(picture.size, ratio))
        picture = crop(picture, box)
    elif framing == "pad":
        picture = pad(picture, ratio)
    else:
        raise ImageRejected(f'The framing "{framing}" is not offered; choose crop or pad.')
    data = encode(picture)
    image = NormalisedImage(
        data=data,
        width=picture.width,
        height=picture.height,
        content_type=OUTPUT_CONTENT_TYPE,
        upload_sha256=hashlib.sha256(data).hexdigest(),
    )
    return store(still.owner, image, derived_from=still)


def open_image(name: str) -> Image.Image:
    """A stored still, decoded (stored stills are already normalised RGB)."""
    with default_storage.open(name, "rb") as f:
        image = Image.open(f)
        image.load()
    return image

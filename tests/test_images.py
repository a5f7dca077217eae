"""Image intake: every kind of upload, made here (nothing binary is committed)."""

import io
import struct
import types
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw, JpegImagePlugin, PngImagePlugin

from studio import images
from tests.factories import photo, upload

WHITE, RED, GREEN, BLUE = (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255)


def normalise(data: bytes) -> images.NormalisedImage:
    return images.normalise(io.BytesIO(data), size=len(data))


def decoded(result: images.NormalisedImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.data))
    image.load()
    return image


def encoded(image: Image.Image, fmt: str = "JPEG", **save) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def solid(colour, size=(800, 600), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def close(pixel, expected, tolerance=6) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that only claims a size: enough for a header check, never decodable."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0"))
        + png_chunk(b"IEND", b"")
    )


def png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG's segments up to its first scan."""
    markers, pos = [], 2
    while data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return markers


def assert_clean_jpeg(result: images.NormalisedImage) -> Image.Image:
    """8-bit RGB JPEG, 4:4:4, and no metadata segment of any kind (only JFIF's APP0)."""
    image = decoded(result)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == image.size
    assert JpegImagePlugin.get_sampling(image) == 0
    assert set(jpeg_segments(result.data)) <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDA}
    assert not image.getexif()
    assert "icc_profile" not in image.info and "comment" not in image.info
    return image


def adobe_rgb_like_profile() -> bytes:
    """Pillow's sRGB profile with Adobe RGB's (D50-adapted) primaries: a wide-gamut profile."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[84:100] = bytes(16)  # the profile ID is a checksum of the old content
    primaries = {
        b"rXYZ": (0.6097, 0.3111, 0.0195),
        b"gXYZ": (0.2053, 0.6257, 0.0609),
        b"bXYZ": (0.1492, 0.0632, 0.7446),
    }
    (count,) = struct.unpack(">I", profile[128:132])
    for i in range(count):
        tag, offset, _ = struct.unpack(">4sII", profile[132 + 12 * i : 144 + 12 * i])
        if tag in primaries:
            values = b"".join(struct.pack(">i", round(v * 65536)) for v in primaries[tag])
            profile[offset + 8 : offset + 20] = values
    return bytes(profile)


# Accepted formats and what comes out ------------------------------------------------


def test_jpeg_png_and_webp_are_normalised_to_rgb_jpeg():
    for fmt in ("JPEG", "PNG", "WEBP"):
        result = normalise(photo(1024, 768, fmt))
        image = assert_clean_jpeg(result)
        assert image.size == (1024, 768)
        assert result.warnings == ()


def test_html_named_jpg_is_rejected_by_content_not_name():
    page = b"<!DOCTYPE html><html><body>hello</body></html>"
    file = upload(page, name="photo.jpg", content_type="image/jpeg")
    with pytest.raises(images.ImageRejected, match="a web page, not an image Studio can read"):
        images.normalise(file, size=file.size)


def test_a_real_image_with_a_wrong_name_and_type_is_accepted():
    file = upload(photo(800, 600, "PNG"), name="notes.txt", content_type="text/plain")
    assert images.normalise(file, size=file.size).width == 800


def animated(fmt: str) -> bytes:
    frames = [solid(RED), solid(BLUE)]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:])


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(200)
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
    b'width="800" height="600"><rect width="800" height="600" fill="red"/></svg>'
)
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: photo(800, 600, "GIF"), "GIF images are not accepted"),
        (lambda: photo(800, 600, "TIFF"), "TIFF images are not accepted"),
        (lambda: photo(800, 600, "BMP"), "BMP images are not accepted"),
        (lambda: photo(800, 600, "AVIF"), "AVIF images are not accepted"),
        (lambda: photo(800, 600, "JPEG2000"), "JPEG2000 images are not accepted"),
        (lambda: HEIC, "HEIC images are not accepted"),
        (lambda: MP4, "This file is a video, not an image"),
        (lambda: SVG, "SVG images are not accepted"),
        (lambda: PDF, "This file is a PDF document, not an image Studio can read"),
        (lambda: b"just some notes\n" * 20, "This file is not an image Studio can read"),
        (lambda: b"\xff\x0a" + bytes(300), "This file is not an image Studio can read"),  # JPEG XL
        (lambda: animated("PNG"), "This is an animated PNG with 2 frames"),
        (lambda: animated("WEBP"), "This is an animated WebP with 2 frames"),
        (lambda: animated("GIF"), "GIF images are not accepted"),
    ],
    ids=[
        "gif", "tiff", "bmp", "avif", "jpeg2000", "heic", "mp4", "svg", "pdf", "text", "jpeg-xl",
        "apng", "animated-webp", "animated-gif",
    ],
)  # fmt: skip
def test_other_formats_are_rejected_naming_what_they_are(make, message):
    with pytest.raises(images.ImageRejected, match=message) as rejected:
        normalise(make())
    assert "Upload a JPEG, PNG or WebP" in str(rejected.value) or "animated" in message


def test_a_single_frame_apng_is_a_still():
    data = encoded(solid(RED), "PNG", save_all=True, append_images=[])
    assert normalise(data).width == 800


# Polyglots: an image that is also another document ---------------------------------


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Main-Class: Evil\n")
    return out.getvalue()


def png_with_chunk_before_iend(kind: bytes, data: bytes) -> bytes:
    png = photo(800, 600, "PNG")
    return png[:-12] + png_chunk(kind, data) + png[-12:]


def stray_bytes_after_app0(jpeg: bytes) -> bytes:
    """Junk between two segments: libjpeg skips it with a warning, and decodes the image."""
    app0_end = 4 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:app0_end] + b"junk" + jpeg[app0_end:]


def jpeg_with_comment(comment: bytes) -> bytes:
    return photo(800, 600, "JPEG", comment=comment)


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda: photo(800, 600) + b"<html><body><script>alert(1)</script>", "a web page"),
        (lambda: photo(800, 600) + b"\n<script src=//evil.example></script>", "a script"),
        (lambda: photo(800, 600) + zip_archive(), "a ZIP archive"),
        (lambda: photo(800, 600) + b"\0" * 9000 + zip_archive(), "a ZIP archive"),
        (lambda: jpeg_with_comment(b"%PDF-1.4 ") + PDF, "a PDF document"),
        (lambda: photo(800, 600) + PDF, "a PDF document"),
        (lambda: jpeg_with_comment(b"<?php system($_GET['c']); ?>"), "PHP code"),
        (lambda: photo(800, 600, "PNG") + b"<script>alert(1)</script>", "a script"),
        (lambda: photo(800, 600, "PNG") + zip_archive(), "a ZIP archive"),
        (lambda: photo(800, 600, "WEBP") + zip_archive(), "a ZIP archive"),
        (lambda: photo(800, 600, "WEBP") + b"<svg onload=alert(1)>", "SVG markup"),
        (lambda: png_with_chunk_before_iend(b"zIPp", zip_archive()), "a ZIP archive"),
        (lambda: stray_bytes_after_app0(photo(800, 600)) + b"<html>", "a web page"),
    ],
    ids=[
        "jpeg+html", "jpeg+script", "jpeg+zip", "jpeg+padded-zip", "jpeg+pdf-header",
        "jpeg+pdf-trailer", "jpeg-php-comment", "png+script", "png+zip", "webp+zip", "webp+svg",
        "zip-in-png-chunk", "stray-bytes-then-html",
    ],
)  # fmt: skip
def test_an_image_hiding_another_document_is_rejected(make, found):
    data = make()
    assert Image.open(io.BytesIO(data)).format in ("JPEG", "PNG", "WEBP")  # a valid image, too
    with pytest.raises(images.ImageRejected, match=f"also contains {found}"):
        normalise(data)


def exif_segment_with_thumbnail() -> bytes:
    """An APP1 segment holding a whole small JPEG, end marker included, as cameras write."""
    thumbnail = encoded(solid(BLUE, (160, 120)))
    body = b"Exif\0\0" + thumbnail
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_exif_thumbnail(jpeg: bytes) -> bytes:
    return jpeg[:2] + exif_segment_with_thumbnail() + jpeg[2:]


def random_trailer(size: int) -> bytes:
    """Compressed-looking bytes without any of the signatures (the rule's other side)."""
    data = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    for marker in (b"<", b"%PDF", b"PK"):
        data = data.replace(marker, b"..."[: len(marker)])
    return data


MOTION_PHOTO = b"\x00\x00\x00\x1cftypmp42\x00\x00\x00\x00isommp42" + random_trailer(300_000)
SAMSUNG = b"\x00\x00\x0a\x30Image_UTC_Data1700000000000SEFH\x01\x00\x00\x00" + b"SEFT"


@pytest.mark.parametrize(
    "make",
    [
        lambda: photo(800, 600) + SAMSUNG,
        lambda: photo(800, 600) + MOTION_PHOTO,
        lambda: photo(800, 600) + random_trailer(1_000_000),
        lambda: photo(800, 600) + bytes(5000),
        lambda: with_exif_thumbnail(photo(800, 600)),
        lambda: photo(800, 600, "PNG") + bytes(100),
    ],
    ids=["samsung", "motion-photo", "preview-like", "zero-padding", "exif-thumbnail", "png+pad"],
)
def test_ordinary_trailers_after_an_image_are_accepted(make):
    assert normalise(make()).width == 800


def test_a_multi_picture_jpeg_is_accepted_as_its_first_picture():
    out = io.BytesIO()
    solid(RED).save(out, "MPO", save_all=True, append_images=[solid(BLUE)])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    image = assert_clean_jpeg(normalise(out.getvalue()))
    assert close(image.getpixel((400, 300)), RED)


def test_a_thumbnail_end_marker_does_not_hide_a_trailer():
    data = with_exif_thumbnail(photo(800, 600)) + b"<script>alert(1)</script>"
    with pytest.raises(images.ImageRejected, match="also contains a script"):
        normalise(data)


# Conversions ------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb():
    cyan = solid((255, 0, 0, 0), mode="CMYK")
    data = encoded(cyan)
    assert b"Adobe" in data  # Pillow writes Adobe's inverted CMYK, as Photoshop does
    image = assert_clean_jpeg(normalise(data))
    assert close(image.getpixel((400, 300)), (0, 255, 255))


def test_16_bit_greyscale_png_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 800).astype(np.uint16), (600, 1))
    image16 = Image.fromarray(ramp)
    assert image16.mode == "I;16"
    image = assert_clean_jpeg(normalise(encoded(image16, "PNG")))
    assert close(image.getpixel((0, 300)), (0, 0, 0), 3)
    assert close(image.getpixel((400, 300)), (128, 128, 128), 3)
    assert close(image.getpixel((799, 300)), WHITE, 3)


def test_16_bit_colour_png_keeps_its_colours():
    pixels = np.zeros((600, 800, 3), dtype=np.uint16)
    pixels[...] = (65535, 32768, 0)
    image = assert_clean_jpeg(normalise(png_16bit_rgb(pixels)))
    assert close(image.getpixel((400, 300)), (255, 128, 0))


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(transparent):
    image = Image.new("P", (800, 600), 0)
    image.putpalette([*RED, *BLUE])
    ImageDraw.Draw(image).rectangle((0, 0, 399, 599), fill=1)
    save = {"transparency": 1} if transparent else {}
    result = assert_clean_jpeg(normalise(encoded(image, "PNG", **save)))
    assert close(result.getpixel((200, 300)), WHITE if transparent else BLUE)
    assert close(result.getpixel((600, 300)), RED)


def test_greyscale_with_alpha_and_one_bit_pngs():
    la = Image.merge("LA", [solid(40, mode="L"), solid(0, mode="L")])
    la.paste((40, 255), (400, 0, 800, 600))
    image = assert_clean_jpeg(normalise(encoded(la, "PNG")))
    assert close(image.getpixel((200, 300)), WHITE)
    assert close(image.getpixel((600, 300)), (40, 40, 40))

    bits = solid(0, mode="1")
    bits.paste(255, (400, 0, 800, 600))
    image = assert_clean_jpeg(normalise(encoded(bits, "PNG")))
    assert close(image.getpixel((200, 300)), (0, 0, 0))
    assert close(image.getpixel((600, 300)), WHITE)


def test_transparency_is_flattened_onto_the_configured_background(settings):
    settings.STUDIO_ALPHA_BACKGROUND = "#102030"
    rgba = solid((255, 0, 0, 0), mode="RGBA")
    rgba.paste((0, 0, 255, 255), (400, 0, 800, 600))
    for fmt in ("PNG", "WEBP"):
        image = assert_clean_jpeg(normalise(encoded(rgba, fmt, lossless=True)))
        assert close(image.getpixel((200, 300)), (16, 32, 48))
        assert close(image.getpixel((600, 300)), BLUE)


def test_colour_key_transparency_in_an_rgb_png_is_flattened():
    image = solid(GREEN)
    image.paste(RED, (400, 0, 800, 600))
    result = assert_clean_jpeg(normalise(encoded(image, "PNG", transparency=GREEN)))
    assert close(result.getpixel((200, 300)), WHITE)
    assert close(result.getpixel((600, 300)), RED)


# Colour profiles ----------------------------------------------------------------------


def test_a_wide_gamut_profile_is_converted_to_srgb_and_dropped():
    profile = adobe_rgb_like_profile()
    colour = (60, 160, 60)
    expected = ImageCms.profileToProfile(
        solid(colour, (8, 8)),
        io.BytesIO(profile),
        ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    ).getpixel((0, 0))
    assert not close(expected, colour, 20)  # the profile really changes this colour
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encoded(solid(colour), fmt, icc_profile=profile, lossless=True, quality=100)
        assert Image.open(io.BytesIO(data)).info["icc_profile"] == profile
        image = assert_clean_jpeg(normalise(data))
        assert close(image.getpixel((400, 300)), expected, 3), fmt


def test_an_srgb_profile_leaves_colours_alone():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(solid((60, 160, 60)), "PNG", icc_profile=srgb)
    image = assert_clean_jpeg(normalise(data))
    assert close(image.getpixel((400, 300)), (60, 160, 60), 3)


def test_a_broken_profile_is_ignored():
    data = encoded(solid((60, 160, 60)), "PNG", icc_profile=b"not a colour profile at all")
    image = assert_clean_jpeg(normalise(data))
    assert close(image.getpixel((400, 300)), (60, 160, 60), 3)


# Metadata and orientation --------------------------------------------------------------


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera maker"
    exif[0x0131] = "Secret editor"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 1.0)})
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>Secret place</rdf:RDF></x:xmpmeta>'


def test_all_metadata_is_stripped_from_jpeg():
    data = photo(1024, 768, exif=camera_exif(), xmp=XMP, comment=b"Secret comment")
    assert all(word in data for word in (b"Camera maker", b"Secret place", b"Secret comment"))
    result = normalise(data)
    assert_clean_jpeg(result)
    assert b"Secret" not in result.data and b"Camera" not in result.data


def test_all_metadata_is_stripped_from_png_and_webp():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Secret comment")
    info.add_text("Author", "Secret author", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    png = photo(1024, 768, "PNG", pnginfo=info, exif=camera_exif())
    webp = photo(1024, 768, "WEBP", exif=camera_exif(), xmp=XMP)
    for data in (png, webp):
        result = normalise(data)
        assert_clean_jpeg(result)
        assert b"Secret" not in result.data and b"Camera" not in result.data


def test_a_broken_exif_block_is_ignored():
    broken = b"\xff\xe1\x00\x12Exif\0\0MM\0\x2a\xff\xff\xff\xff\0\0"
    data = photo(800, 600)
    result = normalise(data[:2] + broken + data[2:])
    assert assert_clean_jpeg(result).size == (800, 600)


def marked(size=(900, 600)) -> Image.Image:
    """White, with red in the stored top-left corner and green in the stored top-right."""
    image = solid(WHITE, size)
    block = min(size) // 4
    image.paste(RED, (0, 0, block, block))
    image.paste(GREEN, (size[0] - block, 0, size[0], block))
    return image


CORNERS = ("top-left", "top-right", "bottom-right", "bottom-left")
# Where the stored top-left and top-right corners are shown, by EXIF orientation (from the
# EXIF definition of the 0th row and 0th column, not from Pillow).
SHOWN_AT = {
    1: ("top-left", "top-right"),
    2: ("top-right", "top-left"),
    3: ("bottom-right", "bottom-left"),
    4: ("bottom-left", "bottom-right"),
    5: ("top-left", "bottom-left"),
    6: ("top-right", "bottom-right"),
    7: ("bottom-right", "top-right"),
    8: ("bottom-left", "top-left"),
}


def corner_colours(image: Image.Image) -> dict[str, tuple]:
    w, h, m = image.width, image.height, min(image.size) // 12
    points = {"top-left": (m, m), "top-right": (w - m, m)}
    points |= {"bottom-right": (w - m, h - m), "bottom-left": (m, h - m)}
    return {corner: image.getpixel(point) for corner, point in points.items()}


def assert_orientation(image: Image.Image, orientation: int, stored: tuple[int, int]) -> None:
    w, h = stored
    assert image.size == ((h, w) if orientation >= 5 else (w, h))
    red_at, green_at = SHOWN_AT[orientation]
    colours = corner_colours(image)
    assert close(colours[red_at], RED, 40), (orientation, colours)
    assert close(colours[green_at], GREEN, 40), (orientation, colours)
    for corner in set(CORNERS) - {red_at, green_at}:
        assert close(colours[corner], WHITE, 40), (orientation, colours)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_puts_every_corner_in_its_place(orientation):
    data = encoded(marked(), exif=camera_exif(orientation))
    image = assert_clean_jpeg(normalise(data))
    assert_orientation(image, orientation, (900, 600))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_orientation_is_applied_for_png_and_webp_too(fmt):
    data = encoded(marked(), fmt, exif=camera_exif(6), lossless=True)
    assert_orientation(assert_clean_jpeg(normalise(data)), 6, (900, 600))


# Sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [(511, 900, False), (512, 900, True), (900, 511, False), (900, 512, True)],
)
def test_short_side_minimum_is_512(width, height, ok):
    if ok:
        assert normalise(photo(width, height)).width == width
    else:
        message = f"is {width}×{height}; its short side must be at least 512 px"
        with pytest.raises(images.ImageRejected, match=message):
            normalise(photo(width, height))


def test_short_side_under_720_is_accepted_with_a_warning_naming_it():
    (warning,) = normalise(photo(1000, 719)).warnings
    assert "short side is 719 px" in warning and "720 px or more" in warning
    assert "will look soft" in normalise(photo(600, 1000)).warnings[0]
    assert normalise(photo(1280, 720)).warnings == ()
    assert normalise(photo(720, 1280, "PNG")).warnings == ()


def test_too_many_pixels_is_rejected_from_the_header(settings):
    settings.STUDIO_MAX_PIXELS = 1_000_000
    with pytest.raises(
        images.ImageRejected, match=r"1280×1024 \(1.3 megapixels\); the limit is 1 megapixels"
    ):
        normalise(photo(1280, 1024, "PNG"))


def test_the_pixel_limit_is_exact(settings):
    data = photo(1000, 800, "PNG")
    settings.STUDIO_MAX_PIXELS = 800_000
    assert normalise(data).width == 1000
    settings.STUDIO_MAX_PIXELS = 799_999
    with pytest.raises(
        images.ImageRejected, match=r"800,000 pixels\); the limit is 799,999 pixels"
    ):
        normalise(data)


def test_40_megapixels_is_accepted_and_one_row_more_is_not():
    with pytest.raises(
        images.ImageRejected, match=r"8000×5001 \(40,008,000 pixels\); the limit is 40,000,000"
    ):
        normalise(png_header_only(8000, 5001))
    # Exactly 40 MP, greyscale so it is cheap, decoded for real and scaled down.
    result = normalise(encoded(solid(128, (8000, 5000), "L"), "PNG", compress_level=1))
    assert (result.width, result.height) == (2560, 1600)


def test_a_decompression_bomb_is_never_decoded_and_pillow_stays_quiet(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a bomb was decoded")

    monkeypatch.setattr(Image.Image, "load", never)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", never)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail this
        with pytest.raises(images.ImageRejected, match=r"10000×10000 \(100.0 megapixels\)"):
            normalise(png_header_only(10_000, 10_000))  # over Pillow's warning threshold
        with pytest.raises(images.ImageRejected, match=r"has 400.0 megapixels; the limit is 40"):
            normalise(png_header_only(20_000, 20_000))  # over Pillow's own error threshold


def test_too_large_a_file_is_rejected_naming_both_sizes(settings):
    settings.STUDIO_MAX_UPLOAD_BYTES = 1024 * 1024
    data = photo(1024, 768, "PNG") + b"\0" * (2 * 1024 * 1024)
    with pytest.raises(images.ImageRejected, match=r"The image is 2\.\d MB; the limit is 1\.0 MB"):
        normalise(data)


def test_the_byte_limit_is_exact(settings):
    data = photo(800, 600)
    settings.STUDIO_MAX_UPLOAD_BYTES = len(data)
    assert normalise(data).width == 800
    settings.STUDIO_MAX_UPLOAD_BYTES = len(data) - 1
    expected = f"The image is {len(data):,} bytes; the limit is {len(data) - 1:,} bytes"
    with pytest.raises(images.ImageRejected, match=expected):
        normalise(data)


def test_a_wrong_declared_size_does_not_get_past_the_limit(settings):
    settings.STUDIO_MAX_UPLOAD_BYTES = 100_000
    data = photo(800, 600, "PNG") + bytes(200_000)
    with pytest.raises(images.ImageRejected, match=r"more than 0\.1 MB, the limit"):
        images.normalise(io.BytesIO(data), size=1000)


def test_the_real_20_mb_limit():
    limit = 20 * 1024 * 1024
    data = photo(800, 600)
    data += bytes(limit - len(data))  # zero padding: an allowed trailer
    assert normalise(data).width == 800
    with pytest.raises(images.ImageRejected, match="20,971,521 bytes; the limit is 20,971,520"):
        normalise(data + b"\0")


def test_an_empty_file_is_rejected():
    with pytest.raises(images.ImageRejected, match="empty"):
        normalise(b"")


def test_long_side_is_capped_using_jpeg_draft(monkeypatch):
    drafts = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        drafts.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    big = marked((6000, 4000))
    result = normalise(encoded(big, exif=camera_exif(6)))
    # libjpeg decoded at half size (3000 x 2000) instead of 24 MP, then it was scaled to 2560.
    assert drafts == [((2560, 1707), (3000, 2000))]
    image = assert_clean_jpeg(result)
    assert_orientation(image, 6, (2560, 1707))


def test_long_side_cap_without_draft_for_png_and_webp(settings):
    settings.STUDIO_MAX_LONG_SIDE = 1000
    for fmt in ("PNG", "WEBP"):
        result = normalise(encoded(marked((1500, 900)), fmt, exif=camera_exif(8)))
        assert_orientation(assert_clean_jpeg(result), 8, (1000, 600))


def test_a_panorama_that_would_be_too_thin_after_capping_is_rejected():
    with pytest.raises(
        images.ImageRejected, match="its short side would be 437 px, under the 512 px minimum"
    ):
        normalise(photo(6000, 1024, "PNG"))


def test_last_frame_must_match_the_first_frames_size():
    first = normalise(photo(1280, 720))
    images.check_last_frame(first, normalise(photo(1280, 720, "PNG")))
    stored = types.SimpleNamespace(width=1280, height=720)  # a SourceImage has these too
    images.check_last_frame(stored, first)
    turned = normalise(encoded(marked((1280, 720)), exif=camera_exif(6)))
    with pytest.raises(
        images.ImageRejected, match="last frame is 720×1280 but the first frame is 1280×720"
    ):
        images.check_last_frame(first, turned)


# Damaged files ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_images_are_rejected(fmt):
    data = photo(1280, 720, fmt)
    for cut in (len(data) // 2, len(data) - 40, 30):
        with pytest.raises(images.ImageRejected, match="damaged"):
            normalise(data[:cut])


def test_corrupt_png_data_is_rejected():
    data = bytearray(photo(1280, 720, "PNG"))
    data[len(data) // 2] ^= 0xFF  # the chunk's checksum no longer matches
    with pytest.raises(images.ImageRejected, match=r"PNG is damaged \(its checksums do not"):
        normalise(bytes(data))


def test_the_same_upload_is_stored_once_per_creator(creator, other_creator):
    data = photo(800, 600)
    first = images.store(creator, normalise(data))
    again = images.store(creator, normalise(data))
    theirs = images.store(other_creator, normalise(data))
    assert first.pk == again.pk
    assert theirs.pk != first.pk
    assert first.file.name.startswith("images/") and "photo" not in first.file.name
    assert normalise(data).upload_sha256 == first.upload_sha256


# Properties -------------------------------------------------------------------------


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=4096))
def test_random_bytes_are_rejected_never_crash(data):
    with pytest.raises(images.ImageRejected):
        normalise(data)


SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBPVP8 ", b"GIF89a", b"II*\0"]


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.sampled_from(SIGNATURES), st.binary(max_size=2048))
def test_random_bytes_behind_a_real_signature_are_rejected(signature, data):
    with pytest.raises(images.ImageRejected):
        normalise(signature + data)


SMALL = {"STUDIO_MIN_SHORT_SIDE": 16, "STUDIO_WARN_SHORT_SIDE": 32, "STUDIO_MAX_LONG_SIDE": 96}
SEEDS = {
    fmt: photo(120, 80, fmt, exif=camera_exif(6)) for fmt in ("JPEG", "PNG", "WEBP")
}  # fmt: skip


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10**6),
)
def test_damaged_real_images_are_rejected_or_come_out_clean(fmt, changes, cut):
    data = bytearray(SEEDS[fmt])
    for position, value in changes:
        data[position % len(data)] = value
    data = bytes(data[: max(1, cut % (len(data) + 1))])
    with override_settings(**SMALL):
        try:
            result = normalise(data)
        except images.ImageRejected:
            return
    assert_clean_jpeg(result)
    assert max(result.width, result.height) <= 96


TRAILER_BITS = [b"PK\x05\x06", b"PK\x03\x04", b"\xff\xd9", b"IEND", b"<svg ", b"%PDF-", b"\0"]


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.one_of(st.sampled_from(TRAILER_BITS), st.binary(max_size=40)), max_size=6),
)
def test_any_trailer_is_judged_never_crashes(fmt, pieces):
    with override_settings(**SMALL):
        try:
            result = normalise(SEEDS[fmt] + b"".join(pieces))
        except images.ImageRejected:
            return
    assert_clean_jpeg(result)


MODES = {
    "JPEG": ("RGB", "L", "CMYK"),
    "PNG": ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"),
    "WEBP": ("RGB", "RGBA"),
}
ENCODABLE = [(fmt, mode) for fmt, modes in MODES.items() for mode in modes]


def expected_size(width: int, height: int, cap: int) -> tuple[int, int]:
    scale = min(1, cap / max(width, height))
    return round(width * scale), round(height * scale)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip
@given(
    width=st.integers(400, 1400),
    height=st.integers(400, 1400),
    encoding=st.sampled_from(ENCODABLE),
    orientation=st.integers(1, 8),
)
def test_any_valid_image_comes_out_as_clean_rgb_of_the_expected_size(
    width, height, encoding, orientation
):
    fmt, mode = encoding
    data = photo(width, height, fmt, mode=mode, exif=camera_exif(orientation))
    with override_settings(STUDIO_MAX_LONG_SIDE=1000):
        try:
            result = normalise(data)
        except images.ImageRejected as rejected:
            capped = expected_size(width, height, 1000)
            assert min(width, height) < 512 or min(capped) < 512, rejected
            return
    image = assert_clean_jpeg(result)
    expected = expected_size(width, height, 1000)
    if orientation >= 5:
        expected = expected[::-1]
    assert image.size == expected
    assert bool(result.warnings) == (min(expected) < 720)


# Framing --------------------------------------------------------------------------------


def test_target_ratio():
    assert images.target_ratio("16:9", (100, 900)) == (16, 9)
    assert images.target_ratio("9:16", (900, 100)) == (9, 16)
    assert images.target_ratio("auto", (1920, 1080)) == (16, 9)
    assert images.target_ratio("auto", (1000, 1000)) == (16, 9)
    assert images.target_ratio("auto", (1080, 1920)) == (9, 16)
    with pytest.raises(images.ImageRejected, match='"4:3" is not offered'):
        images.target_ratio("4:3", (1000, 1000))


def test_fits_ratio():
    assert images.fits_ratio((1920, 1080), (16, 9))
    assert images.fits_ratio((1080, 1920), (9, 16))
    assert images.fits_ratio((1930, 1080), (16, 9))  # 0.5 % off
    assert not images.fits_ratio((1960, 1080), (16, 9))  # 2 % off
    assert not images.fits_ratio((1080, 1920), (16, 9))
    assert not images.fits_ratio((0, 1080), (16, 9))


sizes = st.tuples(st.integers(100, 8000), st.integers(100, 8000))
ratios = st.sampled_from(sorted(images.RATIOS.values()))


@hypothesis_settings(max_examples=300, deadline=None)
@given(sizes, ratios)
def test_centred_crop_is_the_largest_centred_box_of_the_ratio(size, ratio):
    box = images.centred_crop(size, ratio)
    width, height = size
    assert box.width == width or box.height == height  # as large as fits
    assert box.left >= 0 and box.left + box.width <= width
    assert box.top >= 0 and box.top + box.height <= height
    assert abs(box.left - (width - box.left - box.width)) <= 1  # centred
    assert abs(box.top - (height - box.top - box.height)) <= 1
    # Exact to the nearest pixel, so always well within the tolerance.
    assert abs(box.width * ratio[1] - box.height * ratio[0]) <= max(ratio) / 2
    assert images.checked_crop(size, ratio, box) == box


def test_centred_crop_examples():
    assert images.centred_crop((1920, 1080), (16, 9)) == images.CropBox(0, 0, 1920, 1080)
    assert images.centred_crop((2560, 1707), (16, 9)) == images.CropBox(0, 133, 2560, 1440)
    assert images.centred_crop((2560, 1707), (9, 16)) == images.CropBox(800, 0, 960, 1707)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        (images.CropBox(0, 0, 0, 1080), r"crop frame is 0×1080 px; it must be at least 1 px"),
        (images.CropBox(-1, 0, 1600, 900), r"starts at \(-1, 0\), outside the image"),
        (images.CropBox(0, -5, 1600, 900), r"starts at \(0, -5\), outside the image"),
        (images.CropBox(400, 300, 1600, 900), r"reaches \(2000, 1200\), outside the 1920×1080"),
        (images.CropBox(0, 0, 1600, 1000), r"is 1600×1000 \(1.600:1\); it must be 16:9 \(1.778"),
    ],
)
def test_checked_crop_rejects_bad_frames(box, message):
    with pytest.raises(images.ImageRejected, match=message):
        images.checked_crop((1920, 1080), (16, 9), box)


def test_checked_crop_accepts_a_frame_moved_by_the_creator():
    box = images.CropBox(320, 100, 1600, 901)
    assert images.checked_crop((1920, 1080), (16, 9), box) == box


def test_crop_is_pixel_exact():
    image = Image.open(io.BytesIO(photo(1280, 960, "PNG")))
    box = images.CropBox(17, 99, 1001, 563)
    assert images.crop(image, box).tobytes() == image.crop((17, 99, 1018, 662)).tobytes()


def half_red_half_blue(size: tuple[int, int]) -> Image.Image:
    image = solid(RED, size)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


@hypothesis_settings(max_examples=25, deadline=None)
@given(st.tuples(st.integers(64, 1500), st.integers(64, 1500)), ratios)
def test_pad_keeps_the_whole_image_unchanged_on_a_canvas_of_the_ratio(size, ratio):
    image = Image.open(io.BytesIO(photo(*size, "PNG")))
    padded = images.pad(image, ratio)
    assert padded.width % 2 == 0 and padded.height % 2 == 0
    assert padded.width >= image.width and padded.height >= image.height
    # Smallest: the image touches both edges on one axis (up to even rounding).
    assert padded.width - image.width <= 1 or padded.height - image.height <= 1
    assert images.fits_ratio(padded.size, ratio, tolerance=0.02)
    if min(padded.size) >= 300:
        assert images.fits_ratio(padded.size, ratio)
    left, top = (padded.width - image.width) // 2, (padded.height - image.height) // 2
    inside = padded.crop((left, top, left + image.width, top + image.height))
    assert inside.tobytes() == image.tobytes()


def test_pad_fills_with_a_blurred_copy_of_the_image():
    padded = images.pad(half_red_half_blue((1600, 900)), (9, 16))
    assert padded.size == (1600, 2844)
    top_left, top_right = padded.getpixel((100, 100)), padded.getpixel((1500, 100))
    assert top_left[0] > 200 > top_left[2] and top_right[2] > 200 > top_right[0]
    # Strongly blurred: at the seam the colours blend over a wide band.
    seam = [padded.getpixel((x, 100))[0] for x in range(700, 901, 20)]
    assert sum(20 < r < 235 for r in seam) >= 5
    assert padded.getpixel((800, 1422)) == (0, 0, 255)


def test_encode_is_the_normalised_encoding_without_metadata():
    image = Image.open(io.BytesIO(photo(800, 600, comment=b"Secret", exif=camera_exif())))
    image.load()
    assert image.info["comment"] == b"Secret"
    data = images.encode(image)
    result = images.NormalisedImage(data, 800, 600, "image/jpeg", "")
    assert_clean_jpeg(result)
    assert b"Secret" not in data
    framed = images.encode(images.pad(decoded(normalise(photo(1000, 800))), (16, 9)))
    assert Image.open(io.BytesIO(framed)).size == (1422, 800)


def test_framed_stores_a_crop_derived_from_the_still(creator):
    still = images.store(creator, normalise(photo(1200, 900)))
    box = images.CropBox(37, 211, 1152, 648)
    cropped = images.framed(still, ratio=(16, 9), framing="crop", box=box)
    assert (cropped.width, cropped.height, cropped.derived_from) == (1152, 648, still)
    expected = images.open_image(still.file.name).crop((37, 211, 37 + 1152, 211 + 648))
    difference = np.abs(
        np.asarray(images.open_image(cropped.file.name), dtype=int) - np.asarray(expected)
    )
    assert difference.mean() < 1.5  # one more JPEG generation, nothing else
    assert images.framed(still, ratio=(16, 9), framing="crop", box=box) == cropped  # once
    centred = images.framed(still, ratio=(16, 9), framing="crop")
    assert (centred.width, centred.height) == (1200, 675)
    with pytest.raises(images.ImageRejected, match="crop frame reaches"):
        images.framed(still, ratio=(16, 9), framing="crop", box=images.CropBox(100, 0, 1200, 675))


def test_framed_pad_stores_exactly_the_padded_preview(creator):
    still = images.store(creator, normalise(photo(1200, 900)))
    preview = images.encode(images.pad(images.open_image(still.file.name), (16, 9)))
    padded = images.framed(still, ratio=(16, 9), framing="pad")
    assert (padded.width, padded.height) == (1600, 900)
    with padded.file.open("rb") as f:
        assert f.read() == preview
    with pytest.raises(images.ImageRejected, match='framing "zoom" is not offered'):
        images.framed(still, ratio=(16, 9), framing="zoom")

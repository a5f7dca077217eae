import io

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from studio import images
from tests.factories import photo


def normalise(data: bytes) -> images.NormalisedImage:
    return images.normalise(io.BytesIO(data), size=len(data))


def test_jpeg_png_and_webp_are_normalised_to_rgb_jpeg():
    for fmt in ("JPEG", "PNG", "WEBP"):
        result = normalise(photo(1024, 768, fmt))
        decoded = Image.open(io.BytesIO(result.data))
        assert (decoded.format, decoded.mode, decoded.size) == ("JPEG", "RGB", (1024, 768))


def test_metadata_is_stripped_and_exif_rotation_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    exif[0x010F] = "Camera maker"
    result = normalise(photo(1280, 720, exif=exif.tobytes()))
    decoded = Image.open(io.BytesIO(result.data))
    assert decoded.size == (720, 1280)
    assert (result.width, result.height) == (720, 1280)
    assert not decoded.getexif()


def test_transparency_is_flattened_onto_white():
    rgba = Image.new("RGBA", (800, 600), (255, 0, 0, 0))
    out = io.BytesIO()
    rgba.save(out, "PNG")
    decoded = Image.open(io.BytesIO(normalise(out.getvalue()).data))
    r, g, b = decoded.getpixel((400, 300))
    assert min(r, g, b) > 240


def test_not_an_image_is_rejected_by_content_not_name():
    with pytest.raises(images.ImageRejected, match="not an image Studio can read"):
        normalise(b"<html><body>hello</body></html>")


def test_gif_is_rejected_with_its_format_named():
    with pytest.raises(images.ImageRejected, match="GIF images are not accepted"):
        normalise(photo(800, 600, "GIF"))


def test_too_many_pixels_is_rejected_from_the_header(settings):
    settings.STUDIO_MAX_PIXELS = 1_000_000
    with pytest.raises(
        images.ImageRejected, match=r"1280×1024 \(1.3 megapixels\); the limit is 1 megapixels"
    ):
        normalise(photo(1280, 1024, "PNG"))


def test_too_large_a_file_is_rejected_naming_both_sizes(settings):
    settings.STUDIO_MAX_UPLOAD_BYTES = 1024 * 1024
    data = photo(1024, 768, "PNG") + b"\0" * (2 * 1024 * 1024)
    with pytest.raises(images.ImageRejected, match=r"The image is 2\.\d MB; the limit is 1\.0 MB"):
        normalise(data)


@pytest.mark.parametrize(
    ("width", "height", "ok"), [(511, 900, False), (512, 900, True), (900, 511, False)]
)
def test_short_side_minimum_is_512(width, height, ok):
    if ok:
        assert normalise(photo(width, height)).width == width
    else:
        with pytest.raises(images.ImageRejected, match="short side must be at least 512 px"):
            normalise(photo(width, height))


def test_short_side_under_720_is_accepted_with_a_warning():
    assert "will look soft" in normalise(photo(1000, 600)).warnings[0]
    assert normalise(photo(1280, 720)).warnings == ()


def test_truncated_image_is_rejected():
    data = photo(1280, 720, "PNG")
    with pytest.raises(images.ImageRejected, match=r"damaged or truncated|could not be read"):
        normalise(data[: len(data) // 2])


def test_same_upload_is_stored_once_per_creator(creator, other_creator):
    data = photo(800, 600)
    first = images.store(creator, normalise(data))
    again = images.store(creator, normalise(data))
    theirs = images.store(other_creator, normalise(data))
    assert first.pk == again.pk
    assert theirs.pk != first.pk
    assert first.file.name.startswith("images/") and "photo" not in first.file.name


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=4096))
def test_random_bytes_are_rejected_never_crash(data):
    with pytest.raises(images.ImageRejected):
        normalise(data)


ENCODABLE = (
    [("JPEG", m) for m in ("RGB", "L", "CMYK")]
    + [("PNG", m) for m in ("RGB", "L", "RGBA", "P", "I;16")]
    + [("WEBP", m) for m in ("RGB", "RGBA")]
)


@hypothesis_settings(max_examples=25, deadline=None)
@given(
    width=st.integers(512, 1400),
    height=st.integers(512, 1400),
    encoding=st.sampled_from(ENCODABLE),
)
def test_any_valid_image_comes_out_as_clean_rgb_of_the_same_size(width, height, encoding):
    fmt, mode = encoding
    result = normalise(photo(width, height, fmt, mode=mode))
    decoded = Image.open(io.BytesIO(result.data))
    assert (decoded.format, decoded.mode, decoded.size) == ("JPEG", "RGB", (width, height))
    assert not decoded.getexif()
    assert "icc_profile" not in decoded.info

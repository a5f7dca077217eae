"""The local renderer (studio/providers/local/renderer.py) and reading clips back
(studio/video.py): real renders, read back and measured with PyAV."""

from __future__ import annotations

import functools
import io
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageOps

from studio.frames import frame_size as output_size
from studio.providers.local.renderer import (
    MOTIONS,
    RenderSpec,
    _video_frames,  # the frames before encoding
    motion_for_prompt,
    render_clip,
    title_card,
)
from studio.video import VideoError, probe_with_poster


def probe(path):
    """A clip's shape as finishing reads it back (without its poster)."""
    return probe_with_poster(path)[0]


FPS = 24
ONE_FRAME = 1 / FPS


@functools.cache  # callers only read these pictures
def photo(
    size: tuple[int, int] = (1600, 900), blob: tuple[float, float] = (0.62, 0.4)
) -> Image.Image:
    """A dim, textured, photo-like picture with one bright soft blob whose position we track."""
    width, height = size
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 55 + 40 * xs / width + 15 * np.sin(ys / 37) + rng.normal(0, 5, (height, width))
    spread = 2 * (0.02 * width) ** 2
    bright = 255 * np.exp(-((xs - blob[0] * width) ** 2 + (ys - blob[1] * height) ** 2) / spread)
    luma = np.maximum(np.clip(base, 0, 105), bright)
    rgb = np.stack([luma, luma * 0.95, luma * 0.85], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


@functools.cache
def stripes(size: tuple[int, int] = (1200, 800)) -> Image.Image:
    """A bright, colourful picture nothing like photo(), to crossfade to."""
    width, height = size
    xs = np.arange(width)[None, :, None]
    ys = np.arange(height)[:, None, None]
    rgb = 128 + 100 * np.sin(xs / 23.0 + np.array([0, 2, 4])) * np.cos(ys / 41.0)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def lumas(path: Path) -> list[np.ndarray]:
    """Every decoded frame's Y plane (yuv420p's first `height` rows)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray()[: f.height].astype(np.float64) for f in container.decode(video=0)]


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def last_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        *_, final = container.decode(video=0)
        return final.to_ndarray(format="rgb24").astype(np.float64)


def audio_samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def blob_position(luma: np.ndarray) -> tuple[float, float]:
    """Sub-pixel centre of the bright blob: a weighted centroid of what rises above the scene."""
    weight = np.clip(luma - 120, 0, None)
    ys, xs = np.indices(luma.shape)
    return float((xs * weight).sum() / weight.sum()), float((ys * weight).sum() / weight.sum())


def render(
    tmp: Path, name: str, first: Image.Image, last: Image.Image | None = None, **spec
) -> Path:
    values = {"width": 320, "height": 180, "duration": 4, "motion": "push_in", "audio": False}
    values |= {"seed": 1} | spec
    path = tmp / f"{name}.mp4"
    render_clip(first, last, RenderSpec(**values), path)
    return path


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video")


@pytest.fixture(scope="module")
def landscape_720p(tmp: Path) -> Path:
    return render(tmp, "landscape", photo(), width=1280, height=720, audio=True, seed=3)


@pytest.fixture(scope="module")
def portrait_720p(tmp: Path) -> Path:
    return render(tmp, "portrait", photo((900, 1600)), width=720, height=1280, motion="tilt_up")


@pytest.fixture(scope="module")
def crossfade_1080p(tmp: Path) -> Path:
    return render(tmp, "crossfade", photo(), stripes(), width=1920, height=1080)


# --------------------------------------------------------------------------- choosing


@pytest.mark.parametrize(
    ("aspect", "resolution", "image_size", "expected"),
    [
        ("16:9", "720p", None, (1280, 720)),
        ("16:9", "1080p", (500, 900), (1920, 1080)),
        ("9:16", "720p", None, (720, 1280)),
        ("9:16", "1080p", (1600, 900), (1080, 1920)),
        ("auto", "720p", (1600, 900), (1280, 720)),
        ("auto", "1080p", (900, 1600), (1080, 1920)),
        ("auto", "720p", (900, 1600), (720, 1280)),
        ("auto", "720p", (1000, 1000), (1280, 720)),
        ("auto", "1080p", None, (1920, 1080)),
    ],
)
def test_output_size(aspect, resolution, image_size, expected):
    assert output_size(aspect, resolution, image_size) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Slow push in on the lighthouse", "push_in"),
        ("ZOOM IN to her eyes", "push_in"),
        ("camera dollies in through the door", "push_in"),
        ("pull out to reveal the valley", "pull_out"),
        ("the camera pulls back from the crowd", "pull_out"),
        ("Zoom out slowly", "pull_out"),
        ("dolly out", "pull_out"),
        ("pan left across the harbour", "pan_left"),
        ("Panning to the right over rooftops", "pan_right"),
        ("tilt up to the stars", "tilt_up"),
        ("tilts down to the street", "tilt_down"),
        ("pan right, then zoom in", "pan_right"),
        ("a cat asleep on a windowsill", "push_in"),
        ("span leftover zoomindex", "push_in"),  # whole words only
        ("Camera orbits around the subject.", "orbit"),
        ("circling around the statue", "orbit"),
        ("Static camera, locked off.", "static"),
        ("a locked-off shot of the square", "static"),
        ("Handheld camera, gentle sway.", "handheld"),
        ("hand-held through the market", "handheld"),
    ],
)
def test_motion_for_prompt(prompt, expected):
    assert motion_for_prompt(prompt) == expected


def test_each_camera_move_chip_drives_its_own_motion():
    from studio.web.panel import CAMERA_MOVES

    motions = [motion_for_prompt(f"A harbour at dawn. {phrase}") for _, phrase in CAMERA_MOVES]
    assert sorted(motions) == sorted(MOTIONS)


def test_every_motion_can_be_named():
    assert {motion_for_prompt(name.replace("_", " ")) for name in MOTIONS} == set(MOTIONS)


# --------------------------------------------------------------------------- the files


def test_landscape_720p_has_exact_shape_timing_and_audio(landscape_720p: Path):
    info = probe(landscape_720p)
    assert (info.width, info.height) == (1280, 720)
    assert info.duration == pytest.approx(4.0, abs=ONE_FRAME)
    assert info.fps == 24
    assert info.has_audio
    assert info.size_bytes == landscape_720p.stat().st_size

    with av.open(str(landscape_720p)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert audio.codec_context.name == "aac"
        assert (audio.rate, audio.channels) == (48_000, 2)
        assert float(audio.duration * audio.time_base) == pytest.approx(4.0, abs=ONE_FRAME)
        assert float(video.duration * video.time_base) == pytest.approx(4.0, abs=ONE_FRAME)
    assert frame_count(landscape_720p) == 4 * FPS


def test_portrait_720p_without_audio_has_no_audio_stream(portrait_720p: Path):
    info = probe(portrait_720p)
    assert (info.width, info.height) == (720, 1280)
    assert info.duration == pytest.approx(4.0, abs=ONE_FRAME)
    assert not info.has_audio
    with av.open(str(portrait_720p)) as container:
        assert len(container.streams.audio) == 0
        assert container.streams.video[0].frames == 4 * FPS


def test_1080p_crossfade_ends_on_the_last_image(crossfade_1080p: Path):
    info = probe(crossfade_1080p)
    assert (info.width, info.height) == (1920, 1080)
    final = last_rgb(crossfade_1080p)
    as_last = np.asarray(ImageOps.fit(stripes(), (1920, 1080)), dtype=np.float64)
    as_first = np.asarray(ImageOps.fit(photo(), (1920, 1080)), dtype=np.float64)
    assert np.abs(final - as_last).mean() < 4
    assert np.abs(final - as_first).mean() > 40


def test_six_second_clip_has_exact_frame_count(tmp: Path):
    path = render(tmp, "six", photo(), duration=6, motion="pan_right")
    assert probe(path).duration == pytest.approx(6.0, abs=ONE_FRAME)
    assert frame_count(path) == 6 * FPS


def test_any_image_mode_is_accepted(tmp: Path):
    for mode in ("RGBA", "L", "P", "CMYK"):
        path = render(tmp, f"mode-{mode}", photo((640, 360)).convert(mode), stripes().convert(mode))
        assert probe(path).width == 320


def test_exif_orientation_is_honoured(tmp: Path):
    # Stored landscape, tagged "rotate 90 degrees clockwise to display": a portrait photo.
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = io.BytesIO()
    photo().save(stored, format="JPEG", quality=95, exif=exif)
    with Image.open(stored) as sideways:
        path = render(tmp, "exif", sideways, width=180, height=320)
    x, y = blob_position(lumas(path)[0])
    # Displayed, the blob at stored (0.62, 0.40) sits at (1 - 0.40, 0.62) of the frame.
    assert x / 180 == pytest.approx(0.60, abs=0.03)
    assert y / 320 == pytest.approx(0.62, abs=0.03)


def test_bad_spec_is_refused(tmp: Path):
    with pytest.raises(ValueError):
        render(tmp, "odd", photo(), width=321)
    with pytest.raises(ValueError):
        render(tmp, "spin", photo(), motion="barrel_roll")


# --------------------------------------------------------------------------- sound


def test_audio_is_seeded_soft_and_exact(tmp: Path):
    same_a = audio_samples(render(tmp, "seed5a", photo((640, 360)), audio=True, seed=5))
    same_b = audio_samples(render(tmp, "seed5b", photo((640, 360)), audio=True, seed=5))
    other = audio_samples(render(tmp, "seed6", photo((640, 360)), audio=True, seed=6))

    assert np.array_equal(same_a, same_b)
    # Decoders keep the last AAC frame's padding; the container's duration excludes it.
    assert same_a.shape[0] == 2 and 4 * 48_000 <= same_a.shape[1] < 4 * 48_000 + 1024
    assert np.abs(same_a - other).mean() > 0.01
    peak, rms = np.abs(same_a).max(), np.sqrt(np.mean(same_a**2))
    assert peak < 0.5  # quiet, nowhere near clipping
    assert rms > 0.01  # but not silence
    assert not np.array_equal(same_a[0], same_a[1])  # stereo


# --------------------------------------------------------------------------- motion


@pytest.mark.parametrize(
    ("motion", "axis", "sign"),
    [
        ("pan_left", 0, +1),  # the camera turns left, so the scene drifts right in frame
        ("pan_right", 0, -1),
        ("tilt_up", 1, +1),
        ("tilt_down", 1, -1),
    ],
)
def test_pans_and_tilts_move_the_scene_the_right_way(tmp: Path, motion, axis, sign):
    frames = lumas(render(tmp, motion, photo(), motion=motion))
    start, end = blob_position(frames[0]), blob_position(frames[-1])
    assert sign * (end[axis] - start[axis]) > 5  # pixels, out of a 320x180 frame
    assert abs(end[1 - axis] - start[1 - axis]) < 0.5
    assert np.abs(frames[-1] - frames[0]).mean() > 2


def test_push_in_and_pull_out_zoom_about_the_centre(tmp: Path):
    centre = np.array([160, 90])
    push = lumas(render(tmp, "push", photo(), motion="push_in"))
    pull = lumas(render(tmp, "pull", photo(), motion="pull_out"))

    def reach(frame):  # how far the blob sits from the centre of the frame
        return np.linalg.norm(np.array(blob_position(frame)) - centre)

    assert reach(push[-1]) > reach(push[0]) * 1.06
    assert reach(pull[-1]) < reach(pull[0]) / 1.06
    assert reach(push[0]) == pytest.approx(reach(pull[-1]), abs=0.2)


def test_static_stays_and_orbit_arcs_and_handheld_sways(tmp: Path):
    def path(motion):
        frames = lumas(render(tmp, motion, photo(), motion=motion))
        return np.array([blob_position(f) for f in frames])

    still = path("static")
    assert np.abs(still - still[0]).max() < 0.2
    orbit = path("orbit")
    assert orbit[-1][0] - orbit[0][0] < -5  # sweeps across, the scene drifting the other way
    middle = orbit[len(orbit) // 2][1]
    assert middle - max(orbit[0][1], orbit[-1][1]) > 1  # and rises on an arc, then settles
    sway = path("handheld")
    turns = np.sum(np.diff(np.sign(np.diff(sway[:, 0]))) != 0)
    assert turns >= 4  # back and forth, not one way
    assert np.abs(sway - sway[0]).max() < 12  # and only a little


def test_motion_is_eased_in_and_out(tmp: Path):
    frames = lumas(render(tmp, "eased", photo(), motion="pan_right"))
    xs = np.array([blob_position(f)[0] for f in frames])
    moved = np.abs(np.diff(xs))
    assert moved[:8].sum() < 1 and moved[-8:].sum() < 1  # pixels over the first/last 1/3 s
    assert moved[44:52].sum() > 2.5  # and briskly through the middle (~3.4 px)


def test_camera_path_is_sub_pixel_smooth():
    # Measured on the frames handed to x264, as the codec itself rounds motion to 1/4 px.
    spec = RenderSpec(640, 360, 4, "pan_left", audio=False, seed=1)
    frames = _video_frames(photo(), None, spec)
    xs = np.array([blob_position(f.to_ndarray()[:360].astype(np.float64))[0] for f in frames])
    speed = np.diff(xs)
    assert speed.min() > -0.05 and speed.max() > 0.5  # one way, and really moving
    # A camera rounded to whole pixels (what ffmpeg's zoompan does) jolts this by ~1 px.
    assert np.abs(np.diff(speed)).max() < 0.25


# --------------------------------------------------------------------------- reading back


def test_probe_refuses_garbage_and_truncated_files(tmp: Path, landscape_720p: Path):
    garbage = tmp / "garbage.mp4"
    garbage.write_bytes(b"definitely not a video" * 500)
    with pytest.raises(VideoError, match="not a playable video"):
        probe(garbage)

    data = landscape_720p.read_bytes()
    for keep in (0.5, 0.9, 0.01):
        truncated = tmp / f"truncated-{keep}.mp4"
        truncated.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(VideoError, match="not a playable video"):
            probe(truncated)

    with pytest.raises(VideoError):
        probe(tmp / "missing.mp4")


def test_probe_refuses_a_file_without_video(tmp: Path):
    path = tmp / "sound-only.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48_000, layout="stereo")
        for index in range(20):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = 48_000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoError, match="not a playable video"):
        probe(path)


def rgb_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]


def jpeg_rgb(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_the_poster_is_the_first_frame_read_in_the_same_pass_as_the_probe(landscape_720p: Path):
    info, poster = probe_with_poster(landscape_720p)
    assert info == probe(landscape_720p)
    picture = jpeg_rgb(poster)
    assert picture.shape == (720, 1280, 3)
    frames = rgb_frames(landscape_720p)
    # JPEG at quality 85 stays within a few levels; the clip pushes in, so a later frame
    # is a different picture and would not.
    assert np.abs(picture - frames[0]).mean() < 3
    assert np.abs(picture - frames[-1]).mean() > 2 * np.abs(picture - frames[0]).mean()


def test_a_clip_that_fades_in_gets_its_poster_from_one_second_in(tmp: Path):
    path = tmp / "fade-in.mp4"
    picture = np.asarray(photo((320, 180)).convert("RGB"))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for index in range(2 * FPS):
            fade = min(1.0, index / FPS)  # black, brightening to the picture over a second
            rgb = (picture * fade).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    info, poster = probe_with_poster(path)
    assert info.duration == pytest.approx(2.0, abs=ONE_FRAME)
    frames = rgb_frames(path)
    assert frames[0].std() < 4  # the first frame really is blank
    distance = [np.abs(jpeg_rgb(poster) - frame).mean() for frame in frames]
    closest = int(np.argmin(distance))
    # The reference frame nearest one second (frames no other refers to are not decoded).
    assert abs(closest - FPS) <= 3 and distance[closest] < 3


def test_a_poster_cannot_be_made_of_a_file_that_is_not_a_video(tmp: Path):
    path = tmp / "not-a-video.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    with pytest.raises(VideoError, match="not a playable video"):
        probe_with_poster(path)


# --------------------------------------------------------------------------- progress


def test_progress_is_reported_a_few_times_a_second(tmp: Path):
    seen: list[float] = []
    spec = RenderSpec(320, 180, 4, "pan_left", True, 1)
    render_clip(photo(), None, spec, tmp / "progress.mp4", on_progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0 and all(0 < f <= 1 for f in seen)
    assert 4 <= len(seen) <= 4 * 4


def test_raising_from_progress_cancels_the_render(tmp: Path):
    class Cancelled(Exception):
        pass

    calls: list[float] = []

    def cancel(fraction: float) -> None:
        calls.append(fraction)
        raise Cancelled

    threads_before = threading.active_count()
    spec = RenderSpec(640, 360, 8, "push_in", True, 1)
    with pytest.raises(Cancelled):
        render_clip(photo(), None, spec, tmp / "cancelled.mp4", on_progress=cancel)
    assert len(calls) == 1 and calls[0] < 0.5
    assert threading.active_count() == threads_before  # the frame and audio workers are gone


# --------------------------------------------------------------------------- title cards


@pytest.mark.parametrize("size", [(1280, 720), (1080, 1920)])
def test_title_card_is_the_requested_size_and_shows_text(size):
    prompt = "A lighthouse at dusk, waves rolling in, gulls wheeling over the rocks " * 3
    card = title_card(prompt, seed=4, size=size)
    assert card.size == size and card.mode == "RGB"
    pixels = np.asarray(card, dtype=np.float64)
    assert (pixels.min(axis=2) > 200).mean() > 0.003  # light text on a dark backdrop
    other = np.asarray(title_card(prompt, seed=5, size=size), dtype=np.float64)
    assert np.abs(pixels - other).mean() > 3  # the seed picks the colours


def test_title_card_renders_to_a_clip(tmp: Path):
    card = title_card("", seed=1, size=(1280, 720))
    path = render(tmp, "card", card, width=320, height=180)
    assert probe(path).duration == pytest.approx(4.0, abs=ONE_FRAME)

"""The local renderer's pictures and sound: a still becomes a real H.264 + AAC MP4 with PyAV.

Pure PyAV + Pillow + numpy, with no Django import, so the worker (worker.py), the emulator and
the tests can all call it directly.

How a render keeps up with the ffmpeg CLI on two cores: the image is fitted once onto a "canvas"
a little larger than the frame and converted to YUV 4:2:0 once; each frame is then three
swscale resamples of a sub-pixel box of those planes (see _fit_axis), written straight into the
frame's own buffers. A worker thread draws frames and another makes the sound while libx264
encodes; all three spend their time in C with the GIL released, so both cores stay busy.
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter
from PIL import Image, ImageDraw, ImageFont, ImageOps

from studio.video import VideoError

MOTIONS = (
    "push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down",
    "orbit", "static", "handheld",
)  # fmt: skip

SAMPLE_RATE = 48_000

# The canvas is this much larger than the frame, which is the room the camera has to move in.
_MARGIN = 0.12
# Canvas pixels per output pixel at the tight end of a zoom: the zoom is 1.12 / 1.02 ~ 10%.
_ZOOM_TIGHT = 1.02
# Pans and tilts view the canvas slightly downscaled rather than 1:1. At exactly 1:1 every pixel
# would share one sub-pixel phase, so sharpness would visibly pulse from frame to frame.
_PAN_SCALE = 1.04

# Bicubic is visibly closer than bilinear to a Lanczos reference, for little time a frame.
_INTERPOLATION = Interpolation.BICUBIC
# veryfast + crf 21 is clean on photos at 720p (~42 dB PSNR on a real photo, a little better
# than ffmpeg's default crf 23); slower presets cost ~2x the time for little visible gain.
_X264_OPTIONS = {"preset": "veryfast", "crf": "21"}
_AUDIO_BIT_RATE = 128_000
# Front-loads the index so browsers can start playing before the whole file has arrived.
_MP4_OPTIONS = {"movflags": "+faststart"}
_AAC_FRAME = 1024
_PROGRESS_EVERY = 12  # frames, i.e. twice per second of output at 24 fps
_PREFETCH = 6  # frames drawn ahead of the encoder; each is ~1.4 MB at 720p

_T = TypeVar("_T")


@dataclass(frozen=True)
class RenderSpec:
    width: int
    height: int
    duration: int  # seconds (4, 6 or 8)
    motion: str  # one of MOTIONS
    audio: bool
    seed: int
    fps: int = 24


# --------------------------------------------------------------------------- choosing


# Verb forms a prompt may use ("zooming", "pans", "dollies"...).
_PUSH, _PULL = r"push(?:es|ed|ing)?", r"pull(?:s|ed|ing)?"
_ZOOM, _DOLLY = r"zoom(?:s|ed|ing)?", r"doll(?:y|ies|ied|ying)"
_PAN, _TILT = r"pan(?:s|ned|ning)?", r"tilt(?:s|ed|ing)?"
_MOTION_PATTERNS = {
    "push_in": rf"\b(?:{_PUSH}|{_ZOOM}|{_DOLLY})[\s-]+in(?:to|wards?)?\b",
    "pull_out": rf"\b(?:{_PULL}|{_ZOOM}|{_DOLLY})[\s-]+(?:out|back)\b",
    "pan_left": rf"\b{_PAN}[\s-]+(?:to\s+the\s+)?left(?:wards?)?\b",
    "pan_right": rf"\b{_PAN}[\s-]+(?:to\s+the\s+)?right(?:wards?)?\b",
    "tilt_up": rf"\b{_TILT}[\s-]+up(?:wards?)?\b",
    "tilt_down": rf"\b{_TILT}[\s-]+down(?:wards?)?\b",
    "orbit": r"\borbit(?:s|ed|ing)?\b|\b(?:circl|arc)(?:e|es|s|ed|ing)?\s+around\b",
    "static": r"\bstatic\b|\blocked[\s-]+off\b|\btripod\b",
    "handheld": r"\bhand[\s-]?held\b",
}
_MOTION_RES = {name: re.compile(rx, re.IGNORECASE) for name, rx in _MOTION_PATTERNS.items()}


def motion_for_prompt(prompt: str) -> str:
    """The camera move a prompt names, or a gentle push-in when it names none."""
    # When several moves are named, the one mentioned first is usually the main one.
    found = []
    for name, regex in _MOTION_RES.items():
        match = regex.search(prompt)
        if match:
            found.append((match.start(), name))
    return min(found)[1] if found else "push_in"


# --------------------------------------------------------------------------- pictures


def title_card(prompt: str, seed: int, size: tuple[int, int]) -> Image.Image:
    """A seeded gradient backdrop with the prompt on it, for text-to-video without an image."""
    width, height = size
    rng = np.random.default_rng(seed)
    # Two hues a little apart, dark enough that white text always reads.
    hue = rng.uniform(0, 1)
    colors = [_hsv(hue, 0.55, 0.42), _hsv((hue + rng.uniform(0.08, 0.2)) % 1, 0.6, 0.22)]
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs / width - 0.5) * math.cos(angle) + (ys / height - 0.5) * math.sin(angle)
    mix = np.clip(along + 0.5, 0, 1)[..., None]
    rgb = colors[0] * (1 - mix) + colors[1] * mix
    # A soft vignette keeps the eye on the text, and a little grain stops x264 banding the ramp.
    radius = np.hypot(xs / width - 0.5, ys / height - 0.5)[..., None]
    rgb *= 1 - 0.35 * radius**2
    rgb += rng.normal(0, 1.5, rgb.shape)
    card = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    _draw_text(card, prompt.strip() or "Untitled")
    return card


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    pixel = Image.new("HSV", (1, 1), (int(h * 255), int(s * 255), int(v * 255))).convert("RGB")
    return np.array(pixel.getpixel((0, 0)), dtype=np.float32)


def _draw_text(card: Image.Image, text: str) -> None:
    width, height = card.size
    draw = ImageDraw.Draw(card)
    # Pans and zooms show ~91% of the card at their tightest, so keep the text well inside.
    max_width = width * 0.72
    max_lines = 6
    font_size = max(12, min(width, height) // 11)
    while True:
        font = ImageFont.load_default(size=font_size)
        lines = _wrap(text, font, draw, max_width)
        if len(lines) <= max_lines or font_size <= 14:
            break
        font_size = int(font_size * 0.85)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1] + "..."]
    spacing = font_size // 3
    block = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), block, font=font, spacing=spacing)
    x = (width - (right - left)) / 2 - left
    y = (height - (bottom - top)) / 2 - top
    shadow = max(1, font_size // 18)
    for dx, dy, fill in ((shadow, shadow, (0, 0, 0)), (0, 0, (250, 248, 240))):
        draw.multiline_text(
            (x + dx, y + dy), block, font=font, fill=fill, spacing=spacing, align="center"
        )


def _wrap(
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    draw: ImageDraw.ImageDraw,
    limit: float,
) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=font) > limit:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover `size` and centre-crop, in one resample."""
    # Phone photos are often stored sideways with an EXIF orientation tag; honour it.
    image = ImageOps.exif_transpose(image).convert("RGB")
    width, height = size
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _yuv_planes(image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.709 limited-range yuv420p planes of an even-sized RGB image (what browsers expect)."""
    frame = av.VideoFrame.from_image(image).reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    data = frame.to_ndarray()
    width, height = image.size
    u, v = data[height:].reshape(2, height // 2, width // 2)
    return data[:height], u, v


# Sub-pixel views through swscale. Pillow's `resize(box=...)` takes float boxes but is ~4x slower
# than swscale, which only takes integer crops. swscale maps output pixel j of a `scaled`-wide
# result of source columns [offset, offset + span) to source x = offset + (j + 0.5) * r - 0.5,
# r = span / scaled. Scaling a little more than needed and dropping `skip` result pixels gives
#     x(j) = offset + (j + skip + 0.5) * r - 0.5,
# and over a few thousand integer (scaled, skip) choices one lands within ~0.06 px of the ideal
# x(j) = start + (j + 0.5) * s - 0.5 (s = length / out) across the whole row. That search only
# works when s is a little away from 1:1 (skip * r mod 1 must sweep the phases), hence
# _ZOOM_TIGHT and _PAN_SCALE above 1.
_EXTRA = 96  # at most this many extra result pixels per axis (~8% more scaling work at 720p)
_GUARD = 2  # result pixels kept off each crop edge, where swscale clamps its filter taps
_PAD = 112  # edge-replicated source pixels around each plane: >= _EXTRA * max scale + _GUARD


@dataclass(frozen=True)
class _Axis:
    offset: int  # first source pixel handed to swscale
    span: int  # source pixels handed to swscale
    scaled: int  # pixels swscale produces
    skip: int  # produced pixels dropped before the `out` kept ones


def _fit_axis(start: float, length: float, out: int, limit: int) -> _Axis:
    """Integer swscale set-up showing source [start, start + length) across `out` pixels."""
    s = length / out
    scaled = np.arange(out + 2 * _GUARD, out + _EXTRA + 1)
    span = np.round(s * scaled)
    # Keep the few sizes whose ratio r matches s best (drift over the row well under 0.05 px),
    # then pick the skip that lines up the phase.
    best = np.argsort(np.abs(span / scaled - s))[:8]
    scaled, span = scaled[best, None], span[best, None]
    ratio = span / scaled
    skip = np.arange(_GUARD, _EXTRA - _GUARD + 1)[None, :]
    offset = np.round(start + 0.5 * s - (skip + 0.5) * ratio)
    first_error = offset + (skip + 0.5) * ratio - 0.5 * s - start
    error = np.maximum(abs(first_error), abs(first_error + (out - 1) * (ratio - s)))
    unusable = (skip + out + _GUARD > scaled) | (offset < 0) | (offset + span > limit)
    error[unusable] = np.inf
    i, k = np.unravel_index(np.argmin(error), error.shape)
    return _Axis(int(offset[i, k]), int(span[i, 0]), int(scaled[i, 0]), int(skip[0, k]))


class _PlaneSampler:
    """One picture plane that can show any float box of itself, resampled, via swscale."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.padded = np.pad(pixels, _PAD, mode="edge")
        self.reformatter = VideoReformatter()

    def plan(
        self, box: tuple[float, float, float, float], size: tuple[int, int]
    ) -> tuple[_Axis, _Axis]:
        x0, y0, x1, y1 = box
        limit_y, limit_x = self.padded.shape
        return (
            _fit_axis(x0 + _PAD, x1 - x0, size[0], limit_x),
            _fit_axis(y0 + _PAD, y1 - y0, size[1], limit_y),
        )

    def sample(self, plan: tuple[_Axis, _Axis], size: tuple[int, int]) -> np.ndarray:
        ax, ay = plan
        crop = self.padded[ay.offset : ay.offset + ay.span, ax.offset : ax.offset + ax.span]
        scaled = self.reformatter.reformat(
            av.VideoFrame.from_numpy_buffer(crop, format="gray"),
            ax.scaled,
            ay.scaled,
            interpolation=_INTERPOLATION,
            threads=1,  # the frame worker is one thread of our own; x264 has the other core
        )
        result = _plane_array(scaled.planes[0], ay.scaled)
        return result[ay.skip : ay.skip + size[1], ax.skip : ax.skip + size[0]]


def _plane_array(plane: av.video.plane.VideoPlane, height: int) -> np.ndarray:
    """A writable (height, line_size) view of a frame plane's own memory."""
    # A plane is a buffer (PyAV's stubs do not say so).
    rows: np.ndarray = np.frombuffer(plane, np.uint8)  # type: ignore[call-overload]
    return rows.reshape(height, plane.line_size)


def _blend(moving: np.ndarray, still: np.ndarray, alpha: float) -> np.ndarray:
    # YUV is an affine map of R'G'B', so blending planes equals blending the RGB pictures.
    # Pillow's blend is several times faster than numpy arithmetic here.
    first, second = (Image.fromarray(np.ascontiguousarray(p)) for p in (moving, still))
    return np.asarray(Image.blend(first, second, alpha))


def _even_ceil(value: float) -> int:
    return 2 * math.ceil(value / 2)


def _smoothstep(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t)


def _viewport(
    motion: str, eased: float, canvas: tuple[int, int], out: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The canvas region shown at eased time `eased` (0..1), as a float box."""
    (cw, ch), (w, h) = canvas, out
    if motion in ("push_in", "pull_out"):
        zoom = eased if motion == "push_in" else 1 - eased
        wide = min(cw / w, ch / h)
        scale = wide + (_ZOOM_TIGHT - wide) * zoom
        bw, bh = w * scale, h * scale
        x0, y0 = (cw - bw) / 2, (ch - bh) / 2
    else:
        bw, bh = w * _PAN_SCALE, h * _PAN_SCALE
        spare_x, spare_y = cw - bw, ch - bh
        x0, y0 = spare_x / 2, spare_y / 2
        # The camera turns one way, so the window over the picture slides that way and the
        # picture appears to move the other: pan_left shows content drifting right.
        if motion == "pan_left":
            x0 = spare_x * (1 - eased)
        elif motion == "pan_right":
            x0 = spare_x * eased
        elif motion == "tilt_up":
            y0 = spare_y * (1 - eased)
        elif motion == "tilt_down":
            y0 = spare_y * eased
        elif motion == "orbit":
            # Round the subject: a sweep across with the camera rising and settling on an arc.
            x0 = spare_x * eased
            y0 = spare_y * (0.5 - 0.4 * math.sin(math.pi * eased))
        elif motion == "handheld":
            # A held camera's gentle, uneven sway about the centre (the same every render).
            u = 2 * math.pi * eased
            x0 += spare_x * 0.22 * (math.sin(3.1 * u) + 0.45 * math.sin(7.3 * u + 1.0))
            y0 += spare_y * 0.22 * (math.sin(2.3 * u + 2.0) + 0.45 * math.sin(5.9 * u))
        # "static": the window stays centred.
    return (x0, y0, x0 + bw, y0 + bh)


def _video_frames(
    first: Image.Image, last: Image.Image | None, spec: RenderSpec
) -> Iterator[av.VideoFrame]:
    width, height = spec.width, spec.height
    canvas_size = (_even_ceil(width * (1 + _MARGIN)), _even_ceil(height * (1 + _MARGIN)))
    luma, *chroma = (_PlaneSampler(p) for p in _yuv_planes(_cover(first, canvas_size)))
    end = _yuv_planes(_cover(last, (width, height))) if last is not None else None
    sizes = ((width, height), (width // 2, height // 2), (width // 2, height // 2))
    count = spec.duration * spec.fps
    for index in range(count):
        t = index / max(count - 1, 1)
        box = _viewport(spec.motion, _smoothstep(t), canvas_size, (width, height))
        # Crossfade over the second half; the final frame is exactly the last image.
        alpha = _smoothstep(2 * t - 1) if end is not None else 0.0
        if end is not None and alpha >= 1:
            pictures = list(end)
        else:
            # U and V share one geometry, so plan it once.
            luma_plan = luma.plan(box, sizes[0])
            x0, y0, x1, y1 = box
            chroma_plan = chroma[0].plan((x0 / 2, y0 / 2, x1 / 2, y1 / 2), sizes[1])
            pictures = [luma.sample(luma_plan, sizes[0])]
            pictures += [sampler.sample(chroma_plan, sizes[1]) for sampler in chroma]
            if end is not None and alpha > 0:
                pictures = [_blend(p, e, alpha) for p, e in zip(pictures, end, strict=True)]
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, picture in zip(frame.planes, pictures, strict=True):
            h, w = picture.shape
            _plane_array(plane, h)[:, :w] = picture
        frame.pts = index
        frame.time_base = Fraction(1, spec.fps)
        yield frame


def _in_background(items: Iterator[_T], depth: int) -> Generator[_T, None, None]:
    """Produce `items` in a worker thread, `depth` ahead; close the generator to stop it."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(finished)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=work, name="studio-video-frames", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is finished:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


# --------------------------------------------------------------------------- sound

# Semitone offsets of a few soft chords (major, minor, sus2, add9-ish voicings).
_CHORDS = ((0, 7, 12, 16), (0, 7, 12, 15), (0, 7, 14, 19), (0, 4, 7, 14), (0, 3, 10, 15))


def _ambience(seed: int, duration: int) -> np.ndarray:
    """Soft stereo ambience, float32 of shape (2, duration * SAMPLE_RATE), peak 0.25."""
    rng = np.random.default_rng(seed)
    n = duration * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE

    # Brown noise shaped in the frequency domain: 1/f amplitude, a high-pass so it does not
    # rumble or drift like a raw cumulative sum, and a seeded low-pass for the "room" colour.
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    cutoff = rng.uniform(250, 900)
    shape = 1 / np.maximum(freqs, 1.0)
    shape *= (freqs / 40) ** 2 / (1 + (freqs / 40) ** 2)
    shape /= 1 + (freqs / cutoff) ** 4
    bed = np.fft.irfft(np.fft.rfft(rng.standard_normal((2, n)), axis=1) * shape, n=n, axis=1)
    bed = np.stack([0.8 * bed[0] + 0.2 * bed[1], 0.2 * bed[0] + 0.8 * bed[1]])
    bed *= 0.05 / np.sqrt(np.mean(bed**2))

    # A slow pad: a chord around A2, each partial breathing at its own rate, slightly detuned
    # between the ears for width.
    root = 110 * 2 ** (rng.integers(-5, 7) / 12)
    chord = _CHORDS[rng.integers(len(_CHORDS))]
    pad = np.zeros((2, n))
    for rank, semitones in enumerate(chord):
        freq = root * 2 ** (semitones / 12)
        breathing = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 6.3))
        level = rng.uniform(0.6, 1.0) / (1 + rank)
        for channel in range(2):
            detuned = freq + rng.uniform(-0.4, 0.4)
            pad[channel] += (
                level * breathing * np.sin(2 * np.pi * detuned * t + rng.uniform(0, 6.3))
            )
    pad *= 0.04 / np.sqrt(np.mean(pad**2))

    mix = bed + pad
    fade_in, fade_out = int(0.8 * SAMPLE_RATE), int(1.2 * SAMPLE_RATE)
    envelope = np.ones(n)
    envelope[:fade_in] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade_in))
    envelope[-fade_out:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fade_out))
    mix *= envelope
    mix *= 0.25 / np.max(np.abs(mix))  # -12 dBFS peak: quiet, and AAC has headroom
    return mix.astype(np.float32)


def _aac_packets(stream: av.AudioStream, pcm: np.ndarray) -> Iterator[av.Packet]:
    for start in range(0, pcm.shape[1], _AAC_FRAME):
        chunk = np.ascontiguousarray(pcm[:, start : start + _AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        yield from stream.encode(frame)
    yield from stream.encode(None)


# --------------------------------------------------------------------------- render


def render_clip(
    first: Image.Image,
    last: Image.Image | None,
    spec: RenderSpec,
    out_path: str | os.PathLike,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Write `first` (crossfading to `last`, if given) as an H.264/AAC MP4 per `spec`.

    on_progress gets a fraction 0..1 twice per second of output; an exception it raises stops
    the render and propagates, leaving a partial file for the caller to delete.
    """
    if spec.motion not in MOTIONS:
        raise ValueError(f"unknown motion {spec.motion!r}")
    if spec.width <= 0 or spec.height <= 0 or spec.width % 2 or spec.height % 2:
        raise ValueError("width and height must be positive and even (yuv420p)")
    if spec.duration <= 0 or spec.fps <= 0:
        raise ValueError("duration and fps must be positive")
    try:
        _render(first, last, spec, os.fspath(out_path), on_progress)
    except av.FFmpegError as exc:  # not OSError: on_progress's own exceptions pass untouched
        raise VideoError(f"video encoding failed: {exc}") from exc


def _render(
    first: Image.Image,
    last: Image.Image | None,
    spec: RenderSpec,
    out_path: str,
    on_progress: Callable[[float], None] | None,
) -> None:
    total = spec.duration * spec.fps
    frames = _in_background(_video_frames(first, last, spec), depth=_PREFETCH)
    with (
        closing(frames),
        av.open(out_path, "w", format="mp4", container_options=_MP4_OPTIONS) as container,
        # Exits before the container closes, so the audio thread is done with its encoder.
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-audio") as audio_worker,
    ):
        video = container.add_stream("libx264", rate=spec.fps, options=dict(_X264_OPTIONS))
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        codec = video.codec_context
        codec.time_base = Fraction(1, spec.fps)
        # Frame threads encode a little faster than the default slice threads on 2 cores.
        codec.thread_type = "AUTO"
        codec.thread_count = 0
        codec.color_range = ColorRange.MPEG
        codec.colorspace = codec.color_primaries = codec.color_trc = Colorspace.ITU709
        audio = None
        if spec.audio:
            audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
            audio.bit_rate = _AUDIO_BIT_RATE
        # Open every encoder and write the header here, so that the audio thread below only
        # ever touches its own encoder.
        container.start_encoding()
        audio_packets = None
        if audio is not None:
            audio_packets = audio_worker.submit(
                lambda: list(_aac_packets(audio, _ambience(spec.seed, spec.duration)))
            )

        for index, frame in enumerate(frames, start=1):
            container.mux(video.encode(frame))
            if audio_packets is not None and audio_packets.done():
                # The muxer interleaves by timestamp, whatever order packets arrive in.
                container.mux(audio_packets.result())
                audio_packets = None
            if on_progress is not None and index % _PROGRESS_EVERY == 0:
                on_progress(0.99 * index / total)
        container.mux(video.encode(None))
        if audio_packets is not None:
            container.mux(audio_packets.result())
    if on_progress is not None:
        on_progress(1.0)

"""Stitching clips into one film with PyAV: cuts or crossfades between them, the sound
crossfaded with the picture, at the first clip's size and rate.

No Django import (like video.py), so the sequence task, the bench and the tests call it
directly. It streams: only the frames and samples of one crossfade are held back at a time,
never a whole clip, so memory does not grow with the number or length of the clips.

Frames are worked on as I420 arrays (what `VideoFrame.to_ndarray(format="yuv420p")` gives:
the Y plane, then U and V, as one (height * 3/2, width) array of bytes), so a crossfade is one
weighted sum of two arrays and a clip of the first one's size is never converted to RGB.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from studio.video import VideoError

SAMPLE_RATE = 48_000
_AAC_FRAME = 1024
_X264_OPTIONS = {"preset": "veryfast", "crf": "21"}
_AUDIO_BIT_RATE = 128_000
_MP4_OPTIONS = {"movflags": "+faststart"}
_PROGRESS_EVERY = 24  # frames


@dataclass(frozen=True)
class Piece:
    """One clip of a film, and how it begins: a crossfade of `fade` seconds with the clip
    before it (0: a cut)."""

    path: str
    fade: float = 0.0


@dataclass(frozen=True)
class Shape:
    """What one clip is, read from its header."""

    width: int
    height: int
    fps: Fraction
    duration: float
    has_audio: bool


@dataclass(frozen=True)
class Stitched:
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool
    warnings: list[str] = field(default_factory=list)


def shape_of(path: str | os.PathLike[str]) -> Shape:
    try:
        with av.open(os.fspath(path)) as container:
            video = container.streams.video[0]
            fps = video.average_rate or video.guessed_rate or Fraction(24)
            duration = (container.duration or 0) / av.time_base
            return Shape(
                video.width, video.height, Fraction(fps), duration, bool(container.streams.audio)
            )
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise VideoError("A clip of the sequence is not a playable video.") from exc


def total_length(durations: list[float], fades: list[float]) -> float:
    """The film's length: every clip, less each crossfade (they overlap)."""
    return sum(durations) - sum(fades[1:])


def warnings_for(shapes: list[Shape]) -> list[str]:
    """What the film changes about its clips: everything takes the first clip's size and
    rate; a clip without sound is silence when others have it."""
    first = shapes[0]
    found = []
    for number, shape in enumerate(shapes[1:], start=2):
        if (shape.width, shape.height) != (first.width, first.height):
            found.append(
                f"Clip {number} is {shape.width}×{shape.height}: it is scaled and padded to "
                f"{first.width}×{first.height}, the first clip's size."
            )
        if shape.fps != first.fps:
            found.append(
                f"Clip {number} is {float(shape.fps):g} fps: it plays at {float(first.fps):g} fps, "
                "the first clip's rate."
            )
    if any(shape.has_audio for shape in shapes):
        for number, shape in enumerate(shapes, start=1):
            if not shape.has_audio:
                found.append(f"Clip {number} has no sound: the film is silent there.")
    return found


def stitch(
    pieces: list[Piece],
    out_path: str | os.PathLike[str],
    on_progress: Callable[[float], None] | None = None,
) -> Stitched:
    """Write `pieces` as one H.264/AAC MP4 at `out_path`; VideoError if a clip cannot be read."""
    if not pieces:
        raise ValueError("a film needs at least one clip")
    shapes = [shape_of(piece.path) for piece in pieces]
    first = shapes[0]
    size = (first.width, first.height)
    fps = first.fps
    has_audio = any(shape.has_audio for shape in shapes)
    # Crossfades in whole frames, and the sound's in the samples of those frames, so picture
    # and sound stay locked together.
    fade_frames = [0] + [round(piece.fade * fps) for piece in pieces[1:]]
    expected = sum(round(shape.duration * fps) for shape in shapes) - sum(fade_frames)
    try:
        written = _write(pieces, fade_frames, size, fps, has_audio, os.fspath(out_path),
                         expected, on_progress)  # fmt: skip
    except av.FFmpegError as exc:
        raise VideoError(f"Stitching failed: {exc}") from exc
    if on_progress is not None:
        on_progress(1.0)
    return Stitched(
        width=size[0],
        height=size[1],
        fps=float(fps),
        duration=float(written / fps),
        has_audio=has_audio,
        warnings=warnings_for(shapes),
    )


def _write(
    pieces: list[Piece],
    fade_frames: list[int],
    size: tuple[int, int],
    fps: Fraction,
    has_audio: bool,
    out_path: str,
    expected: int,
    on_progress: Callable[[float], None] | None,
) -> int:
    width, height = size
    samples_per_frame = Fraction(SAMPLE_RATE) / fps
    with av.open(out_path, "w", format="mp4", container_options=_MP4_OPTIONS) as container:
        video = container.add_stream("libx264", rate=fps, options=dict(_X264_OPTIONS))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = 1 / fps
        video.codec_context.thread_type = "AUTO"
        audio = None
        if has_audio:
            audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
            audio.bit_rate = _AUDIO_BIT_RATE
        sound = _Sound(container, audio)
        written = 0
        tail: list[np.ndarray] = []  # the frames held back to crossfade into the next clip
        tail_pcm = np.zeros((2, 0), np.float32)
        for index, piece in enumerate(pieces):
            fade_in = fade_frames[index]
            fade_out = fade_frames[index + 1] if index + 1 < len(pieces) else 0
            held: deque[np.ndarray] = deque()
            frames = 0
            for frame in _frames(piece.path, size, fps):
                if frames < fade_in and frames < len(tail):
                    weight = (frames + 1) / (fade_in + 1)
                    mixed = tail[frames] * (1 - weight) + frame * weight
                    frame = mixed.round().astype(np.uint8)
                frames += 1
                held.append(frame)
                if len(held) > fade_out:
                    written += _encode(container, video, held.popleft(), written)
                    if on_progress is not None and written % _PROGRESS_EVERY == 0:
                        on_progress(min(0.99, written / max(expected, 1)))
            tail = list(held)
            if audio is not None:
                pcm = _pcm(piece.path, round(frames * samples_per_frame))
                overlap = min(round(fade_in * samples_per_frame), tail_pcm.shape[1], pcm.shape[1])
                if overlap:
                    ramp = np.linspace(0, 1, overlap, endpoint=False, dtype=np.float32)
                    pcm[:, :overlap] = tail_pcm[:, :overlap] * (1 - ramp) + pcm[:, :overlap] * ramp
                keep = round(fade_out * samples_per_frame)
                sound.add(pcm[:, : pcm.shape[1] - keep] if keep else pcm)
                tail_pcm = pcm[:, pcm.shape[1] - keep :] if keep else np.zeros((2, 0), np.float32)
        for frame in tail:  # only when the last clip asked for a fade out: none does
            written += _encode(container, video, frame, written)
        container.mux(video.encode(None))
        sound.flush()
    return written


def _encode(
    container: av.container.OutputContainer, stream: av.VideoStream, array: np.ndarray, index: int
) -> int:
    frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
    frame.pts = index
    container.mux(stream.encode(frame))
    return 1


def _frames(path: str, size: tuple[int, int], fps: Fraction) -> Iterator[np.ndarray]:
    """The clip's frames at `fps` and `size` (scaled to fit and padded with black), as I420
    arrays: each decoded frame is shown for as many output frames as fall in its time."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float((stream.start_time or 0) * (stream.time_base or 0))
        rate = stream.average_rate or fps
        shown = 0
        previous: np.ndarray | None = None
        last_time = 0.0
        for frame in container.decode(stream):
            at = (frame.time or 0.0) - start
            if previous is not None:
                while shown / fps < at - 1e-6:
                    yield previous
                    shown += 1
            previous = _fit(frame, size)
            last_time = at
        if previous is not None:
            end = last_time + 1 / float(rate)
            while shown / fps < end - 1e-6:
                yield previous
                shown += 1


def _fit(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if (frame.width, frame.height) == size and frame.format.name == "yuv420p":
        array: np.ndarray = frame.to_ndarray()
        return array
    scale = min(width / frame.width, height / frame.height)
    inner_w = max(2, int(frame.width * scale) // 2 * 2)
    inner_h = max(2, int(frame.height * scale) // 2 * 2)
    inner = frame.reformat(width=inner_w, height=inner_h, format="yuv420p").to_ndarray()
    y, u, v = _planes(inner, inner_w, inner_h)
    top, left = (height - inner_h) // 4 * 2, (width - inner_w) // 4 * 2
    canvas_y = np.full((height, width), 16, np.uint8)
    canvas_u = np.full((height // 2, width // 2), 128, np.uint8)
    canvas_v = np.full((height // 2, width // 2), 128, np.uint8)
    canvas_y[top : top + inner_h, left : left + inner_w] = y
    canvas_u[top // 2 : (top + inner_h) // 2, left // 2 : (left + inner_w) // 2] = u
    canvas_v[top // 2 : (top + inner_h) // 2, left // 2 : (left + inner_w) // 2] = v
    return np.concatenate([canvas_y, canvas_u.reshape(-1, width), canvas_v.reshape(-1, width)])


def _planes(array: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    flat = array.reshape(-1)
    luma = width * height
    quarter = luma // 4
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + quarter].reshape(height // 2, width // 2)
    v = flat[luma + quarter : luma + 2 * quarter].reshape(height // 2, width // 2)
    return y, u, v


def _pcm(path: str, samples: int) -> np.ndarray:
    """The clip's sound as 48 kHz stereo float32, exactly `samples` long (silence where it has
    none, padded or cut to its picture's length)."""
    out = np.zeros((2, samples), np.float32)
    with av.open(path) as container:
        if not container.streams.audio:
            return out
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        filled = 0
        for frame in container.decode(stream):
            for chunk in resampler.resample(frame):
                data = chunk.to_ndarray()
                take = min(data.shape[1], samples - filled)
                out[:, filled : filled + take] = data[:, :take]
                filled += take
        for chunk in resampler.resample(None):
            data = chunk.to_ndarray()
            take = min(data.shape[1], samples - filled)
            out[:, filled : filled + take] = data[:, :take]
            filled += take
    return out


class _Sound:
    """The film's sound, encoded in AAC's 1024-sample frames as it is added."""

    def __init__(self, container: av.container.OutputContainer, stream: av.AudioStream | None):
        self.container = container
        self.stream = stream
        self.pending = np.zeros((2, 0), np.float32)
        self.pts = 0

    def add(self, pcm: np.ndarray) -> None:
        if self.stream is None:
            return
        self.pending = np.concatenate([self.pending, pcm], axis=1)
        whole = self.pending.shape[1] // _AAC_FRAME * _AAC_FRAME
        for start in range(0, whole, _AAC_FRAME):
            self._encode(self.pending[:, start : start + _AAC_FRAME])
        self.pending = self.pending[:, whole:]

    def flush(self) -> None:
        if self.stream is None:
            return
        if self.pending.shape[1]:
            self._encode(self.pending)
        self.container.mux(self.stream.encode(None))

    def _encode(self, chunk: np.ndarray) -> None:
        assert self.stream is not None
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk), format="fltp", layout="stereo"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self.pts += chunk.shape[1]
        self.container.mux(self.stream.encode(frame))

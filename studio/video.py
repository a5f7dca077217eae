"""Reading a clip back: its shape, and its poster, from one pass over the MP4 with PyAV.

No Django import, so the engine, the benches and the tests call it directly. The local
renderer that makes clips lives with its provider (studio/providers/local/renderer.py).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np


class VideoError(Exception):
    """The file is not a readable video / render failed (message is user-readable)."""


@dataclass(frozen=True)
class ClipInfo:
    width: int
    height: int
    duration: float
    fps: float
    has_audio: bool
    size_bytes: int


# A first frame whose brightness varies less than this (standard deviation of luma, 0-255)
# is blank: a fade in, not a picture.
_BLANK_SPREAD = 4.0


# Opening a file normally decodes frames just to learn what an MP4's header already says
# (FFmpeg's find_stream_info, with a decoder of its own): most of the cost of opening one.
# Telling that internal decoder to skip what it can leaves the shape, rate and duration read
# from the header, and the frame decoded below still proves the stream plays. The options go
# by stream index, so they cover the first few streams: the video is not always the first.
_HEADER_ONLY = [{"threads": "1", "skip_frame": "nonkey"}] * 4


def probe_with_poster(path: str | os.PathLike[str]) -> tuple[ClipInfo, bytes]:
    """The clip's shape, read back from the file, and its poster (a JPEG), from one reading;
    VideoError unless it is a playable video.

    Every packet is demuxed, so a file cut short fails. The poster is the first frame, which
    reading decodes anyway and which is what a browser shows of a video before it plays; for
    an image-to-video clip it is the creator's own picture. A first frame that is blank (a
    fade in from black or white) would make a useless poster, so then it is the frame nearest
    one second in. Finishing a clip is mostly this call (bench/finish.py measures it)."""
    path = os.fspath(path)
    try:
        # PyAV types stream_options as a list of strings; it takes a dict per stream.
        with av.open(path, stream_options=_HEADER_ONLY) as container:  # type: ignore[arg-type]
            if not container.streams.video:
                raise VideoError("The file has no video stream, so it is not a playable video.")
            video = container.streams.video[0]
            # Demuxing every packet is cheap (no decoding) and catches a file cut short after a
            # front-loaded moov, which opens fine; decoding the first frame on the way proves
            # the codec works.
            video.codec_context.thread_count = 1  # one frame: decoder threads cost more than it
            packets, first = 0, None
            for packet in container.demux(video):
                if not packet.size:
                    continue
                packets += 1
                if first is None:
                    first = next(iter(video.codec_context.decode(packet)), None)
            if first is None and packets:
                first = next(iter(video.codec_context.decode(None)), None)
            if packets == 0 or (video.frames and packets < video.frames):
                raise VideoError("The file is cut short, so it is not a playable video.")
            if first is None:
                raise VideoError("The file has no frames, so it is not a playable video.")
            fps = video.average_rate or video.guessed_rate or 0
            if container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = float((video.duration or 0) * _time_base(video))
            info = ClipInfo(
                width=video.width,
                height=video.height,
                duration=duration,
                fps=float(fps),
                has_audio=bool(container.streams.audio),
                size_bytes=os.path.getsize(path),
            )
            if _is_blank(first):
                container.seek(0)
                first = _frame_near(container, video, 1.0) or first
    except (av.FFmpegError, StopIteration, OSError) as exc:
        raise VideoError("The file is not a playable video.") from exc
    return info, _jpeg(first)


def _time_base(stream: av.VideoStream) -> Fraction:
    if stream.time_base is None:
        raise VideoError("The file's video has no time base, so it is not a playable video.")
    return stream.time_base


def _is_blank(frame: av.VideoFrame) -> bool:
    plane = frame.planes[0]  # luma; each row padded to line_size bytes
    # A plane is a buffer (PyAV's stubs do not say so): read in place, not copied.
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)  # type: ignore[call-overload]
    return float(rows[::8, : plane.width : 8].std()) < _BLANK_SPREAD


def _jpeg(frame: av.VideoFrame) -> bytes:
    out = io.BytesIO()
    frame.to_image().save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def _frame_near(
    container: av.container.InputContainer, video: av.VideoStream, at_seconds: float
) -> av.VideoFrame | None:
    if container.duration:
        last_frame = container.duration / av.time_base - 1 / float(video.average_rate or 24)
        at_seconds = min(at_seconds, last_frame)
    at_seconds = max(at_seconds, 0.0)
    # Timestamps count from the stream's start, which some muxers do not put at zero.
    time_base = _time_base(video)
    target = at_seconds + float((video.start_time or 0) * time_base)
    if at_seconds > 0:
        # Lands on the keyframe at or before the target; decode forward from there.
        container.seek(int(target / time_base), stream=video, backward=True)
    # The frames between the keyframe and the target are decoded only to be thrown away: one
    # thread (starting the decoder's threads costs more than they save here), and frames no
    # other frame refers to are skipped, so the poster is the reference frame nearest the
    # target (H.264's are at most a few frames apart). Half the CPU of decoding every frame.
    if not video.codec_context.is_open:
        video.codec_context.thread_count = 1
    video.codec_context.skip_frame = "NONREF"
    best: av.VideoFrame | None = None
    for frame in container.decode(video):
        if frame.time is None:  # no timestamps to go by: the first frame will do
            return best or frame
        if best is not None and abs(frame.time - target) > abs(best.time - target):
            break  # frames come in time order, so they only get further away from here
        best = frame
    return best


def last_frame(path: str | os.PathLike[str]) -> bytes:
    """The clip's last frame as a JPEG: where "Continue from here" starts a new clip.

    Seeks to the keyframe before the last second and decodes forward to the end, so only
    the frames of the last group of pictures are decoded, not the whole clip."""
    try:
        with av.open(os.fspath(path)) as container:
            video = container.streams.video[0]
            video.codec_context.thread_count = 1
            if container.duration:
                end = container.duration / av.time_base
                start = float((video.start_time or 0) * _time_base(video))
                target = start + max(end - 1.0, 0.0)
                container.seek(int(target / _time_base(video)), stream=video, backward=True)
            last = None
            for frame in container.decode(video):
                last = frame
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise VideoError("The file is not a playable video.") from exc
    if last is None:
        raise VideoError("The file has no frames, so it is not a playable video.")
    return _jpeg(last)

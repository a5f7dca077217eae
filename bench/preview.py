"""What a hover preview costs: the clip itself by byte range, against a small rendition
made at finish.

Run from anywhere: `.venv/bin/python bench/preview.py`. It renders 8 s clips at 720p and
1080p with the local renderer (from bench/render.py's photo-like still), then prints, for
each:

- by byte range: the bytes a player needs for the first two seconds (everything outside
  the `mdat` box, which holds the index, plus every video and audio packet before 2 s);
- a rendition: the CPU time and size of a 2 s, 360p, silent, low-bitrate H.264 loop made
  from the clip with PyAV, which every finish would have to pay for.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from render import photo_like  # noqa: E402

from studio.providers.local.renderer import RenderSpec, render_clip  # noqa: E402

PREVIEW_SECONDS = 2.0


def outside_mdat(path: Path) -> int:
    """Bytes of the MP4's top-level boxes other than mdat (ftyp, moov, …)."""
    total = 0
    with open(path, "rb") as f:
        while header := f.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
                f.seek(size - 16, os.SEEK_CUR)
            else:
                f.seek(size - 8, os.SEEK_CUR)
            if kind != b"mdat":
                total += size
    return total


def first_seconds_bytes(path: Path) -> int:
    with av.open(str(path)) as container:
        packets = 0
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            if float(packet.pts * packet.time_base) < PREVIEW_SECONDS:
                packets += packet.size
    return outside_mdat(path) + packets


def rendition(path: Path, out: Path) -> float:
    """A 2 s 360p silent loop; returns the CPU seconds it took."""
    started = time.process_time()
    with av.open(str(path)) as source, av.open(str(out), "w") as target:
        video = source.streams.video[0]
        height = 360
        width = round(video.width * height / video.height / 2) * 2
        stream = target.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 250_000
        stream.options = {"preset": "veryfast"}
        for frame in source.decode(video):
            if frame.time is not None and frame.time >= PREVIEW_SECONDS:
                break
            for packet in stream.encode(frame.reformat(width, height)):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return time.process_time() - started


def main() -> None:
    still = photo_like()
    print(f"Hover previews for 8 s clips, first {PREVIEW_SECONDS:.0f} s "
          f"(load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores)")  # fmt: skip
    print(
        f"{'clip':8} {'clip MB':>8} {'by range kB':>12} {'rendition kB':>13} "
        f"{'rendition CPU s':>16}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
            clip = Path(tmp) / f"{name}.mp4"
            spec = RenderSpec(*size, duration=8, motion="push_in", audio=True, seed=7)
            render_clip(still, None, spec, clip)
            preview = Path(tmp) / f"{name}-preview.mp4"
            cpu = rendition(clip, preview)
            by_range = first_seconds_bytes(clip) / 1e3
            print(
                f"{name:8} {clip.stat().st_size / 1e6:8.2f} {by_range:12.0f} "
                f"{preview.stat().st_size / 1e3:13.0f} {cpu:16.2f}"
            )


if __name__ == "__main__":
    main()

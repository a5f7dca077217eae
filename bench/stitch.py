"""Stitching a sequence against the ffmpeg CLI doing the same.

Run from anywhere: `.venv/bin/python bench/stitch.py [--clips 10] [--fade 0.5]`. It renders
ten 8 s 720p clips with sound with the local renderer (from bench/render.py's photo-like
still, each with another camera move and seed), then stitches them with a crossfade between
each (picture and sound) twice, each in a process of its own so its peak memory can be read:

- Studio's `studio.stitch.stitch` (PyAV, x264 veryfast crf 21, AAC 128 kb/s);
- `ffmpeg` with `xfade` and `acrossfade` chained over the ten inputs, with the same encoder
  settings (`apt-get install ffmpeg`; skipped when it is missing).

It prints wall time, CPU time and peak resident memory for each, and the film's length
(expected: 10 * 8 - 9 * fade). Goal (issue 15): no slower than ffmpeg.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

MOTIONS = ("push_in", "pan_left", "pull_out", "tilt_up", "orbit", "pan_right", "static",
           "tilt_down", "handheld", "push_in")  # fmt: skip
OURS = """
import sys
from studio import stitch
paths, fade, out = sys.argv[1:-2], float(sys.argv[-2]), sys.argv[-1]
pieces = [stitch.Piece(p, 0.0 if i == 0 else fade) for i, p in enumerate(paths)]
stitch.stitch(pieces, out)
"""


def measured(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS in MB of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{command[0]} failed ({status})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def ffmpeg_command(ffmpeg: str, paths: list[str], fade: float, length: float, out: str) -> list:
    inputs = [arg for path in paths for arg in ("-i", path)]
    video, audio, parts = "[0:v]", "[0:a]", []
    for i in range(1, len(paths)):
        offset = i * length - i * fade
        parts.append(f"{video}[{i}:v]xfade=transition=fade:duration={fade}:offset={offset}[v{i}]")
        parts.append(f"{audio}[{i}:a]acrossfade=d={fade}[a{i}]")
        video, audio = f"[v{i}]", f"[a{i}]"
    return [
        ffmpeg, "-v", "error", "-y", *inputs, "-filter_complex", ";".join(parts),
        "-map", video, "-map", audio,
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", out,
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--fade", type=float, default=0.5)
    args = parser.parse_args()

    from render import photo_like

    from studio.providers.local.renderer import RenderSpec, render_clip
    from studio.video import probe_with_poster

    work = Path(tempfile.mkdtemp(prefix="studio-bench-stitch-"))
    try:
        still = photo_like()
        paths = []
        for i in range(args.clips):
            path = work / f"clip-{i}.mp4"
            motion = MOTIONS[i % len(MOTIONS)]
            render_clip(still, None, RenderSpec(1280, 720, 8, motion, True, seed=i), path)
            paths.append(str(path))
        expected = args.clips * 8 - (args.clips - 1) * args.fade
        rows = {}
        ours = str(work / "ours.mp4")
        rows["Studio (PyAV)"] = (
            *measured([sys.executable, "-c", OURS, *paths, str(args.fade), ours]),
            probe_with_poster(ours)[0].duration,
        )
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            theirs = str(work / "ffmpeg.mp4")
            rows["ffmpeg CLI"] = (
                *measured(ffmpeg_command(ffmpeg, paths, args.fade, 8, theirs)),
                probe_with_poster(theirs)[0].duration,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"Stitching {args.clips} clips of 8 s at 720p with sound, {args.fade:g} s crossfades "
        f"(expected length {expected:g} s)"
    )
    print(f"(load average {load[0]:.2f} / {load[1]:.2f}, 1 / 5 min; {os.cpu_count()} cores)")
    print(f"{'':15} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'length s':>9}")
    for name, (wall, cpu, peak, length) in rows.items():
        print(f"{name:15} {wall:8.2f} {cpu:8.2f} {peak:8.0f} {length:9.2f}")
    if "ffmpeg CLI" in rows:
        ratio = rows["Studio (PyAV)"][0] / rows["ffmpeg CLI"][0]
        verdict = "met" if ratio <= 1 else "MISSED"
        print(f"Studio takes {ratio:.2f}× ffmpeg's wall time; goal ≤ 1: {verdict}")
    else:
        print("ffmpeg is not installed (apt-get install ffmpeg): no comparison.")


if __name__ == "__main__":
    main()

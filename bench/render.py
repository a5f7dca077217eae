"""Wall-clock benchmark of the local renderer against the ffmpeg CLI's zoompan.

Run from anywhere: `.venv/bin/python bench/render.py [--runs N]`. It draws its own photo-like
test image, renders 8 s clips with audio at 720p and 1080p through `render_clip`, and, when
`ffmpeg` is on PATH, makes the same clips with zoompan; each figure is the best of N runs.
Loading the JPEG is timed for both sides, since ffmpeg has to decode it too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.providers.local.renderer import RenderSpec, render_clip
from studio.video import probe_with_poster

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
DURATION = 8
FPS = 24


def photo_like(width: int = 2400, height: int = 1600, seed: int = 1) -> Image.Image:
    """Smooth gradients, hard-edged shapes and sensor-like noise: hard enough for x264."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 120 + 100 * np.sin(xs / width * 3.1 + 0.5) * np.cos(ys / height * 2.3)
    green = 100 + 80 * np.cos(xs / width * 1.7) + 40 * (ys / height)
    blue = 140 + 90 * np.sin((xs + ys) / (width + height) * 4.0)
    rgb = np.stack([red, green, blue], axis=-1) + rng.normal(0, 12, (height, width, 3))
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(20, 300))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + size, y + int(size * 0.7)), fill=color)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    grain = rng.integers(-6, 7, (height, width, 3))
    grainy = np.clip(np.asarray(image).astype(np.int16) + grain, 0, 255)
    return Image.fromarray(grainy.astype(np.uint8))


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def render_ours(source: Path, size: tuple[int, int], out: Path) -> None:
    with Image.open(source) as image:
        spec = RenderSpec(*size, duration=DURATION, motion="push_in", audio=True, seed=7, fps=FPS)
        render_clip(image, None, spec, out)


def render_ffmpeg(ffmpeg: str, source: Path, size: tuple[int, int], out: Path) -> None:
    frames = DURATION * FPS
    zoompan = f"zoompan=z='min(zoom+0.0005,1.1)':d={frames}:s={size[0]}x{size[1]}:fps={FPS}"
    command = [
        ffmpeg, "-v", "error", "-y",
        "-loop", "1", "-i", str(source),
        "-f", "lavfi", "-i", "anoisesrc=c=brown:r=48000:a=0.05",
        "-vf", zoompan,
        "-c:v", "libx264", "-preset", "veryfast",
        "-c:a", "aac", "-t", str(DURATION),
        str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    load = os.getloadavg()[0]  # other work on the machine skews every figure below

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        work = Path(tmp)
        source = work / "photo.jpg"
        photo_like().save(source, quality=92)

        rows = []
        for name, size in SIZES.items():
            ours_out, ff_out = work / f"ours-{name}.mp4", work / f"ffmpeg-{name}.mp4"
            ours, theirs = [], []
            # Alternate the two, so a burst of other load on the machine hits both alike.
            for _ in range(args.runs):
                ours.append(timed(lambda s=size, o=ours_out: render_ours(source, s, o)))
                if ffmpeg:
                    theirs.append(
                        timed(lambda s=size, o=ff_out: render_ffmpeg(ffmpeg, source, s, o))
                    )
            best_theirs = min(theirs) if theirs else None
            rows.append((name, min(ours), best_theirs, probe_with_poster(ours_out)[0].size_bytes))

    print(f"8 s clip with audio, best of {args.runs}, wall seconds")
    print(f"({os.cpu_count()} cores; 1-minute load average {load:.2f} before the runs)")
    print(f"{'clip':<7} {'render_clip':>11} {'ffmpeg':>8} {'ratio':>6} {'our size':>9}")
    for name, ours, theirs, size_bytes in rows:
        ffmpeg_col = f"{theirs:8.2f}" if theirs is not None else f"{'n/a':>8}"
        ratio_col = f"{ours / theirs:6.2f}" if theirs is not None else f"{'':>6}"
        print(f"{name:<7} {ours:11.2f} {ffmpeg_col} {ratio_col} {size_bytes / 1e6:7.2f}MB")
    if not ffmpeg:
        print("(ffmpeg not on PATH: no comparison)")
    else:
        print("ratio = render_clip / ffmpeg; below 1.00 means render_clip is faster")


if __name__ == "__main__":
    main()

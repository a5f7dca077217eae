"""Wall time and peak memory of validating and normalising large uploads (studio.images).

Run from anywhere: `.venv/bin/python bench/intake.py [--runs N]`. It makes its own inputs (kept
in the system temp folder between runs): a noise-rich 24 MP photo of about 20 MB as JPEG, a
photo of about 10 MB as PNG, and 40 MP images as JPEG and PNG. Each case runs in a fresh child
process, so its memory figure is its own: the child reports its peak resident set size
(getrusage ru_maxrss, which counts Pillow's C allocations, unlike tracemalloc) and its
baseline after imports, and the difference is what normalising cost. Time is the best of N,
as wall time and as CPU time of all threads (which other load on the machine skews less).
Goals for the 24 MP JPEG on our 2-core machines: at most 0.4 s and 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = Path(tempfile.gettempdir()) / "studio-bench-intake"
GOAL_SECONDS, GOAL_MB = 0.4, 250


def photo_like(width: int, height: int, noise: float, seed: int = 1):
    """Smooth light, hard-edged shapes and sensor noise; the noise decides the file size."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    channels = [
        120 + 100 * np.sin(xs * 3.1 + 0.5) * np.cos(ys * 2.3),
        100 + 80 * np.cos(xs * 1.7) + 40 * ys,
        140 + 90 * np.sin((xs + ys) * 2.0),
    ]
    planes = []
    for channel in channels:
        plane = channel + rng.standard_normal((height, width), dtype=np.float32) * noise
        planes.append(np.clip(plane, 0, 255).astype(np.uint8))
    image = Image.fromarray(np.stack(planes, axis=-1))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(width // 40, width // 8))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + size, y + int(size * 0.7)), fill=color)
    return image


# name: (file name, maker); the makers save the image the way a camera or editor would.
CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "24 MP JPEG": (
        "jpeg-24mp.jpg",
        # 4:2:2, as DSLRs write it; about 19.5 MB, just under the 20 MB upload limit.
        lambda path: photo_like(6000, 4000, noise=40).save(
            path, "JPEG", quality=95, subsampling="4:2:2"
        ),
    ),
    "10 MB PNG": (
        "png-10mb.png",
        lambda path: photo_like(3000, 2000, noise=12).save(path, "PNG"),
    ),
    "40 MP JPEG": (
        "jpeg-40mp.jpg",
        lambda path: photo_like(8000, 5000, noise=8).save(path, "JPEG", quality=90),
    ),
    "40 MP PNG": (
        "png-40mp.png",
        lambda path: photo_like(8000, 5000, noise=0).save(path, "PNG", compress_level=1),
    ),
}


def inputs() -> None:
    INPUTS.mkdir(exist_ok=True)
    for name, (file_name, make) in CASES.items():
        path = INPUTS / file_name
        if not path.exists():
            print(f"making the {name} input...", file=sys.stderr)
            make(path)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def child(path: Path, runs: int) -> None:
    """Time normalise on one file; print JSON. Runs in its own process, after Django setup."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 32)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from studio import images

    baseline = peak_rss_mb()
    times, cpu_times = [], []
    for _ in range(runs):
        # Like Django's TemporaryUploadedFile: a large upload arrives as a file on disk.
        with path.open("rb") as upload:
            start, cpu_start = time.perf_counter(), time.process_time()
            result = images.normalise(upload, size=path.stat().st_size)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    report = {
        "seconds": min(times),
        "cpu_seconds": min(cpu_times),
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "output": f"{result.width}×{result.height}",
        "output_mb": len(result.data) / 2**20,
    }
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs)
        return
    if args.make:
        inputs()
        return

    # Made in a child too: a child's ru_maxrss starts at its parent's peak, so this process
    # must never hold an image.
    subprocess.run([sys.executable, __file__, "--make"], check=True)
    paths = {name: INPUTS / file_name for name, (file_name, _) in CASES.items()}
    load = os.getloadavg()[0]  # other work on the machine skews every figure below
    print(f"normalise(), best of {args.runs}; memory is the child process's peak RSS")
    print(f"({os.cpu_count()} cores; 1-minute load average {load:.2f} before the runs)")
    print(
        f"{'case':<11} {'input':>9} {'output':>17} {'seconds':>8} {'cpu s':>6} {'peak':>7} "
        f"{'over base':>9}"
    )
    for name, path in paths.items():
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(path), "--runs", str(args.runs)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        output = f"{r['output']} {r['output_mb']:.1f}MB"
        over_base = r["peak_mb"] - r["baseline_mb"]
        print(
            f"{name:<11} {path.stat().st_size / 2**20:7.1f}MB {output:>17} {r['seconds']:8.3f} "
            f"{r['cpu_seconds']:6.3f} {r['peak_mb']:5.0f}MB {over_base:7.0f}MB"
        )
    print(
        f"goals for the 24 MP JPEG: ≤ {GOAL_SECONDS} s and ≤ {GOAL_MB} MB peak. 'cpu s' counts "
        "both threads; 'peak' includes Python, Django and Pillow, 'over base' is normalising only"
    )


if __name__ == "__main__":
    main()

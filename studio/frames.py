"""A clip's output frame: its size for an aspect and a resolution.

Every reader of "auto" asks here (the local renderer, providers whose API has no "auto", the
finished clip's check, the emulator), so they all read it the same way. No Django, so the
renderer and the emulator can use it before or without Django.
"""

from __future__ import annotations

LANDSCAPE_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def frame_size(aspect: str, resolution: str, image_size: tuple[int, int] | None) -> tuple[int, int]:
    """The frame for an aspect (16:9, 9:16, auto) and resolution (720p, 1080p): "auto" is the
    orientation nearest the still, landscape without one."""
    if resolution not in LANDSCAPE_SIZES:
        raise ValueError(f"unknown resolution {resolution!r}")
    width, height = LANDSCAPE_SIZES[resolution]
    if aspect == "auto":
        portrait = image_size is not None and image_size[1] > image_size[0]
        aspect = "9:16" if portrait else "16:9"
    if aspect == "16:9":
        return width, height
    if aspect == "9:16":
        return height, width
    raise ValueError(f"unknown aspect {aspect!r}")

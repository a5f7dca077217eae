"""What each provider can make, and the pre-flight check that explains the difference.

Pure functions over a clip's options (no I/O), so the form, the options panel, failover and
the tests all ask the same question the same way: "would this provider reject or silently
change any of these options, and what is the one-click fix?"
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from studio.options import DURATIONS, Aspect, ClipOptions, Mode, Resolution

MODES = tuple(Mode.values)
RESOLUTIONS = tuple(Resolution.values)
ASPECTS = (Aspect.AUTO.value, Aspect.LANDSCAPE.value, Aspect.PORTRAIT.value)

_MODE_NAMES = {
    "image": "image to video",
    "text": "text to video",
    "first_last": "first and last frame",
}


@dataclass(frozen=True)
class Capabilities:
    """One provider's limits, as documented (shared/providers.md); `notes` says what is not."""

    label: str
    modes: frozenset[str] = frozenset(MODES)
    durations: tuple[int, ...] = DURATIONS
    resolutions: tuple[str, ...] = RESOLUTIONS
    # "auto" is offered everywhere: where the API has no "auto", the provider module picks
    # the orientation nearest the still, exactly as the local renderer and the engine's clip
    # check do, so nothing changes silently.
    aspects: tuple[str, ...] = ASPECTS
    audio_toggle: bool = True  # False: the creator cannot choose; see `audio_always`
    audio_always: bool | None = None  # without a toggle: True = always sound, None = unknown
    seed: bool = True
    negative_prompt: bool = True
    max_image_bytes: int | None = None
    full_hd_needs_8s: bool = False  # 1080p only at 8 seconds
    first_last_needs_8s: bool = False  # first + last frame only at 8 seconds
    # Seconds it adds when asked to continue a stored clip (GenerationRequest.extend_from);
    # None: it cannot.
    extend_seconds: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def last_frame(self) -> bool:
        return "first_last" in self.modes


@dataclass(frozen=True)
class Problem:
    """One option the provider would reject or silently change, in one line, with its fix.

    `fix` is the change to the options that resolves it ({} when only the creator can, e.g. a
    smaller image); applying it to the options dict is all a one-click button has to do.
    """

    field: str
    message: str
    fix: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def fix_label(self) -> str:
        """The one-click fix's button text, e.g. "Use 8 s"."""
        words = []
        for name, value in self.fix.items():
            if name in ("duration",):
                words.append(f"use {value} s")
            elif name in ("resolution", "aspect"):
                words.append(f"use {value}")
            elif name == "mode":
                words.append(f"use {_MODE_NAMES.get(value, value)}")
            elif name == "audio":
                words.append("turn sound on" if value else "turn sound off")
            elif name in ("seed", "negative_prompt"):
                words.append(f"clear the {name.replace('_', ' ')}")
        text = ", ".join(words)
        return text[:1].upper() + text[1:]

    @property
    def fix_json(self) -> str:
        return json.dumps(self.fix)


def preflight(caps: Capabilities, options: ClipOptions) -> list[Problem]:
    """Every problem with `options` at a provider that can make `caps`, most basic first."""
    who = caps.label
    problems: list[Problem] = []
    mode = options.mode
    duration = options.duration
    resolution = options.resolution

    if mode not in caps.modes:
        fallback = "image" if "image" in caps.modes else sorted(caps.modes)[0]
        problems.append(
            Problem(
                "mode",
                f"{who} cannot make {_MODE_NAMES.get(mode, mode)} clips; "
                f"use {_MODE_NAMES[fallback]} instead.",
                {"mode": fallback},
            )
        )
        mode = fallback
    if duration not in caps.durations:
        nearest = min(caps.durations, key=lambda d: (abs(d - duration), -d))
        problems.append(
            Problem(
                "duration",
                f"{who} makes {_seconds(caps.durations)} clips, not {duration} s.",
                {"duration": nearest},
            )
        )
        duration = nearest
    if resolution not in caps.resolutions:
        problems.append(
            Problem(
                "resolution",
                f"{who} makes {' or '.join(caps.resolutions)} clips, not {resolution}.",
                {"resolution": caps.resolutions[0]},
            )
        )
        resolution = caps.resolutions[0]
    aspect = options.aspect
    if aspect not in caps.aspects:
        problems.append(
            Problem(
                "aspect",
                f"{who} makes {' or '.join(caps.aspects)} clips, not {aspect}.",
                {"aspect": caps.aspects[0]},
            )
        )

    # Cross-field rules: the fix keeps the creator's resolution or mode and lengthens the clip,
    # because that is the choice they made deliberately (and the longer clip is visible in
    # the price shown next to the fix).
    if caps.full_hd_needs_8s and resolution == "1080p" and duration != 8:
        problems.append(
            Problem(
                "duration",
                f"{who} makes 1080p clips only 8 s long; choose 8 s or 720p.",
                {"duration": 8},
            )
        )
        duration = 8
    if caps.first_last_needs_8s and mode == "first_last" and duration != 8:
        problems.append(
            Problem(
                "duration",
                f"{who} makes first-and-last-frame clips only 8 s long.",
                {"duration": 8},
            )
        )

    if not options.audio and not caps.audio_toggle:
        if caps.audio_always:
            message = f"{who} always adds sound; it cannot make a silent clip."
        else:
            message = f"{who} cannot be asked for a silent clip; it may add sound anyway."
        problems.append(Problem("audio", message, {"audio": True}))
    if options.seed is not None and not caps.seed:
        problems.append(
            Problem(
                "seed",
                f"{who} takes no seed, so the same seed will not repeat the same clip.",
                {"seed": None},
            )
        )
    if options.negative_prompt.strip() and not caps.negative_prompt:
        problems.append(
            Problem(
                "negative_prompt",
                f"{who} takes no negative prompt; it would be ignored.",
                {"negative_prompt": ""},
            )
        )
    if caps.max_image_bytes is not None:
        for name, still in (("image", options.image), ("last_frame", options.last_frame)):
            size = still.size_bytes if still else None
            if size is not None and size > caps.max_image_bytes:
                problems.append(
                    Problem(
                        name,
                        f"{who} accepts images up to {_mb(caps.max_image_bytes)}; "
                        f"this one is {_mb(size)}.",
                    )
                )
    return problems


def adapt(options: ClipOptions, caps: Capabilities) -> ClipOptions:
    """`options` made valid for a provider that can make `caps`, keeping every choice that
    still is (switching provider).

    Only the fields a problem names change; problems without a fix (an image too large) are
    left for the creator, and preflight still reports them.
    """
    adapted = options
    # A fix can only move a field towards a supported value, so this settles in a few rounds.
    for _ in range(4):
        fixes = [problem.fix for problem in preflight(caps, adapted) if problem.fix]
        if not fixes:
            break
        for fix in fixes:
            adapted = adapted.replace(**fix)
    return adapted


def _seconds(durations: tuple[int, ...]) -> str:
    values = [str(d) for d in durations]
    listed = ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]
    return f"{listed} s"


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"

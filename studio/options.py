"""A clip's options: the one typed contract for what a creator asks a provider to make.

The create form and the CLI (through the form) produce a `ClipOptions`; a job stores it, one
column per field, and rebuilds it (`Job.options`); pre-flight checks it; providers receive it
inside a `GenerationRequest`; retry and failover copy it. Nothing else spells the list of
options out: code that needs every field walks `dataclasses.fields(ClipOptions)`.

Plain values only (no models, no I/O beyond reading a stored still or clip), so the provider
layer and the emulator can use it too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.files.storage import default_storage
from django.db import models

from studio.frames import frame_size


class Mode(models.TextChoices):
    IMAGE = "image", "Image to video"
    TEXT = "text", "Text to video"
    FIRST_LAST = "first_last", "First and last frame"


class Resolution(models.TextChoices):
    P720 = "720p", "720p"
    P1080 = "1080p", "1080p"


class Aspect(models.TextChoices):
    LANDSCAPE = "16:9", "16:9 landscape"
    PORTRAIT = "9:16", "9:16 portrait"
    AUTO = "auto", "Auto (nearest to the image)"


class Framing(models.TextChoices):
    CROP = "crop", "Crop"
    PAD = "pad", "Pad with a blurred copy"


DURATIONS = (4, 6, 8)
MAX_SEED = 2**32 - 1
STILL_ROLES = ("image", "last_frame")


class StoredImage(Protocol):
    """What a stored still (studio.models.SourceImage) offers; named here so this module
    need not import the models."""

    pk: Any
    width: int
    height: int
    content_type: str
    size_bytes: int

    @property
    def file(self) -> Any: ...


@dataclass(frozen=True)
class Still:
    """A normalised still as a clip's options refer to it: a SourceImage in Studio's storage,
    or (id None, no name) one the form has checked but not stored yet."""

    id: int | None
    name: str
    content_type: str
    width: int
    height: int
    size_bytes: int

    @classmethod
    def of(cls, image: StoredImage) -> Still:
        return cls(
            id=image.pk,
            name=image.file.name,
            content_type=image.content_type,
            width=image.width,
            height=image.height,
            size_bytes=image.size_bytes,
        )

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def read(self) -> bytes:
        if not self.name:
            raise ValueError("This still has not been stored yet.")
        with default_storage.open(self.name, "rb") as f:
            data: bytes = f.read()
        return data


class StoredClip(Protocol):
    """What a stored clip (studio.models.Clip) offers; named here for the same reason."""

    width: int
    height: int
    duration: float

    @property
    def file(self) -> Any: ...


@dataclass(frozen=True)
class StoredVideo:
    """A clip in Studio's storage that a provider is asked to continue (extend): not one of
    a clip's options, but the start of a new one (GenerationRequest.extend_from)."""

    name: str
    width: int
    height: int
    duration: float  # seconds
    content_type: str = "video/mp4"

    @classmethod
    def of(cls, clip: StoredClip) -> StoredVideo:
        return cls(
            name=clip.file.name, width=clip.width, height=clip.height, duration=clip.duration
        )

    @property
    def aspect(self) -> str:
        return Aspect.LANDSCAPE if self.width >= self.height else Aspect.PORTRAIT

    def read(self) -> bytes:
        with default_storage.open(self.name, "rb") as f:
            data: bytes = f.read()
        return data


@dataclass(frozen=True)
class ClipOptions:
    """What to make. Field names are the job's column names and the form's field names."""

    prompt: str
    mode: str = Mode.IMAGE
    negative_prompt: str = ""
    duration: int = 8
    resolution: str = Resolution.P720
    aspect: str = Aspect.AUTO
    audio: bool = True
    seed: int | None = None
    # How the still was fitted to the aspect; empty when it already fitted (or there is none).
    framing: str = ""
    image: Still | None = None
    last_frame: Still | None = None

    def frame_size(self) -> tuple[int, int]:
        return frame_size(self.aspect, self.resolution, self.image.size if self.image else None)

    def fixed_aspect(self) -> str:
        """The aspect as 16:9 or 9:16, for APIs without "auto" (see frame_size)."""
        width, height = self.frame_size()
        return Aspect.LANDSCAPE if width >= height else Aspect.PORTRAIT

    def replace(self, **changes: Any) -> ClipOptions:
        return dataclasses.replace(self, **changes)

    def changes_from(self, other: ClipOptions) -> dict[str, Any]:
        """The fields whose value differs from `other`'s, with this one's values."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }

    def columns(self) -> dict[str, Any]:
        """The job's columns for these options (stills by id)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for role in STILL_ROLES:
            still = values.pop(role)
            values[f"{role}_id"] = still.id if still else None
        return values

    @classmethod
    def from_record(cls, record: Any) -> ClipOptions:
        """The options kept by a record with one attribute per field (a Job), its stills
        read through `Still.of`."""
        values = {f.name: getattr(record, f.name) for f in dataclasses.fields(cls)}
        for role in STILL_ROLES:
            values[role] = Still.of(values[role]) if values[role] is not None else None
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClipOptions:
        values = dict(data)
        for role in STILL_ROLES:
            values[role] = Still(**values[role]) if values.get(role) else None
        return cls(**values)

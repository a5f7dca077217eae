"""The one interface the engine uses for every provider, and the errors it understands.

A generation is asynchronous at every provider: *submit* hands over the request and returns
the provider's id for it, *poll* says where the job is, *fetch* brings the finished MP4 home.
Each call is short; the engine never waits inside a provider call for a job to finish.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from django.core.files.storage import default_storage


class ProviderError(Exception):
    """A provider could not do what was asked. `str(error)` is shown to the creator."""

    retryable = False


class TransientError(ProviderError):
    """Worth trying again later (network trouble, 5xx, the provider is busy)."""

    retryable = True


class RateLimitedError(TransientError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ContentPolicyError(ProviderError):
    """The provider refused the prompt or image; the message carries its own words."""


class InvalidRequestError(ProviderError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class AccountError(ProviderError):
    """Authentication failed or the account has no credit at the provider."""


class NotFoundError(ProviderError):
    """The provider no longer knows the job or its result has expired."""


@dataclass(frozen=True)
class ImageInput:
    """A normalised still in our storage, handed to a provider."""

    name: str
    content_type: str
    width: int
    height: int

    def read(self) -> bytes:
        with default_storage.open(self.name, "rb") as f:
            return f.read()


@dataclass(frozen=True)
class GenerationRequest:
    reference: str  # our own id for the job, for providers that can deduplicate on it
    mode: str
    prompt: str
    negative_prompt: str
    duration: int
    resolution: str
    aspect: str
    audio: bool
    seed: int | None
    image: ImageInput | None = None
    last_frame: ImageInput | None = None


@dataclass(frozen=True)
class Handle:
    """What finds a job again at its provider: the id, plus anything the provider returned
    at submit that later calls need (fal's status and result URLs, for one)."""

    provider_job_id: str
    state: dict = field(default_factory=dict)


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PollResult:
    phase: Phase
    queue_position: int | None = None
    progress: float | None = None  # 0..1 where the provider reports it
    result_url: str = ""
    error: str = ""


class Provider:
    """Base class: one subclass per provider, in a module named after it."""

    name: str = ""
    label: str = ""
    # True when submitting the same request twice creates one job, so a submit interrupted
    # by a crash may simply be sent again without charging twice.
    idempotent_submit: bool = False
    poll_interval_seconds: float = 5.0

    def unavailable_reason(self) -> str:
        """Empty when the provider can be used; otherwise why not, for the creator."""
        return ""

    def submit(self, request: GenerationRequest) -> Handle:
        raise NotImplementedError

    def poll(self, handle: Handle) -> PollResult:
        raise NotImplementedError

    def fetch(self, handle: Handle, result_url: str, dest: Path) -> None:
        """Write the finished MP4 to `dest`."""
        raise NotImplementedError

    def cancel(self, handle: Handle) -> None:
        """Ask the provider to stop; providers without cancel simply let the job run out."""

    def discard(self, handle: Handle) -> None:
        """Forget the provider's copy once our clip is safely stored, where that is ours to do."""

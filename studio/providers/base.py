"""The one interface the engine uses for every provider, and the errors it understands.

A generation is asynchronous at every provider: *submit* hands over the request and returns
the provider's id for it, *poll* says where the job is, *fetch* brings the finished MP4 home.
Each call is short; the engine never waits inside a provider call for a job to finish.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from django.core.files.storage import default_storage

from studio import video
from studio.providers.capabilities import Capabilities


class ProviderError(Exception):
    """A provider could not do what was asked. `str(error)` is shown to the creator.

    `charged_on_failure` is the provider's documented billing for this failure, for quota
    work: False = not charged, True = charged, None = unknown or "may be" (fal's 422s).
    """

    retryable = False
    kind = "provider"  # Job.ErrorKind, for the admin's filters

    def __init__(self, message: str = "", *, charged_on_failure: bool | None = None):
        super().__init__(message)
        self.charged_on_failure = charged_on_failure


class TransientError(ProviderError):
    """Worth trying again later (network trouble, 5xx, the provider is busy)."""

    retryable = True
    kind = "transient"


class RateLimitedError(TransientError):
    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ContentPolicyError(ProviderError):
    """The provider refused the prompt or image; the message carries its own words."""

    kind = "content_policy"


class InvalidRequestError(ProviderError):
    kind = "invalid_request"

    def __init__(self, message: str, field: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.field = field


class AccountError(ProviderError):
    """Authentication failed or the account has no credit at the provider."""

    kind = "account"


class NotFoundError(ProviderError):
    """The provider no longer knows the job or its result has expired."""

    kind = "not_found"


class SubmitUncertainError(ProviderError):
    """A submit reached the provider but its answer was lost (a read timeout, a cut or
    unreadable reply), so whether the job exists is unknown. Not retryable: sending it
    again could make, and charge for, a second clip."""

    kind = "submit_uncertain"


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

    def fixed_aspect(self) -> str:
        """The aspect as 16:9 or 9:16. For APIs without "auto": the orientation nearest the
        still, exactly as the local renderer and the engine's clip check read "auto"."""
        if self.aspect != "auto":
            return self.aspect
        size = (self.image.width, self.image.height) if self.image else None
        width, height = video.output_size("auto", self.resolution, size)
        return "16:9" if width >= height else "9:16"


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
    # True when polling reads Studio's own database (the local renderer), not a remote API.
    reads_database: bool = False
    capabilities: Capabilities = Capabilities(label="This provider")

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

"""The one interface the engine uses for every provider, and the errors it understands.

A generation is asynchronous at every provider: *submit* hands over the request and returns
the provider's id for it, *poll* says where the job is, *fetch* brings the finished MP4 home.
Each call is short; the engine never waits inside a provider call for a job to finish.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from studio.options import ClipOptions, Mode, StoredVideo
from studio.providers.capabilities import Capabilities
from studio.providers.webhooks import Delivery, NotConfigured
from studio.redaction import scrub


class Billing(StrEnum):
    """What a provider bills for a job that failed a given way, by its documented rules."""

    NOT_BILLED = "not_billed"
    BILLED = "billed"
    MAY_BE_BILLED = "may_be_billed"  # unknown, or "may still be charged" (fal's 422s)


class ProviderError(Exception):
    """A provider could not do what was asked. `str(error)` is shown to the creator.

    `billing` is the provider's documented billing for this failure, for the ledger;
    `words` the provider's own words, where it gave any.
    """

    retryable = False
    kind = "provider"  # Job.ErrorKind, for the admin's filters

    def __init__(
        self, message: str = "", *, billing: Billing = Billing.MAY_BE_BILLED, words: str = ""
    ):
        # Scrubbed here, once for every use: what a provider says may quote Studio's key.
        super().__init__(scrub(message))
        self.billing = billing
        self.words = scrub(words)


class TransientError(ProviderError):
    """Worth trying again later (network trouble, 5xx, the provider is busy)."""

    retryable = True
    kind = "transient"


class RateLimitedError(TransientError):
    kind = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ContentPolicyError(ProviderError):
    """The provider refused the prompt or image; the message carries its own words."""

    kind = "content_policy"


class InvalidRequestError(ProviderError):
    kind = "invalid_request"

    def __init__(self, message: str, field: str = "", **kwargs: Any):
        super().__init__(message, **kwargs)
        self.field = field


class AccountError(ProviderError):
    """Authentication failed or the account has no credit at the provider."""

    kind = "account"


class NotFoundError(ProviderError):
    """The provider no longer knows the job or its result has expired."""

    kind = "not_found"


class ModelUnavailableError(ProviderError):
    """The provider does not serve the model Studio asks for (retired, or never offered to
    this account): nothing was made, so nothing is billed. Not the job's fault: the provider
    is marked unavailable for everyone until a check succeeds again."""

    kind = "model_unavailable"

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("billing", Billing.NOT_BILLED)
        super().__init__(message, **kwargs)


class SubmitUncertainError(ProviderError):
    """A submit reached the provider but its answer was lost (a read timeout, a cut or
    unreadable reply), so whether the job exists is unknown. Not retryable: sending it
    again could make, and charge for, a second clip."""

    kind = "submit_uncertain"


# Studio's own name for a job at a provider ("studio-job-12"): sent where a provider keeps one,
# and read back from webhooks that echo it.
_REFERENCE = re.compile(r"studio-job-(\d{1,18})")


def reference_for(job_id: int) -> str:
    return f"studio-job-{job_id}"


def job_id_in(reference: object) -> int | None:
    """The job id a reference names, or None when it is not one of Studio's."""
    match = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class GenerationRequest:
    """One job, as a provider is asked to make it."""

    reference: str  # our own id for the job ("studio-job-<pk>"), for providers that keep one
    options: ClipOptions
    # Where the provider should send its webhook when the job ends; "" when Studio is
    # followed by polling alone (STUDIO_PUBLIC_URL unset).
    webhook_url: str = ""
    # A stored clip to continue instead of starting afresh: the provider adds
    # `capabilities.extend_seconds` to it, following the prompt, and returns the whole
    # longer clip. Only providers with extend_seconds take one (Provider.submit refuses it
    # elsewhere).
    extend_from: StoredVideo | None = None


@dataclass(frozen=True)
class Handle:
    """What finds a job again at its provider: the id, plus anything the provider returned
    at submit that later calls need (fal's status and result URLs, for one)."""

    provider_job_id: str
    state: dict[str, Any] = field(default_factory=dict)


class CancelOutcome(StrEnum):
    """What asking a provider to stop a job did, for the ledger: refund only what it will
    not bill."""

    STOPPED = "stopped"  # removed before it started (or free): nothing is billed
    STOP_REQUESTED = "stop_requested"  # it had started: asked to stop, and it may still bill
    CANNOT_STOP = "cannot_stop"  # it cannot be stopped: it finishes, and bills


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


@dataclass(frozen=True)
class HealthCheck:
    """What one cheap, documented call at a provider proved: that Studio's key works and that
    the model is served. None: the call cannot tell (or none is documented); `message` is the
    provider's own words when something failed."""

    key_ok: bool | None
    model_ok: bool | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.key_ok is not False and self.model_ok is not False


@dataclass(frozen=True)
class PriceRow:
    """One seeded price: USD per second for a mode, resolution and audio, with its source.
    Rows are added to the admin's price table after `migrate` when missing, never changed
    (studio/pricing.py)."""

    mode: str
    resolution: str
    audio: bool
    usd_per_second: Decimal
    source: str
    as_of: datetime.date | None = None
    confirmed: bool = True


def price_rows(
    figures: Mapping[tuple[str, bool], str],
    *,
    source: str,
    as_of: datetime.date | None = None,
    confirmed: bool = True,
    modes: tuple[str, ...] = tuple(Mode.values),
) -> tuple[PriceRow, ...]:
    """Seeded prices: `figures` ((resolution, audio) → USD per second) for each of `modes`."""
    return tuple(
        PriceRow(mode, resolution, audio, Decimal(usd), source, as_of, confirmed)
        for mode in modes
        for (resolution, audio), usd in figures.items()
    )


class Provider:
    """Base class: one subclass per provider, in studio/providers/<name>/client.py."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    # True when submitting the same request twice creates one job, so a submit interrupted
    # by a crash may simply be sent again without charging twice.
    idempotent_submit: ClassVar[bool] = False
    poll_interval_seconds: ClassVar[float] = 5.0
    # Costs nothing: no prices, never charged.
    free: ClassVar[bool] = False
    # Renders in Studio's own workers (the local renderer): its status call is a database
    # query, it leaves its own copy of each clip to discard, and it is no stand-in for Veo,
    # so failover never moves a job to it.
    runs_here: ClassVar[bool] = False
    # Cancelling: whether it documents removing a job still in its queue without charge, and
    # whether it can be asked to stop one it has started (which it may still bill).
    cancels_queued: ClassVar[bool] = False
    stops_running: ClassVar[bool] = False
    capabilities: ClassVar[Capabilities] = Capabilities(label="This provider")
    prices: ClassVar[tuple[PriceRow, ...]] = ()

    def model_id(self, options: ClipOptions) -> str:
        """The model (or endpoint) asked to make `options`, as the provider names it: kept on
        the job at submit, for the clip's recipe."""
        return ""

    def missing_setup(self) -> str:
        """What an operator must set before this provider can be used ("" when it is set
        up), e.g. "Set FAL_KEY to use fal.ai." (the admin, health checks)."""
        return ""

    def unavailable_reason(self) -> str:
        """Why creators cannot use it now, in their words ("" when they can)."""
        return "not set up on this Studio" if self.missing_setup() else ""

    def submit(self, request: GenerationRequest) -> Handle:
        """Hand the job over (`_submit`, each provider's protocol), once what no provider
        can be asked for unless its capabilities say so is refused, here for all of them."""
        if request.extend_from is not None and self.capabilities.extend_seconds is None:
            raise InvalidRequestError(
                f"{self.label} cannot continue a clip; only a new one can be made.",
                field="extend_from",
            )
        return self._submit(request)

    def _submit(self, request: GenerationRequest) -> Handle:
        raise NotImplementedError

    def poll(self, handle: Handle) -> PollResult:
        raise NotImplementedError

    def fetch(self, handle: Handle, result_url: str, dest: Path) -> None:
        """Write the finished MP4 to `dest`."""
        raise NotImplementedError

    def cancel(self, handle: Handle) -> CancelOutcome:
        """Ask the provider to stop the job, and say what that did. Providers without a
        documented cancel let the job run out (and bill it)."""
        return CancelOutcome.CANNOT_STOP

    def discard(self, handle: Handle) -> None:
        """Forget the provider's copy once our clip is safely stored, where that is ours to do."""

    def check(self) -> HealthCheck:
        """One cheap call that proves the key works and the model is served (manage.py
        providers check); raises ProviderError when the provider cannot be reached."""
        return HealthCheck(key_ok=None, model_ok=None, message="No check is documented.")

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        """The delivery, if its signature verifies; WebhookRefused otherwise."""
        raise NotConfigured(f"{self.label} sends no webhooks")

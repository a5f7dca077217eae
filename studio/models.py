import uuid
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from studio import options
from studio.options import ClipOptions
from studio.providers.names import label


class SourceImage(models.Model):
    """A normalised still uploaded by a creator; the same upload is stored once per creator."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="images"
    )
    file = models.FileField(max_length=255)
    # The upload's hash; for an image framed from another, the hash of its own bytes.
    upload_sha256 = models.CharField(max_length=64)
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    content_type = models.CharField(max_length=40)
    # The stored file's size: what a provider is sent (kept here, so no storage call is needed).
    size_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # When it was last uploaded (the same upload is stored once): a still no job uses is
    # purged STUDIO_STILL_RETENTION_DAYS after this (images.purge_unused_stills).
    last_uploaded_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "upload_sha256"], name="image_once_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.width}×{self.height} image #{self.pk}"


class JobQuerySet(models.QuerySet):
    def at_provider(self) -> "JobQuerySet":
        """Jobs the provider is working on: the follower polls these."""
        return self.filter(status__in=Job.AT_PROVIDER)

    def unfinished(self) -> "JobQuerySet":
        return self.exclude(status__in=Job.TERMINAL)

    def waiting(self) -> "JobQuerySet":
        """Jobs in Studio's own queue, oldest first: the order they are given slots in."""
        return self.filter(status=Job.Status.WAITING).order_by("created_at", "pk")


class Job(models.Model):
    class Status(models.TextChoices):
        # Accepted and reserved, waiting in Studio's own queue for one of the creator's
        # running slots (studio/quotas.py admits it); it holds money and seconds, no slot.
        WAITING = "waiting", "Waiting for a free slot"
        QUEUED = "queued", "Queued"
        SUBMITTING = "submitting", "Sending to provider"
        SUBMITTED = "submitted", "Waiting at provider"
        RUNNING = "running", "Generating"
        FINISHING = "finishing", "Saving clip"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # A clip's options, as studio/options.py defines them.
    Mode = options.Mode
    Resolution = options.Resolution
    Aspect = options.Aspect
    Framing = options.Framing

    class Charge(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        SETTLED = "settled", "Charged"
        REFUNDED = "refunded", "Not charged"

    class ErrorKind(models.TextChoices):
        PROVIDER = "provider", "Provider error"
        TRANSIENT = "transient", "Provider unreachable or busy"
        RATE_LIMITED = "rate_limited", "Rate limited"
        CONTENT_POLICY = "content_policy", "Content policy"
        INVALID_REQUEST = "invalid_request", "Invalid request"
        ACCOUNT = "account", "Provider account"
        NOT_FOUND = "not_found", "Not found or expired"
        SUBMIT_UNCERTAIN = "submit_uncertain", "Submit answer lost"
        MODEL_UNAVAILABLE = "model_unavailable", "Model not served by the provider"
        GENERATION = "generation", "Generation failed at the provider"
        DOWNLOAD = "download", "Download failed"
        BAD_CLIP = "bad_clip", "Clip failed its checks"
        INTERRUPTED = "interrupted", "Interrupted"
        TIMED_OUT = "timed_out", "Timed out"

    DURATIONS = options.DURATIONS
    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    # Not sent to a provider yet: cancelling is free.
    NOT_SENT = (Status.WAITING, Status.QUEUED)
    # How long a queued step may wait for a free worker (or a freed slot for its hand-over)
    # before the follower takes it up itself.
    TASK_GRACE = timedelta(seconds=60)
    AT_PROVIDER = (Status.SUBMITTED, Status.RUNNING)  # the provider has it; we poll
    MAX_SEED = options.MAX_SEED

    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    image = models.ForeignKey(
        SourceImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_frame = models.ForeignKey(
        SourceImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.IMAGE)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    duration = models.PositiveSmallIntegerField(choices=[(d, f"{d} s") for d in DURATIONS])
    resolution = models.CharField(max_length=8, choices=Resolution.choices)
    aspect = models.CharField(max_length=8, choices=Aspect.choices)
    # How the image was fitted to the aspect; empty when it already fitted.
    framing = models.CharField(max_length=4, choices=Framing.choices, blank=True)
    audio = models.BooleanField(default=True)
    seed = models.PositiveBigIntegerField(null=True, blank=True)
    # Left empty by the creator, the seed is Studio's pick (shown, so a clip can be made
    # again); such a job may still fail over to a provider that takes no seed.
    seed_drawn = models.BooleanField(default=False)
    provider = models.CharField(max_length=20)
    # The price the job was charged at, kept however the price table changes later.
    price_per_second = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal("0"), help_text="USD"
    )
    estimated_cost = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    # Failover (STUDIO_FAILOVER on, and the creator opted in): the provider it moved from.
    allow_failover = models.BooleanField(default=False)
    failed_over_from = models.CharField(max_length=20, blank=True)
    # Variations made together from one request share a batch (reserved all or nothing).
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    # Where the job stands in the ledger (studio/quotas.py is the only writer).
    charge = models.CharField(max_length=10, choices=Charge.choices, blank=True)
    # Whether the job holds one of its creator's running slots (Quota.running_jobs counts
    # these): taken when it leaves *waiting*, given back once when it ends; quotas.py only.
    holds_slot = models.BooleanField(default=False)

    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    # What the provider gave us to find the job again, written the moment it is known.
    provider_job_id = models.CharField(max_length=255, blank=True)
    # The model (or endpoint) the provider was asked for, as it names it: set at submit.
    model = models.CharField(max_length=200, blank=True)
    provider_state = models.JSONField(default=dict, blank=True)
    result_url = models.TextField(blank=True)
    queue_position = models.PositiveIntegerField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_kind = models.CharField(
        max_length=20, choices=ErrorKind.choices, blank=True, db_index=True
    )
    # The creator asked to cancel once the provider had it, and what asking the provider did
    # (a providers.base.CancelOutcome value; empty until the provider was asked).
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_outcome = models.CharField(max_length=16, blank=True)
    # A step working on the job (submitting, finishing) owns it until then; a worker killed
    # mid-step leaves it to expire so the step can be taken up again.
    lease_until = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # When it took a running slot (left *waiting*): the timeout ceiling counts from here.
    admitted_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # When Studio learned the provider had finished: generation time, for planning polls.
    provider_done_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A failed or cancelled job the creator put away: it leaves the library's tray.
    dismissed_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The library's tray (a creator's failed jobs) and its status filters: without
            # it, every one of a creator's jobs is read to find the few that failed.
            models.Index(fields=["creator", "status"], name="job_creator_status"),
        ]

    def __str__(self) -> str:
        return f"Job #{self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def can_cancel(self) -> bool:
        """Whether the creator may still ask to cancel (once: the provider is asked)."""
        if self.cancel_requested_at is not None:
            return False
        return self.status in (
            self.Status.WAITING,
            self.Status.QUEUED,
            self.Status.SUBMITTING,
            self.Status.SUBMITTED,
            self.Status.RUNNING,
        )

    @property
    def provider_label(self) -> str:
        return label(self.provider)

    @property
    def failed_over_from_label(self) -> str:
        return label(self.failed_over_from)

    @property
    def options(self) -> ClipOptions:
        """What the job makes, rebuilt from its columns (stills included)."""
        return ClipOptions.from_record(self)

    def move(self, from_states: Iterable[str], to: str, **fields: Any) -> bool:
        """Change status only if it is still one of `from_states`: the one way status changes.

        A single conditional UPDATE, so of two workers running the same step only one wins,
        and a duplicate task run is a no-op.
        """
        fields = {"status": to, "updated_at": timezone.now(), **fields}
        moved = Job.objects.filter(pk=self.pk, status__in=list(from_states)).update(**fields)
        if moved:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(moved)

    def claim(self, status: str, *, for_seconds: int, to: str | None = None) -> bool:
        """Take the job for one step: it must be in `status` and not leased by a live step.

        The job is next due when the lease ends: should the step's worker die, the follower
        takes the step up then (studio/following.py)."""
        now = timezone.now()
        until = now + timedelta(seconds=for_seconds)
        fields = {
            "status": to or status,
            "lease_until": until,
            "next_check_at": until,
            "updated_at": now,
        }
        moved = (
            Job.objects.filter(pk=self.pk, status=status)
            .filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lt=now))
            .update(**fields)
        )
        if moved:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(moved)


class Clip(models.Model):
    """The finished MP4 in our own storage; every figure is read back from the file."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="clip")
    file = models.FileField(max_length=255)
    poster = models.FileField(max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration = models.FloatField(help_text="seconds")
    fps = models.FloatField()
    has_audio = models.BooleanField()
    size_bytes = models.PositiveBigIntegerField()
    # The clip's last frame (a JPEG), taken at finish: what "Continue from here" starts from.
    last_frame = models.FileField(max_length=255, blank=True)
    favourite = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Clip of job #{self.job_id}"

    @property
    def aspect_label(self) -> str:
        return "16:9" if self.width >= self.height else "9:16"

    @property
    def resolution_label(self) -> str:
        return f"{min(self.width, self.height)}p"

    @property
    def download_name(self) -> str:
        """Named from the prompt, in safe characters: `lighthouse-push-in-42.mp4`."""
        return download_name(self.job.prompt, self.job_id)


DOWNLOAD_NAME_MAX = 80


def download_name(prompt: str, number: int, suffix: str = ".mp4") -> str:
    """A file name from a prompt: lower-case ASCII words joined by hyphens, then the job's
    number, at most DOWNLOAD_NAME_MAX characters with the suffix; cut at a word's end."""
    tail = f"-{number}{suffix}"
    words = slugify(prompt).split("-")
    stem = ""
    for word in filter(None, words):
        longer = f"{stem}-{word}" if stem else word
        if len(longer) + len(tail) > DOWNLOAD_NAME_MAX:
            break
        stem = longer
    return f"{stem or 'studio-clip'}{tail}"


class LocalRender(models.Model):
    """The local renderer's own queue: its side of the provider protocol, as a hosted
    provider keeps its jobs on its servers."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RENDERING = "rendering"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_reference = models.CharField(max_length=64, unique=True)
    spec = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    output = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Local render {self.id} ({self.status})"


class Lease(models.Model):
    """A named lease held in the database, so only one worker anywhere runs a singleton step."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at}"


class Quota(models.Model):
    """A creator's limits (empty: the site's defaults) and the running slots they hold now.

    The admin's creator page sets the limits, and only them; everything else is written by
    studio/quotas.py alone, by conditional updates that hold under concurrency.
    """

    creator = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )
    monthly_budget = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="USD per calendar month"
    )
    monthly_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds of video per calendar month"
    )
    concurrent_jobs = models.PositiveSmallIntegerField(null=True, blank=True)
    # Empty: every provider / resolution the site offers.
    allowed_providers = models.JSONField(default=list, blank=True)
    allowed_resolutions = models.JSONField(default=list, blank=True)
    suspended = models.BooleanField(default=False)
    # Jobs holding a running slot (Job.holds_slot), at most the concurrent-jobs limit.
    running_jobs = models.PositiveSmallIntegerField(default=0, editable=False)
    # A freed slot is handed to the next waiting job at once; should that hand-over be
    # lost (a worker killed), the follower admits this creator's waiting jobs from then on.
    admit_due_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"Quota of {self.creator}"


class Usage(models.Model):
    """What a creator has committed in one calendar month, kept in step with the ledger."""

    # Money history outlives nothing: an account that has it is deactivated, never deleted
    # (studio/accounts.py).
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    month = models.DateField(help_text="The first day of the month, in the site's time zone")
    usd = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    seconds = models.PositiveIntegerField(default=0)
    # Extra allowance an admin granted for this month only, on top of the limits.
    granted_usd = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["creator", "month"], name="one_usage_per_month")
        ]

    def __str__(self) -> str:
        return f"{self.creator} in {self.month:%B %Y}"


class LedgerEntry(models.Model):
    """One change to a creator's usage. Rows are only ever added."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserved"
        SETTLE = "settle", "Charged"
        REFUND = "refund", "Refunded"
        GRANT = "grant", "Extra budget granted"
        RESET = "reset", "Month reset"
        REPRICE = "reprice", "Repriced (failover)"
        SUSPEND = "suspend", "Suspended"
        RESUME = "resume", "Resumed"

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    usd = models.DecimalField(max_digits=12, decimal_places=2)
    seconds = models.IntegerField()
    month = models.DateField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ${self.usd} for job {self.job_id}"


class Price(models.Model):
    """What one second of output costs at a provider, editable in the admin.

    Seeded from shared/providers.md §6 with each figure's source; a job copies its price
    when it is created, so a later change never alters what a clip was charged.
    The local renderer is free and has no rows.
    """

    provider = models.CharField(max_length=20)
    mode = models.CharField(max_length=12, choices=Job.Mode.choices)
    resolution = models.CharField(max_length=8, choices=Job.Resolution.choices)
    audio = models.BooleanField()
    usd_per_second = models.DecimalField(max_digits=8, decimal_places=4)
    source = models.CharField(max_length=300, help_text="Where the figure comes from")
    as_of = models.DateField(null=True, blank=True, help_text="The source's date, when it has one")
    confirmed = models.BooleanField(
        default=True, help_text="Unticked: a provisional figure, to check on the first bill"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "mode", "resolution", "-audio"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "mode", "resolution", "audio"], name="one_price_per_option"
            ),
            models.CheckConstraint(
                condition=models.Q(usd_per_second__gte=0), name="price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        sound = "with audio" if self.audio else "no audio"
        return f"{self.provider} {self.mode} {self.resolution} {sound}: ${self.usd_per_second}/s"


class Creator(User):
    """An account seen from the money side: the admin's creators list, with this month's
    spend against its limits. A proxy: the same rows as the user model."""

    class Meta:
        proxy = True
        ordering = ["username"]
        # Money for an account: more than the right to change its limits or standing.
        permissions = [("grant_budget", "Can grant extra budget and reset a month's spend")]


class WebhookDelivery(models.Model):
    """A verified webhook, kept so that the same delivery sent again has no second effect.

    A replay must carry a timestamp inside the webhook window, so rows older than that
    can never match again and are pruned (studio/webhooks.py).
    """

    provider = models.CharField(max_length=20)
    delivery_id = models.CharField(max_length=255)
    # The signature that verified, in one canonical spelling (so a re-encoded copy of it
    # is the same delivery).
    signature = models.CharField(max_length=128)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "delivery_id", "signature"], name="one_webhook_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} webhook {self.delivery_id}"


class ProviderStatus(models.Model):
    """Whether a provider can take jobs, from its last health check and from what its own
    replies said (a model it no longer serves). Written by studio/health.py only."""

    provider = models.CharField(max_length=20, unique=True)
    available = models.BooleanField(default=True)
    # The provider's own words for why it is unavailable, and since when.
    reason = models.TextField(blank=True)
    unavailable_since = models.DateTimeField(null=True, blank=True)
    # The last health check (manage.py providers check).
    checked_at = models.DateTimeField(null=True, blank=True)
    key_ok = models.BooleanField(null=True)
    model_ok = models.BooleanField(null=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "provider status"
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{label(self.provider)}: {'available' if self.available else 'unavailable'}"


class Preferences(models.Model):
    """What a creator chose for themselves (their limits, set by the admin, are on Quota)."""

    creator = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    email_when_ready = models.BooleanField(
        default=False, help_text="E-mail the creator when a clip, or a batch's last clip, ends."
    )

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"Preferences of {self.creator}"


class Notification(models.Model):
    """An e-mail about a job, or a batch, that ended. Recorded before it is sent, so each is
    sent at most once however often its task runs (studio/notifications.py)."""

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    # What it is about: "job-<id>", or "batch-<uuid>" for all of a batch's clips.
    about = models.CharField(max_length=64, unique=True)
    # The job whose end sent it (for a batch, the last to end).
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"E-mail about {self.about} to {self.to}"


class Sequence(models.Model):
    """Clips stitched into one film in the worker (studio/sequences.py). Work done here:
    it costs nothing and counts against neither the monthly budget nor the monthly seconds
    of hosted generation, which limit what providers are paid to make."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        STITCHING = "stitching", "Stitching"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED)

    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sequences"
    )
    title = models.CharField(max_length=200)
    # Its recipe: each clip in order and how it begins, as made (a clip deleted later stays
    # named here): [{"clip": id, "job": id, "prompt": str, "duration": s, "fade": s}, ...]
    parts = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # What the film changed about its clips (sizes, rates, silence).
    warnings = models.JSONField(default=list, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    file = models.FileField(max_length=255, blank=True)
    poster = models.FileField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="seconds")
    has_audio = models.BooleanField(default=False)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Sequence #{self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def download_name(self) -> str:
        return download_name(self.title, self.pk, "-sequence.mp4")

    def claim(self, *, for_seconds: int) -> bool:
        """Take the sequence to stitch it: queued, or stitching under a lease that ran out
        (its worker died). One conditional UPDATE, so two workers never both stitch it."""
        now = timezone.now()
        # Queued, whatever its lease (the follower's note of when it last queued it).
        free = models.Q(status=self.Status.QUEUED) | models.Q(
            status=self.Status.STITCHING, lease_until__lt=now
        )
        until = now + timedelta(seconds=for_seconds)
        moved = Sequence.objects.filter(free, pk=self.pk).update(
            status=self.Status.STITCHING, lease_until=until, progress=0
        )
        if moved:
            self.status, self.lease_until = self.Status.STITCHING, until
        return bool(moved)

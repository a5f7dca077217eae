"""Failover: a job whose provider cannot take it moves to another that can make the same clip.

Only when the site allows it (STUDIO_FAILOVER) and the creator opted in on the job, only
before any provider accepted the job (a transient error at submit, a model the provider no
longer serves, or the provider marked down in STUDIO_PROVIDERS_DOWN), and at most once per
job. The next provider, in the
registry's order, must be hosted (the local renderer is no stand-in for Veo), available,
allowed for the creator, able to make every option as chosen (pre-flight finds nothing)
and priced; the price difference must fit the creator's remaining quota (quotas.reprice).
The job then shows where it ran and why.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio import health, pricing, quotas, throttle
from studio.models import Job
from studio.providers.capabilities import preflight
from studio.providers.registry import capabilities_of, label, provider_classes


def wanted(job: Job) -> bool:
    return settings.STUDIO_FAILOVER and job.allow_failover and not job.failed_over_from


def candidates(job: Job) -> list[tuple[str, pricing.Quote]]:
    limits = quotas.limits_of(job.creator)
    options = job.options
    if job.seed_drawn:  # Studio's pick, not the creator's: any provider may make it
        options = options.replace(seed=None)
    unavailable = health.unavailable_reasons()
    found = []
    for name, cls in provider_classes().items():
        if name == job.provider or cls.runs_here or name in settings.STUDIO_PROVIDERS_DOWN:
            continue
        if name in unavailable or not limits.allows_provider(name):
            continue
        if preflight(cls.capabilities, options):
            continue
        try:
            quote = pricing.quote(name, options)
        except pricing.UnknownPrice:
            continue
        found.append((name, quote))
    return found


def move_on(job: Job, reason: str) -> bool:
    """Move a job in *submitting* to the next provider that fits; False if none does."""
    if not wanted(job):
        return False
    was = label(job.provider)
    for name, quote in candidates(job):
        seed = job.seed if not job.seed_drawn or capabilities_of(name).seed else None
        try:
            with transaction.atomic():
                quotas.reprice(job, quote.cost, reason=f"failed over from {job.provider}")
                moved = job.move(
                    [Job.Status.SUBMITTING],
                    Job.Status.QUEUED,
                    provider=name,
                    failed_over_from=job.provider,
                    seed=seed,
                    seed_drawn=job.seed_drawn and seed is not None,
                    price_per_second=quote.usd_per_second,
                    estimated_cost=quote.cost,
                    lease_until=None,
                    error=f"{was} could not take the job ({reason.rstrip('.')}), so it moved "
                    f"to {label(name)}.",
                    next_check_at=timezone.now(),
                )
                if not moved:
                    raise quotas.QuotaExceeded("the job moved on meanwhile")
        except quotas.QuotaExceeded:
            continue
        transaction.on_commit(lambda: throttle.queue_submits([job.pk]))
        return True
    return False

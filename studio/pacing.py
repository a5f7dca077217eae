"""When to ask a provider again about a job: few status calls, yet a finished clip noticed
within seconds.

A job's generation time at one provider varies little from job to job, so the plan learns it
(the median of the last finished jobs there) and spends its calls where the job is likely to
finish: nothing until 80% of the typical time, then every typical/10 seconds (1 to 2 s until
1.1 times the typical time, 1 to 3 s until 1.5 times), then backing off for the stragglers.
Before anything is learned it widens gently (the provider's own interval, at most 5 s, then
half the job's age, at most 15 s). A job still queued at the provider waits about a second
per job ahead of it, but only where nothing better is known: before anything is learned (at
most 15 s) and once it is late.
Within the learned window the queue position is not heeded: the learned time already holds
the usual queueing, and a burst of our own jobs puts hundreds ahead of each one at a provider
that works through them in parallel (obeying it made a burst wait many seconds to be noticed;
README: The job engine).

For a 20-second generation that is a handful of calls and at most about 2 s between the
provider finishing and Studio noticing (bench/engine.py measures both).
"""

import statistics
import time
from datetime import datetime, timedelta

from django.db.models import F

from studio.models import Job
from studio.providers.registry import provider_class

LEARN_FROM = 20  # finished jobs per provider
RELEARN_SECONDS = 15.0
# Until a provider has finished jobs to learn from, look again this often: the first jobs of a
# burst finish together, and the rest should be planned by them within a second, not 15.
UNKNOWN_RELEARN_SECONDS = 1.0
COLD_MAX = 15.0
# Around the learned time calls are at most this far apart, so a long job is noticed within
# about 2 s (3 s apart left long jobs' noticing p95 near 3 s: README, The job engine). Past
# 1.1 times the typical time they spread to 3 s, which keeps even a job done at 1.5 times
# within 12 calls per minute of generation.
NEAR_MAX = 2.0
LATE_MAX = 30.0

_typical: dict[str, tuple[float, float | None]] = {}


def typical_seconds(provider: str) -> float | None:
    """The median time from submit to done of the provider's last finished jobs."""
    learned = _typical.get(provider)
    if learned:
        keep = RELEARN_SECONDS if learned[1] is not None else UNKNOWN_RELEARN_SECONDS
        if time.monotonic() - learned[0] < keep:
            return learned[1]
    spans = (
        Job.objects.filter(provider=provider, provider_done_at__isnull=False)
        .exclude(submitted_at__isnull=True)
        .order_by("-provider_done_at")
        .annotate(span=F("provider_done_at") - F("submitted_at"))
        .values_list("span", flat=True)[:LEARN_FROM]
    )
    seconds = [span.total_seconds() for span in spans if span is not None]
    value = statistics.median(seconds) if seconds else None
    _typical[provider] = (time.monotonic(), value)
    return value


def interval(
    age: float, typical: float | None, queue_position: int | None = None, cold_min: float = 5.0
) -> float:
    """Seconds until the next status call for a job submitted `age` seconds ago."""
    if typical is None:
        wait = min(COLD_MAX, max(cold_min, age / 2))
        ceiling = COLD_MAX
    elif age < 0.8 * typical - 1:
        return 0.8 * typical - age
    elif age < 1.1 * typical:
        return min(NEAR_MAX, max(1.0, typical / 10))
    elif age < 1.5 * typical:
        return min(3.0, max(1.0, typical / 10))
    else:
        wait = min(LATE_MAX, max(3.0, age / 10))
        ceiling = LATE_MAX
    if queue_position:
        wait = max(wait, min(ceiling, float(queue_position)))
    return wait


def next_check(job: Job, now: datetime, queue_position: int | None = None) -> datetime:
    age = (now - (job.submitted_at or now)).total_seconds()
    cold_min = min(5.0, provider_class(job.provider).poll_interval_seconds)
    wait = interval(age, typical_seconds(job.provider), queue_position, cold_min)
    return now + timedelta(seconds=wait)

"""Webhooks: a provider tells Studio a job is done, so it finishes at once instead of at the
next poll.

Asked for only where a provider offers them and STUDIO_PUBLIC_URL is set (jobs.py gives each
submit its callback URL). Each provider verifies its own deliveries in its package
(`Provider.verify_webhook`: the signature over the raw body, a timestamp within five minutes
of our clock); this module acts on what verified. The same delivery twice (a replay) has no
second effect. A verified delivery is never trusted for the result itself: the job is polled
once (`jobs.refresh_status`), which records what the provider says and queues the finishing
step. Polling stays as the backstop for lost or refused webhooks.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from studio import jobs
from studio.models import Job, WebhookDelivery
from studio.providers.base import job_id_in
from studio.providers.webhooks import Delivery

log = logging.getLogger(__name__)

# Deliveries are remembered well past the window: a replay older than that is stale anyway.
REMEMBER = timedelta(hours=1)


def deliver(delivery: Delivery) -> None:
    """Act on a verified delivery: once per delivery, poll its job (which finishes it)."""
    if not _first_time(delivery):
        log.info("%s webhook %s came again; ignored", delivery.provider, delivery.delivery_id)
        return
    job = job_for(delivery)
    if job is None:
        log.info(
            "%s webhook %s is for no job Studio is waiting on; ignored",
            delivery.provider,
            delivery.delivery_id,
        )
        return
    log.info("%s webhook for job %s: checking it now", delivery.provider, job.pk)
    jobs.refresh_status(job)


def _first_time(delivery: Delivery) -> bool:
    _, created = WebhookDelivery.objects.get_or_create(
        provider=delivery.provider, delivery_id=delivery.delivery_id, signature=delivery.signature
    )
    return created


def forget_old_deliveries() -> None:
    """Drop deliveries past REMEMBER. The follower does it once a step rather than each
    delivery doing it, so a burst of webhooks does not add a delete to every one."""
    WebhookDelivery.objects.filter(received_at__lt=timezone.now() - REMEMBER).delete()


def job_for(delivery: Delivery) -> Job | None:
    """The job at the delivery's provider that it names: by Studio's own reference where the
    provider echoed it, else by the provider's job id."""
    waiting = Job.objects.at_provider().filter(provider=delivery.provider)
    if delivery.reference:
        return waiting.filter(pk=job_id_in(delivery.reference)).first()
    named = Q(provider_job_id__in=delivery.job_ids)
    for ending in delivery.job_id_endings:
        named |= Q(provider_job_id__endswith=ending)
    if not delivery.job_ids and not delivery.job_id_endings:
        return None
    return waiting.filter(named).first()

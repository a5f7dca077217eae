"""How the creator's pages word a job's details."""

from django import template

from studio.models import Job
from studio.providers.registry import LABELS, capabilities_of

register = template.Library()


@register.filter
def seed_text(job: Job) -> str:
    """The seed as the creator reads it: the number (and who picked it), or why there is none."""
    if job.seed is None:
        if job.provider in LABELS and not capabilities_of(job.provider).seed:
            return f"none: {job.provider_label} takes no seed"
        return "none"
    return f"{job.seed} (picked by Studio)" if job.seed_drawn else str(job.seed)

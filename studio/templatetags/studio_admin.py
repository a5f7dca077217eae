"""What the admin's index shows besides its models: each provider's last health check."""

from typing import Any

from django import template

from studio.models import ProviderStatus
from studio.providers.registry import LABELS

register = template.Library()


@register.inclusion_tag("admin/studio/provider_health.html")
def provider_health() -> dict[str, Any]:
    statuses = {status.provider: status for status in ProviderStatus.objects.all()}
    return {
        "rows": [
            {"name": name, "label": label, "status": statuses.get(name)}
            for name, label in LABELS.items()
        ]
    }

"""The create page's options panel: for the options chosen so far, what the provider can make,
what it would refuse (with one-click fixes), the price, the meter, and every provider's
price for the same clip. The page asks for it on every change (views.options).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings

from studio import pricing, quotas
from studio.options import ClipOptions
from studio.providers.capabilities import Problem, adapt, preflight
from studio.providers.registry import LABELS, capabilities_of, provider_class
from studio.web.forms import JobForm


def context(form: JobForm, *, switched_from: str = "") -> dict[str, Any]:
    """The panel's template context for `form` (bound and cleaned, or unbound).

    When the creator just switched provider (`switched_from` names the one the panel was
    drawn for), the options are adapted to the new one, keeping every choice it can make,
    and `apply` tells the page which fields to change."""
    provider = str(form.data.get("provider", "")) if form.is_bound else _initial_provider(form)
    meter = quotas.meter(form.creator)
    if provider not in LABELS:
        return {
            "meter": meter,
            "estimate": None,
            "problems": [],
            "prices": [],
            "provider": provider,
        }
    form.limit_to(provider)
    chosen = form.options
    changes: dict[str, Any] = {}
    if switched_from and switched_from != provider:
        adapted = adapt(chosen, capabilities_of(provider))
        changes = adapted.changes_from(chosen)
        chosen = adapted
    estimate = _price(provider, chosen) if _priceable(form) else None
    return {
        "meter": meter,
        "provider": provider,
        "free": provider_class(provider).free,
        "chosen": chosen,
        "estimate": estimate,
        "batch": _batch(form, provider, chosen) if estimate is not None else None,
        "problems": [*preflight(capabilities_of(provider), chosen), *_count_problems(form)],
        "prices": [
            {
                "name": name,
                "label": label,
                "unavailable": form.unavailable.get(name, ""),
                "price": _price(name, adapt(chosen, capabilities_of(name))),
            }
            for name, label in LABELS.items()
        ],
        # The page applies these to its own fields, which are never replaced under the creator.
        "apply": json.dumps(changes),
        "disabled": json.dumps(form.disabled_choices()),
    }


def _count_problems(form: JobForm) -> list[Problem]:
    """A batch too big to make, in the form's words: the panel prices one clip meanwhile."""
    if not form.is_bound:
        return []
    return [
        Problem(name, str(message))
        for name in ("copies", "more_prompts")
        for message in form.errors.get(name, ())
    ]


def _initial_provider(form: JobForm) -> str:
    return str(form.fields["provider"].initial)


def _priceable(form: JobForm) -> bool:
    """Whether the length and resolution were chosen from those offered (a value the page
    never offers is explained by the form, and priced by nobody)."""
    return not (
        form.is_bound
        and (
            form.has_error("duration", "invalid_choice")
            or form.has_error("resolution", "invalid_choice")
        )
    )


def _price(provider: str, options: ClipOptions) -> Decimal | None:
    try:
        return pricing.quote(provider, options).cost
    except pricing.UnknownPrice:
        return None


def _batch(form: JobForm, provider: str, chosen: ClipOptions) -> dict[str, Any] | None:
    """How many clips the variations make and what they cost together, when more than one."""
    count = form.batch_size(chosen)
    if count == 1:
        return None
    if count > settings.STUDIO_MAX_BATCH:  # refused at submit, with the count
        return {"count": count, "total": None}
    made = form.variations_of(chosen, seeded=False)
    prices = [_price(provider, options) for options in made]
    total = None if None in prices else sum(price for price in prices if price is not None)
    return {"count": len(made), "total": total}

"""The create page's options panel: for the options chosen so far, what the provider can make,
what it would refuse (with one-click fixes), the one price, what is left this month, and the
same clip at every provider. The page asks for it on every change (views.options).

One price function (pricing.quote) gives every figure: the estimate, the batch's total and
each provider's row price exactly the options as chosen, never an adapted copy.
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

# The camera moves the create page offers as chips: each writes one phrase into the prompt,
# which every provider reads and the local renderer moves by (renderer.motion_for_prompt).
CAMERA_MOVES = (
    ("Push in", "Slow push in."),
    ("Pull out", "Slow pull out."),
    ("Pan left", "Camera pans left."),
    ("Pan right", "Camera pans right."),
    ("Tilt up", "Camera tilts up."),
    ("Tilt down", "Camera tilts down."),
    ("Orbit", "Camera orbits around the subject."),
    ("Static", "Static camera, locked off."),
    ("Handheld", "Handheld camera, gentle sway."),
)


def camera_moves() -> list[dict[str, str]]:
    return [{"label": label, "phrase": phrase} for label, phrase in CAMERA_MOVES]


def context(form: JobForm, *, switched_from: str = "", panel_only: bool = False) -> dict[str, Any]:
    """The panel's template context for `form` (bound and cleaned, or unbound).

    A provider switch keeps every value: what the new provider cannot make stays as it is,
    explained and marked, with its one-click fix (and `apply` stays empty: nothing changes
    under the creator)."""
    provider = str(form.data.get("provider", "")) if form.is_bound else _initial_provider(form)
    meter = quotas.meter(form.creator)
    base = {"meter": meter, "panel_only": panel_only, "apply": "{}"}
    if provider not in LABELS:
        return {**base, "estimate": None, "problems": [], "prices": [], "provider": provider}
    form.limit_to(provider)
    chosen = form.options
    caps = capabilities_of(provider)
    problems = preflight(caps, chosen)
    too_many = _count_problems(form)
    # Several fixes at once, as one more button: everything the provider would change.
    fix_all = (
        adapt(chosen, caps).changes_from(chosen) if sum(bool(p.fix) for p in problems) > 1 else {}
    )
    unavailable = form.unavailable.get(provider, "")
    costs = pricing.costs(chosen)
    estimate = costs.get(provider) if _priceable(form) and not problems else None
    batch = _batch(form, provider, chosen) if estimate is not None and not too_many else None
    label = LABELS[provider]
    return {
        **base,
        "provider": provider,
        "provider_label": label,
        "free": provider_class(provider).free,
        "chosen": chosen,
        "estimate": estimate,
        "batch": batch,
        "problems": problems,
        "too_many": too_many,
        "fix_all": json.dumps(fix_all) if fix_all else "",
        "blocked": _blocked(label, unavailable, problems, too_many, estimate, batch, chosen, meter),
        "seed_note": _seed_note(label, caps.seed),
        "prices": [_row(form, name, chosen, costs.get(name)) for name in LABELS],
        "disabled": json.dumps(form.disabled_choices()),
        "switched": bool(switched_from and switched_from != provider),
    }


def _row(form: JobForm, name: str, chosen: ClipOptions, cost: Decimal | None) -> dict[str, Any]:
    """One provider's row: the price of exactly this clip there, or why it cannot make it."""
    found = preflight(capabilities_of(name), chosen)
    return {
        "name": name,
        "label": LABELS[name],
        "unavailable": form.unavailable.get(name, ""),
        "cannot": found[0].message if found else "",
        "price": None if found else cost,
    }


def _blocked(
    label: str,
    unavailable: str,
    problems: list[Problem],
    too_many: list[Problem],
    estimate: Decimal | None,
    batch: dict[str, Any] | None,
    chosen: ClipOptions,
    meter: quotas.Meter,
) -> str:
    """Why Generate is off now, in one line, or "" when it is on."""
    if unavailable:
        return f"{label} is not available: {unavailable.rstrip('.')}."
    if meter.limits.suspended:
        return "Your account is suspended; ask the studio's admin."
    if problems:
        return f"Fix what {label} can't make first."
    if too_many:
        return too_many[0].message
    if estimate is None:
        return ""
    count = batch["count"] if batch else 1
    cost = batch["total"] if batch and batch["total"] is not None else estimate
    seconds = chosen.duration * count
    clips = "This clip" if count == 1 else f"These {count} clips"
    if cost > meter.usd_left:
        verb = "costs" if count == 1 else "cost"
        return f"{clips} {verb} ${cost}; ${meter.usd_left:.2f} is left this month."
    seconds_left = max(0, meter.limits.monthly_seconds - meter.seconds)
    if seconds > seconds_left:
        verb = "is" if count == 1 else "are"
        return f"{clips} {verb} {seconds} s; {seconds_left} s of video is left this month."
    return ""


def _seed_note(label: str, takes_seed: bool) -> str:
    if takes_seed:
        return (
            f"{label}: the same seed makes the same clip. Left empty, Studio picks one and "
            "shows it on the job, so a clip you like can be made again."
        )
    return f"{label} takes no seed, so each clip differs."


def _count_problems(form: JobForm) -> list[Problem]:
    """A batch too big to make, in the form's words: the panel prices one clip meanwhile
    and says so beside the price, not among what the provider can't make."""
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

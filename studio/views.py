"""Pages. Thin function views; every lookup starts from the signed-in creator, so another
creator's ids are simply not found."""

import json
import logging
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from studio import images, jobs, media, pricing, quotas, webhooks
from studio.forms import JobForm, still_bytes, variations
from studio.models import Clip, Job, SourceImage
from studio.providers import PROVIDERS
from studio.providers.capabilities import OPTION_FIELDS, adapt, capabilities_of, preflight

log = logging.getLogger(__name__)

GALLERY_PAGE_SIZE = 24
# htmx stops polling when it gets this status (and still swaps the body in).
HTMX_STOP_POLLING = 286


@login_required
@require_http_methods(["GET", "POST"])
def create(request):
    if request.method == "POST":
        form = JobForm(request.POST, request.FILES, creator=request.user)
        made = form.save() if form.is_valid() else []
        for note in form.warnings if made else ():
            messages.warning(request, note)
        if len(made) == 1:
            return redirect("job", job_id=made[0].pk)
        if made:
            return redirect("batch", batch=made[0].batch)
    else:
        form = JobForm(creator=request.user)
    context = {"form": form, "stills": _stills_kept(request, form), **_options(request, form)}
    return render(request, "create.html", context)


@login_required
@require_GET
def options(request):
    """The options panel for the choices so far: what the provider can make, what it would
    refuse (with one-click fixes), the price, and every provider's price side by side."""
    values = request.GET.copy()
    provider = values.get("provider", "")
    switched_from = values.get("rendered_for")
    changes = {}
    if provider in PROVIDERS and switched_from and switched_from != provider:
        # Keep the creator's choices where the new provider can make them.
        before = _chosen(values)
        adapted = adapt(before, capabilities_of(provider))
        changes = {name: value for name, value in adapted.items() if value != before[name]}
        for name, value in changes.items():
            _put(values, name, value)
    form = JobForm(values, creator=request.user)
    context = _options(request, form)
    # The page applies these to its own fields, which are never replaced under the creator.
    context["apply"] = json.dumps(changes)
    context["disabled"] = json.dumps(form.disabled_choices())
    return render(request, "create.html#options", context)


def _options(request, form: JobForm) -> dict:
    values = form.data if form.is_bound else _initial(form)
    provider = values.get("provider", "")
    if provider not in PROVIDERS:
        return {
            "meter": quotas.meter(request.user),
            "estimate": None, "problems": [], "prices": [], "provider": provider,
        }  # fmt: skip
    form.limit_to(provider)
    chosen = _chosen(values)
    for role in ("image", "last_frame"):
        still_id = values.get(f"{role}_id")
        still = request.user.images.filter(pk=still_id).first() if str(still_id).isdigit() else None
        if still is not None:
            chosen[f"{role}_bytes"] = still_bytes(still)
    estimate = _price(provider, chosen)
    return {
        "meter": quotas.meter(request.user),
        "provider": provider,
        "chosen": chosen,
        "estimate": estimate,
        "batch": _batch(values, provider, chosen) if estimate is not None else None,
        "problems": preflight(provider, chosen),
        "prices": [
            {
                "name": name,
                "label": cls.label,
                "unavailable": form.unavailable.get(name, ""),
                "price": _price(name, adapt(chosen, cls.capabilities)),
            }
            for name, cls in PROVIDERS.items()
        ],
    }


def _initial(form: JobForm) -> dict:
    values = {
        name: field.initial for name, field in form.fields.items() if field.initial is not None
    }
    values["audio"] = "on" if values.get("audio") else ""
    return values


def _chosen(values) -> dict:
    """The options as pre-flight reads them, from the form's raw values (invalid ones: None,
    for the form's own messages to explain)."""
    duration = str(values.get("duration", ""))

    def allowed(name: str, choices):
        value = values.get(name)
        return value if value in choices else None

    return {
        "mode": allowed("mode", Job.Mode.values) or Job.Mode.IMAGE,
        "duration": int(duration) if duration in {str(d) for d in Job.DURATIONS} else None,
        "resolution": allowed("resolution", Job.Resolution.values),
        "aspect": allowed("aspect", Job.Aspect.values),
        "audio": bool(values.get("audio")),
        "seed": values.get("seed") or None,
        "negative_prompt": values.get("negative_prompt", ""),
    }


def _put(values, name: str, value) -> None:
    if name == "audio":
        values[name] = "on" if value else ""
    elif name in OPTION_FIELDS:
        values[name] = "" if value is None else str(value)


def _price(provider: str, chosen: dict):
    if chosen.get("duration") is None or not chosen.get("resolution"):
        return None
    try:
        return pricing.estimate(
            provider=provider,
            mode=chosen["mode"],
            resolution=chosen["resolution"],
            audio=chosen["audio"],
            seconds=chosen["duration"],
        )
    except pricing.UnknownPrice:
        return None


def _batch(values, provider: str, chosen: dict) -> dict | None:
    """How many clips the variations make and what they cost together, when more than one."""
    copies = str(values.get("copies") or "1")
    more = values.getlist("more_durations") if hasattr(values, "getlist") else []
    made = variations(
        prompt="",
        duration=chosen["duration"],
        seed=None,
        copies=int(copies) if copies.isdigit() and int(copies) > 0 else 1,
        more_prompts=values.get("more_prompts", ""),
        more_durations=[int(d) for d in more if d.isdigit() and int(d) in Job.DURATIONS],
        seeded=False,
    )
    if len(made) == 1:
        return None
    prices = [_price(provider, {**chosen, "duration": v["duration"]}) for v in made]
    return {"count": len(made), "total": None if None in prices else sum(prices)}


def _stills_kept(request, form: JobForm) -> dict:
    """Stills already uploaded, shown again when the form comes back with an error."""
    kept = {}
    for role in ("image", "last_frame"):
        pk = form[f"{role}_id"].value() if form.is_bound else None
        if pk and str(pk).isdigit():
            kept[role] = request.user.images.filter(pk=pk).first()
    return kept


@login_required
@require_POST
def upload_still(request, role: str):
    """Check and store one still the moment it is chosen; answer with its preview."""
    if role not in ("image", "last_frame"):
        raise Http404
    context = {"role": role}
    upload = request.FILES.get(role)
    if upload is None:
        context["error"] = "Choose an image file."
    else:
        try:
            normalised = images.normalise(upload, size=upload.size)
        except images.ImageRejected as exc:
            context["error"] = str(exc)
        else:
            context["still"] = images.store(request.user, normalised)
            context["warnings"] = normalised.warnings
    return render(request, "create.html#still", context)


@login_required
@require_GET
def padded_preview(request, image_id: int):
    """The still padded to an aspect, exactly as it will be stored and sent."""
    still = get_object_or_404(request.user.images, pk=image_id)
    aspect = request.GET.get("aspect", Job.Aspect.AUTO)
    if aspect not in Job.Aspect.values:
        raise Http404
    size = (still.width, still.height)
    ratio = images.target_ratio(aspect, size)
    picture = images.open_image(still.file.name)
    if not images.fits_ratio(size, ratio):
        picture = images.pad(picture, ratio)
    response = HttpResponse(images.encode(picture), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
@vary_on_headers("HX-Request")
def job_detail(request, job_id: int):
    job = get_object_or_404(request.user.jobs.select_related("clip", "image"), pk=job_id)
    if request.htmx:
        status = HTMX_STOP_POLLING if job.is_terminal else 200
        return render(request, "job.html#status", {"job": job}, status=status)
    return render(request, "job.html", {"job": job})


@login_required
@require_GET
@vary_on_headers("HX-Request")
def batch_detail(request, batch):
    """The clips one request made, as they come in."""
    batch_jobs = list(request.user.jobs.filter(batch=batch).select_related("clip").order_by("pk"))
    if not batch_jobs:
        raise Http404
    context = {
        "batch": batch,
        "jobs": batch_jobs,
        "total": sum(job.estimated_cost for job in batch_jobs),
        "done": all(job.is_terminal for job in batch_jobs),
    }
    if request.htmx:
        status = HTMX_STOP_POLLING if context["done"] else 200
        return render(request, "batch.html#list", context, status=status)
    return render(request, "batch.html", context)


@login_required
@require_POST
def job_cancel(request, job_id: int):
    job = get_object_or_404(request.user.jobs, pk=job_id)
    if jobs.cancel(job):
        messages.info(request, "The job was cancelled.")
    else:
        messages.warning(
            request, f"The job is {job.get_status_display().lower()}; it cannot be cancelled now."
        )
    return redirect("job", job_id=job.pk)


@login_required
@require_GET
def gallery(request):
    clips = Paginator(
        Clip.objects.filter(job__creator=request.user).select_related("job"), GALLERY_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    unfinished = request.user.jobs.exclude(status=Job.Status.SUCCEEDED)[:20]
    return render(request, "gallery.html", {"clips": clips, "unfinished": unfinished})


def _own_clip(request, clip_id: int) -> Clip:
    return get_object_or_404(
        Clip.objects.filter(job__creator=request.user).select_related("job"), pk=clip_id
    )


@login_required
@require_GET
def clip_detail(request, clip_id: int):
    return render(request, "clip.html", {"clip": _own_clip(request, clip_id)})


@login_required
@require_POST
def clip_delete(request, clip_id: int):
    jobs.delete_clip(_own_clip(request, clip_id))
    messages.info(request, "The clip was deleted.")
    return redirect("gallery")


@login_required
@require_http_methods(["GET", "HEAD"])
def clip_video(request, clip_id: int):
    clip = _own_clip(request, clip_id)
    download = clip.download_name if "download" in request.GET else None
    return media.serve(request, clip.file.name, "video/mp4", download_name=download)


@login_required
@require_http_methods(["GET", "HEAD"])
def clip_poster(request, clip_id: int):
    return media.serve(request, _own_clip(request, clip_id).poster.name, "image/jpeg")


@login_required
@require_http_methods(["GET", "HEAD"])
def source_image(request, image_id: int):
    image = get_object_or_404(SourceImage.objects.filter(owner=request.user), pk=image_id)
    return media.serve(request, image.file.name, image.content_type)


@require_GET
def favicon(request):
    # Resolved per request: the static manifest may not exist yet when URLs are loaded.
    return redirect(static("favicon.svg"), permanent=True)


@require_GET
def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


# Providers' webhooks: no session and no CSRF token, so trust comes from the signature alone.


@csrf_exempt
@require_POST
def fal_webhook(request):
    return _webhook(request, "fal", webhooks.verify_fal)


@csrf_exempt
@require_POST
def gemini_webhook(request):
    return _webhook(request, "gemini", webhooks.verify_gemini)


def _webhook(request, provider: str, verify: Callable[..., webhooks.Delivery]) -> HttpResponse:
    """Verify, then act; any 2xx tells the provider to stop retrying, so a delivery for no
    job of ours is answered 200 too."""
    try:
        delivery = verify(request.headers, request.body)
    except webhooks.Refused as refused:
        log.warning("refused a %s webhook: %s", provider, refused)
        return HttpResponse(str(refused), status=refused.status, content_type="text/plain")
    webhooks.deliver(delivery)
    return HttpResponse("ok", content_type="text/plain")

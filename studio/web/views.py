"""Pages. Thin function views; every lookup starts from the signed-in creator, so another
creator's ids are simply not found."""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from studio import exports, images, jobs, library, progress, sequences, webhooks
from studio.models import Clip, Job, SourceImage
from studio.options import Aspect
from studio.providers.registry import LABELS, get_provider
from studio.providers.webhooks import Refused
from studio.web import media, panel, tiles, uploads
from studio.web.forms import (
    JobForm,
    LibraryForm,
    NotificationsForm,
    SelectionForm,
    StillIdForm,
)

log = logging.getLogger(__name__)

# The library shows the newest few sequences above the grid.
SEQUENCES_SHOWN = 6
# htmx stops polling when it gets this status (and still swaps the body in).
HTMX_STOP_POLLING = 286


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's middleware (django-htmx's documented typing)."""

    htmx: HtmxDetails


class CreatorRequest(HtmxHttpRequest):
    """A request from a signed-in creator (every view below but the webhook is login_required)."""

    user: User


@login_required
@require_http_methods(["GET", "POST"])
def create(request: CreatorRequest) -> HttpResponse:
    if request.method == "POST":
        form = JobForm(
            request.POST, request.FILES, creator=request.user, refused=uploads.refused(request)
        )
        made = form.save() if form.is_valid() else []
        for note in form.warnings if made else ():
            messages.warning(request, note)
        if len(made) == 1:
            return redirect("job", job_id=made[0].pk)
        if made:
            return redirect("batch", batch=made[0].batch)
    else:
        form = _prefilled(request)
    context = {
        "open_variations": "variations" in request.GET,
        "form": form,
        "stills": form.kept_stills(),
        "camera_moves": panel.camera_moves(),
        "recent_prompts": _recent_prompts(request.user),
        **panel.context(form),
    }
    return render(request, "studio/create.html", context)


def _prefilled(request: CreatorRequest) -> JobForm:
    """The create form, empty, or filled with a job's recipe (`?recipe=N`: "Use these
    settings", with `&variations` "Make variations") or, with `&continue`, a new clip from
    its clip's last frame. Filled, it is checked at once, so what no longer fits (a provider
    gone, a limit) says so before Generate."""
    recipe = _id(request.GET.get("recipe", ""))
    if recipe is None:
        return JobForm(creator=request.user)
    job = get_object_or_404(request.user.jobs.select_related("clip"), pk=recipe)
    if "continue" in request.GET:
        clip = getattr(job, "clip", None)
        if clip is None or not clip.last_frame:
            raise Http404
        data = library.continue_data(clip)
    else:
        data = library.recipe_data(job)
    form = JobForm(data, creator=request.user)
    form.is_valid()
    return form


def _id(value: str) -> int | None:
    """A row id from a URL or form: ASCII digits only (str.isdigit takes "²" too)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def _recent_prompts(creator: User, count: int = 6) -> list[str]:
    """The creator's last few prompts, newest first, each once."""
    seen: dict[str, None] = {}
    for prompt in creator.jobs.order_by("-created_at").values_list("prompt", flat=True)[:50]:
        seen.setdefault(prompt.strip(), None)
        if len(seen) == count:
            break
    return [prompt for prompt in seen if prompt]


@login_required
@require_GET
def options(request: CreatorRequest) -> HttpResponse:
    """The options panel for the choices so far (studio/web/panel.py)."""
    form = JobForm(request.GET, creator=request.user)
    form.is_valid()  # the panel explains problems its own way; the form's words come at submit
    context = panel.context(
        form, switched_from=request.GET.get("rendered_for", ""), panel_only=True
    )
    return render(request, "studio/create.html#options", context)


@login_required
@require_POST
def upload_still(request: CreatorRequest, role: str) -> HttpResponse:
    """Check and store one still the moment it is chosen; answer with its preview."""
    if role not in ("image", "last_frame"):
        raise Http404
    context: dict[str, object] = {"role": role}
    upload = request.FILES.get(role)
    refused = uploads.refused(request)
    if role in refused or upload is None:
        context["error"] = refused.get(role, "Choose an image file.")
        return render(request, "studio/create.html#still", context)
    try:
        normalised = images.normalise(upload, size=upload.size or 0)
        first = _first_frame(request)
        if role == "last_frame" and first is not None:
            # Said at upload, not only at Generate: the last frame must match the first.
            images.check_last_frame(first, normalised)
    except images.ImageRejected as exc:
        context["error"] = str(exc)
    else:
        context["still"] = images.store(request.user, normalised)
        context["warnings"] = normalised.warnings
    return render(request, "studio/create.html#still", context)


def _first_frame(request: CreatorRequest) -> SourceImage | None:
    """The image already chosen on the page, sent along with a last frame's upload."""
    form = StillIdForm(request.POST)
    if not form.is_valid() or form.cleaned_data["image_id"] is None:
        return None
    return request.user.images.filter(pk=form.cleaned_data["image_id"]).first()


@login_required
@require_GET
def padded_preview(request: CreatorRequest, image_id: int) -> HttpResponse:
    """The still padded to an aspect, exactly as it will be stored and sent."""
    still = get_object_or_404(request.user.images, pk=image_id)
    aspect = request.GET.get("aspect", Aspect.AUTO)
    if aspect not in Aspect.values:
        raise Http404
    size = (still.width, still.height)
    ratio = images.target_ratio(aspect, size)
    picture = images.open_image(still.file.name)
    if not images.fits_ratio(size, ratio):
        picture = images.pad(picture, ratio)
    response = HttpResponse(images.encode(picture), content_type=media.Kind.JPEG.value)
    response["Cache-Control"] = "private, max-age=3600"
    media.sandboxed(response)
    return response


@login_required
@require_GET
@vary_on_headers("HX-Request")
def job_detail(request: CreatorRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(request.user.jobs.select_related("clip", "image"), pk=job_id)
    context = {
        "job": job,
        "progress": progress.of(job),
        "cancel_terms": jobs.cancel_terms(job) if job.can_cancel else "",
        "cancel_note": jobs.cancel_note(job),
    }
    if request.htmx:
        status = HTMX_STOP_POLLING if job.is_terminal else 200
        return render(request, "studio/job.html#live", context, status=status)
    return render(request, "studio/job.html", context)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def batch_detail(request: CreatorRequest, batch: uuid.UUID) -> HttpResponse:
    """The clips one request made, as they come in."""
    batch_jobs = list(request.user.jobs.filter(batch=batch).select_related("clip").order_by("pk"))
    if not batch_jobs:
        raise Http404
    where = progress.of_jobs(batch_jobs)
    for job in batch_jobs:
        job.where = where[job.pk]
    context = {
        "batch": batch,
        "jobs": batch_jobs,
        "total": sum(job.estimated_cost for job in batch_jobs),
        "done": all(job.is_terminal for job in batch_jobs),
        "finished": sum(job.is_terminal for job in batch_jobs),
        "made": sum(job.status == Job.Status.SUCCEEDED for job in batch_jobs),
    }
    if request.htmx:
        status = HTMX_STOP_POLLING if context["done"] else 200
        return render(request, "studio/batch.html#list", context, status=status)
    return render(request, "studio/batch.html", context)


@login_required
@require_POST
def job_cancel(request: CreatorRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(request.user.jobs, pk=job_id)
    if said := jobs.cancel(job):
        messages.info(request, said)
    else:
        messages.warning(
            request, f"The job is {job.get_status_display().lower()}; it cannot be cancelled now."
        )
    return redirect("job", job_id=job.pk)


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def notification_settings(request: CreatorRequest) -> HttpResponse:
    """Whether the creator is e-mailed when a clip or batch is ready: a page of its own, or
    its form as a partial (`studio/notifications.html#form`) that other pages place. After
    a plain POST it goes back to `next` (a page of this site) or to itself."""
    back = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = ""
    saved = ""
    if request.method == "POST":
        form = NotificationsForm(request.POST, creator=request.user)
        if form.is_valid():
            saved = (
                "You will get an e-mail when a clip or batch is ready."
                if form.save().email_when_ready
                else "You will not get e-mails about your clips."
            )
            if not request.htmx:
                messages.success(request, saved)
                return redirect(back or "notification_settings")
            form = NotificationsForm(creator=request.user)
    else:
        form = NotificationsForm(creator=request.user)
    context = {"notifications_form": form, "next": back, "saved": saved}
    if request.htmx:
        return render(request, "studio/notifications.html#form", context)
    return render(request, "studio/notifications.html", context)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def library_page(request: CreatorRequest) -> HttpResponse:
    """The creator's library: a page of the grid, filtered by the URL. htmx asks for the
    grid alone when a filter changes, and for the next tiles as the creator scrolls."""
    form = LibraryForm(request.GET)
    filters = form.filters()
    older_than = form.cursor()
    found = library.page(request.user, filters, older_than=older_than)
    context = {
        "form": form,
        "filters": filters,
        "page": found,
        "tiles_html": tiles.render(found.tiles),
        "older_url": _older_url(request, found.older_than),
    }
    if request.htmx and older_than:
        return render(request, "studio/library.html#tiles", context)
    if request.htmx and request.htmx.target == "results":
        return render(request, "studio/library.html#results", context)
    context["tray"] = library.tray(request.user)
    context["sequences"] = list(request.user.sequences.all()[:SEQUENCES_SHOWN])
    return render(request, "studio/library.html", context)


def _older_url(request: CreatorRequest, older_than: int | None) -> str:
    if older_than is None:
        return ""
    query = request.GET.copy()
    query["older_than"] = str(older_than)
    return f"?{query.urlencode()}"


@login_required
@require_POST
def job_retry(request: CreatorRequest, job_id: int) -> HttpResponse:
    """Try a failed or cancelled job again, one of the ways the tray offers: through the
    create form, so with the same checks, price and reservation as a new job."""
    job = get_object_or_404(request.user.jobs.filter(status__in=library.ENDED_BADLY), pk=job_id)
    changes = library.retry_changes(job, request.POST.get("how", ""))
    if changes is None:
        raise Http404
    form = JobForm(library.recipe_data(job, **changes), creator=request.user)
    made = form.save() if form.is_valid() else []
    if not made:
        problems = [str(e) for errors in form.errors.values() for e in errors]
        messages.error(request, "This retry could not be made: " + " ".join(problems))
        return redirect("library")
    library.dismiss(request.user, [job.pk])
    return redirect("job", job_id=made[0].pk)


@login_required
@require_POST
def tray_dismiss(request: CreatorRequest) -> HttpResponse:
    """Put away one job from the tray (`job`), or all of them."""
    job_id = _id(request.POST.get("job", ""))
    library.dismiss(request.user, [job_id] if job_id is not None else None)
    if request.htmx:
        return render(request, "studio/library.html#tray", {"tray": library.tray(request.user)})
    return redirect("library")


@login_required
@require_POST
def clip_favourite(request: CreatorRequest, clip_id: int) -> HttpResponse:
    clip = _own_clip(request, clip_id)
    clip.favourite = request.POST.get("favourite") == "on"
    clip.save(update_fields=["favourite"])
    if request.htmx:
        star = tiles.star(request.path, clip.favourite)
        return render(request, "studio/library.html#star", {"star": star})
    return redirect(_back(request) or "library")


@login_required
@require_POST
def library_export(request: CreatorRequest) -> HttpResponseBase:
    """The chosen clips as one ZIP, streamed as it is written (studio/exports.py)."""
    form = SelectionForm(request.POST, creator=request.user)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("clip", ())))
        return redirect(_back(request) or "library")
    clips = exports.clips_for_export(
        Clip.objects.filter(job__creator=request.user, pk__in=form.cleaned_data["clip"])
    )
    if not clips:
        raise Http404
    response = StreamingHttpResponse(exports.stream(clips), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{exports.archive_name(len(clips))}"'
    media.sandboxed(response)
    return response


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def sequence_new(request: CreatorRequest) -> HttpResponse:
    """The film before it is made: its clips in order (moved by drag, or by the buttons from
    the keyboard), a cut or crossfade before each, the length and what will change. The
    state is the URL (`?clip=…&fade=…`); the library's selection arrives as a POST and is
    sent on to it, so no CSRF token ends up in an address."""
    source = request.POST if request.method == "POST" else request.GET
    ids = [pk for value in source.getlist("clip") if (pk := _id(value)) is not None]
    if request.method == "POST":
        ids.reverse()  # the library lists newest first; a film tells them in the order made
    fades = [_fade(value) for value in source.getlist("fade")]
    # One fade a clip (into it; the first's is none); clips from the library get a
    # half-second crossfade each.
    fades = fades[: len(ids)] + [0.5] * (len(ids) - len(fades))
    ids, fades = _rearranged(ids, fades, source.get("move", ""))
    fades[:1] = [0.0] * min(1, len(fades))
    query = QueryDict(mutable=True)
    query.setlist("clip", [str(pk) for pk in ids])
    query.setlist("fade", [f"{fade:g}" for fade in fades])
    canonical = f"{reverse('sequence_new')}?{query.urlencode()}"
    if request.method == "POST" or ("move" in source and not request.htmx):
        return redirect(canonical)
    error = ""
    planned = None
    try:
        planned = sequences.plan(request.user, ids, fades)
    except sequences.SequenceRefused as exc:
        error = str(exc)
    context = {
        "planned": planned,
        "error": error,
        "rows": list(zip(planned.clips, planned.fades, strict=True)) if planned else [],
        "choices": [(0.0, "Cut"), *((f, f"Crossfade {f:g} s") for f in sequences.FADES)],
        "query": query.urlencode(),
    }
    response = render(request, "studio/sequence_new.html", context)
    if request.htmx:
        response["HX-Push-Url"] = canonical
    return response


def _fade(value: str) -> float:
    try:
        fade = float(value) if value.isascii() else 0.0
    except ValueError:
        return 0.0
    return fade if fade in sequences.FADES else 0.0


def _rearranged(ids: list[int], fades: list[float], move: str) -> tuple[list[int], list[float]]:
    """`ids` and their fades after one `move`: "N:up", "N:down" or "N:remove"; each clip
    keeps the transition into it."""
    index_text, _, how = move.partition(":")
    index = _id(index_text)
    if index is None or index >= len(ids):
        return ids, fades
    pairs = list(zip(ids, fades, strict=True))
    if how == "remove":
        del pairs[index]
    elif how == "up" and index > 0:
        pairs[index - 1], pairs[index] = pairs[index], pairs[index - 1]
    elif how == "down" and index + 1 < len(pairs):
        pairs[index + 1], pairs[index] = pairs[index], pairs[index + 1]
    return [pk for pk, _ in pairs], [fade for _, fade in pairs]


@login_required
@require_POST
def sequence_create(request: CreatorRequest) -> HttpResponse:
    ids = [pk for value in request.POST.getlist("clip") if (pk := _id(value)) is not None]
    fades = [_fade(value) for value in request.POST.getlist("fade")]
    try:
        sequence = sequences.create(request.user, sequences.plan(request.user, ids, fades))
    except sequences.SequenceRefused as exc:
        messages.error(request, str(exc))
        return redirect("library")
    return redirect("sequence", sequence_id=sequence.pk)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def sequence_detail(request: CreatorRequest, sequence_id: int) -> HttpResponse:
    sequence = get_object_or_404(request.user.sequences, pk=sequence_id)
    context = {"sequence": sequence}
    if request.htmx:
        status = HTMX_STOP_POLLING if sequence.is_terminal else 200
        return render(request, "studio/sequence.html#live", context, status=status)
    return render(request, "studio/sequence.html", context)


@login_required
@require_http_methods(["GET", "HEAD"])
def sequence_video(request: CreatorRequest, sequence_id: int) -> HttpResponseBase:
    sequence = get_object_or_404(request.user.sequences, pk=sequence_id, status="succeeded")
    download = sequence.download_name if "download" in request.GET else None
    return media.serve(request, sequence.file.name, media.Kind.MP4, download_name=download)


@login_required
@require_http_methods(["GET", "HEAD"])
def sequence_poster(request: CreatorRequest, sequence_id: int) -> HttpResponseBase:
    sequence = get_object_or_404(request.user.sequences, pk=sequence_id, status="succeeded")
    return media.serve(request, sequence.poster.name, media.Kind.JPEG)


@login_required
@require_POST
def sequence_delete(request: CreatorRequest, sequence_id: int) -> HttpResponse:
    sequences.delete(get_object_or_404(request.user.sequences, pk=sequence_id))
    messages.info(request, "The sequence was deleted.")
    return redirect("library")


def _back(request: CreatorRequest) -> str:
    back = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return back if allowed else ""


def _own_clip(request: CreatorRequest, clip_id: int) -> Clip:
    return get_object_or_404(
        Clip.objects.filter(job__creator=request.user).select_related("job"), pk=clip_id
    )


@login_required
@require_GET
def clip_detail(request: CreatorRequest, clip_id: int) -> HttpResponse:
    clip = get_object_or_404(
        Clip.objects.filter(job__creator=request.user).select_related(
            "job__image", "job__last_frame"
        ),
        pk=clip_id,
    )
    star = tiles.star(reverse("clip_favourite", args=[clip.pk]), clip.favourite)
    context = {"clip": clip, "job": clip.job, "star": star}
    return render(request, "studio/clip.html", context)


@login_required
@require_POST
def clip_delete(request: CreatorRequest, clip_id: int) -> HttpResponse:
    jobs.delete_clip(_own_clip(request, clip_id))
    messages.info(request, "The clip was deleted.")
    return redirect("library")


@login_required
@require_http_methods(["GET", "HEAD"])
def clip_video(request: CreatorRequest, clip_id: int) -> HttpResponseBase:
    clip = _own_clip(request, clip_id)
    download = clip.download_name if "download" in request.GET else None
    return media.serve(request, clip.file.name, media.Kind.MP4, download_name=download)


@login_required
@require_http_methods(["GET", "HEAD"])
def clip_poster(request: CreatorRequest, clip_id: int) -> HttpResponseBase:
    return media.serve(request, _own_clip(request, clip_id).poster.name, media.Kind.JPEG)


@login_required
@require_http_methods(["GET", "HEAD"])
def source_image(request: CreatorRequest, image_id: int) -> HttpResponseBase:
    image = get_object_or_404(SourceImage.objects.filter(owner=request.user), pk=image_id)
    return media.serve(request, image.file.name, media.Kind.JPEG)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the static manifest may not exist yet when URLs are loaded.
    return redirect(static("favicon.svg"), permanent=True)


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str) -> HttpResponse:
    """A provider's webhook. No session and no CSRF token: trust comes from the signature
    alone, which the provider's own package verifies. Any 2xx tells the provider to stop
    retrying, so a delivery for no job of ours is answered 200 too."""
    if provider not in LABELS:
        raise Http404
    try:
        delivery = get_provider(provider).verify_webhook(request.headers, request.body)
    except Refused as refused:
        log.warning("refused a %s webhook: %s", provider, refused)
        return HttpResponse(str(refused), status=refused.status, content_type="text/plain")
    webhooks.deliver(delivery)
    return HttpResponse("ok", content_type="text/plain")

"""Pages. Thin function views; every lookup starts from the signed-in creator, so another
creator's ids are simply not found."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from studio import jobs, media, pricing
from studio.forms import JobForm, OptionsForm
from studio.models import Clip, Job, SourceImage

GALLERY_PAGE_SIZE = 24
# htmx stops polling when it gets this status (and still swaps the body in).
HTMX_STOP_POLLING = 286


@login_required
@require_http_methods(["GET", "POST"])
def create(request):
    if request.method == "POST":
        form = JobForm(request.POST, request.FILES)
        if form.is_valid():
            job = form.save(request.user)
            for note in form.warnings:
                messages.warning(request, note)
            return redirect("job", job_id=job.pk)
    else:
        form = JobForm()
    options = request.POST if request.method == "POST" else OptionsForm().initial_options()
    return render(request, "create.html", {"form": form, **_estimate(options)})


@login_required
@require_GET
def estimate(request):
    return render(request, "create.html#estimate", _estimate(request.GET))


def _estimate(data) -> dict:
    """The price the job will be stored with, for the options currently chosen."""
    options = OptionsForm(data)
    if not options.is_valid():
        return {"estimate": None, "options": None}
    opts = options.cleaned_data
    return {
        "estimate": pricing.estimate(
            provider=opts["provider"],
            resolution=opts["resolution"],
            audio=opts["audio"],
            seconds=opts["duration"],
        ),
        "options": opts,
    }


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
def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")

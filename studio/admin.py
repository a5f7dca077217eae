from django.contrib import admin, messages

from studio import jobs
from studio.models import Clip, Job, LocalRender, SourceImage


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "creator", "status", "provider", "mode", "duration", "resolution",
                    "estimated_cost", "created_at"]  # fmt: skip
    list_filter = ["status", "provider", "mode", "resolution"]
    search_fields = ["prompt", "creator__username", "provider_job_id"]
    raw_id_fields = ["creator", "image", "last_frame"]
    actions = ["cancel_jobs"]

    # Status changes only through the job engine (jobs.py), never by editing a row.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the selected jobs", permissions=["view"])
    def cancel_jobs(self, request, queryset):
        cancelled = sum(jobs.cancel(job) for job in queryset)
        skipped = queryset.count() - cancelled
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} job(s) had already finished or were saving their clip.",
                messages.WARNING,
            )  # fmt: skip


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "width",
        "height",
        "duration",
        "has_audio",
        "size_bytes",
        "created_at",
    ]
    raw_id_fields = ["job"]


@admin.register(SourceImage)
class SourceImageAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "width", "height", "created_at"]
    raw_id_fields = ["owner"]


@admin.register(LocalRender)
class LocalRenderAdmin(admin.ModelAdmin):
    list_display = ["id", "client_reference", "status", "progress", "heartbeat_at", "created_at"]
    list_filter = ["status"]

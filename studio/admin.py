from django.contrib import admin, messages

from studio import jobs
from studio.models import Clip, Job, LedgerEntry, LocalRender, Quota, SourceImage, Usage


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


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Limits per creator; empty fields use the site defaults (STUDIO_DEFAULT_* settings)."""

    list_display = ["creator", "monthly_budget", "monthly_seconds", "concurrent_jobs",
                    "suspended", "running_jobs"]  # fmt: skip
    list_filter = ["suspended"]
    search_fields = ["creator__username"]
    raw_id_fields = ["creator"]
    readonly_fields = ["running_jobs"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written only by studio/quotas.py; the admin looks, never edits."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Usage)
class UsageAdmin(ReadOnlyAdmin):
    list_display = ["creator", "month", "usd", "seconds"]
    list_filter = ["month"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "creator", "job", "kind", "usd", "seconds", "month", "reason"]
    list_filter = ["kind", "month"]

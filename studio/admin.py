from django.contrib import admin

from studio.models import Clip, Job, LocalRender, SourceImage


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "creator", "status", "provider", "mode", "duration", "resolution",
                    "estimated_cost", "created_at"]  # fmt: skip
    list_filter = ["status", "provider", "mode", "resolution"]
    search_fields = ["prompt", "creator__username", "provider_job_id"]
    raw_id_fields = ["creator", "image", "last_frame"]
    readonly_fields = ["provider_job_id", "provider_state", "result_url", "lease_until",
                       "next_check_at", "created_at", "updated_at", "submitted_at",
                       "finished_at"]  # fmt: skip


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

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from studio.admin import dashboard
from studio.web import views

urlpatterns = [
    path("", views.create, name="create"),
    path("options/", views.options, name="options"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("batches/<uuid:batch>/", views.batch_detail, name="batch"),
    path("library/", views.library_page, name="library"),
    path("library/tray/dismiss/", views.tray_dismiss, name="tray_dismiss"),
    path("library/export.zip", views.library_export, name="library_export"),
    # The library's old name, for bookmarks.
    path("gallery/", RedirectView.as_view(pattern_name="library", permanent=True), name="gallery"),
    path("jobs/<int:job_id>/retry/", views.job_retry, name="job_retry"),
    path("sequences/new/", views.sequence_new, name="sequence_new"),
    path("sequences/", views.sequence_create, name="sequence_create"),
    path("sequences/<int:sequence_id>/", views.sequence_detail, name="sequence"),
    path("sequences/<int:sequence_id>/video.mp4", views.sequence_video, name="sequence_video"),
    path("sequences/<int:sequence_id>/poster.jpg", views.sequence_poster, name="sequence_poster"),
    path("sequences/<int:sequence_id>/delete/", views.sequence_delete, name="sequence_delete"),
    path("settings/notifications/", views.notification_settings, name="notification_settings"),
    path("clips/<int:clip_id>/", views.clip_detail, name="clip"),
    path("clips/<int:clip_id>/delete/", views.clip_delete, name="clip_delete"),
    path("clips/<int:clip_id>/favourite/", views.clip_favourite, name="clip_favourite"),
    path("clips/<int:clip_id>/video.mp4", views.clip_video, name="clip_video"),
    path("clips/<int:clip_id>/poster.jpg", views.clip_poster, name="clip_poster"),
    path("images/<int:image_id>/", views.source_image, name="source_image"),
    path("images/<int:image_id>/padded.jpg", views.padded_preview, name="padded_preview"),
    path("images/upload/<str:role>/", views.upload_still, name="upload_still"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("webhooks/<str:provider>/", views.webhook, name="webhook"),
    path("healthz", views.health, name="health"),
    path("favicon.ico", views.favicon),
    # Before the admin's own URLs, which would answer 404 for it.
    path("admin/studio/dashboard/", dashboard.dashboard, name="admin_dashboard"),
    path("admin/", admin.site.urls),
]

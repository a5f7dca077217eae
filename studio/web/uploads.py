"""Limits on what a request may send, enforced while it arrives rather than after.

- `RequestSizeLimit` (middleware, before anything reads the body, CSRF included) refuses a
  request whose declared body is over STUDIO_MAX_REQUEST_BYTES at once, with 413: gunicorn
  then drains at most 64 KB of it and closes the connection, so a 300 MB body is never read.
- `StillSizeLimit` (the first upload handler) keeps at most STUDIO_MAX_UPLOAD_BYTES of any
  file: past that the file is dropped, its refusal noted for the view (`refused`), and the
  rest of its part discarded as it streams in (the request cap bounds how much that is), so
  the creator still gets the page's answer rather than a reset connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from studio import images

REQUEST_ENTITY_TOO_LARGE = 413
_REFUSED = "_studio_refused_uploads"


def refused(request: HttpRequest) -> dict[str, str]:
    """The file fields whose upload was dropped for its size, with what to tell the creator."""
    found: dict[str, str] = getattr(request, _REFUSED, {})
    return found


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


class StillSizeLimit(FileUploadHandler):
    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.STUDIO_MAX_UPLOAD_BYTES:
            if self.request is not None:
                notes = refused(self.request)
                notes[self.field_name] = images.over_the_limit()
                setattr(self.request, _REFUSED, notes)
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler keeps the file


class RequestSizeLimit:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0  # Django reads no body it cannot size
        most = settings.STUDIO_MAX_REQUEST_BYTES
        if size <= most:
            return None
        message = (
            f"This upload is {_megabytes(size)}; Studio takes at most {_megabytes(most)} at "
            f"once, and an image of at most {_megabytes(settings.STUDIO_MAX_UPLOAD_BYTES)}. "
            "Choose a smaller image."
        )
        match = request.resolver_match
        if (
            match
            and match.url_name == "upload_still"
            and kwargs.get("role") in ("image", "last_frame")
        ):
            # The create page's still slot, which the page swaps in (htmx-config: 413 swaps).
            context = {"role": kwargs["role"], "error": message}
            return render(
                request, "studio/create.html#still", context, status=REQUEST_ENTITY_TOO_LARGE
            )
        return render(request, "413.html", {"message": message}, status=REQUEST_ENTITY_TOO_LARGE)

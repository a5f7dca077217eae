"""Serving creators' files from storage, with HTTP Range support.

Django answers no Range requests for media, and Safari will not play an MP4 without
206 Partial Content; players also need ranges to seek. Callers check ownership first.

Only the kinds of file Studio writes are served, each as what its bytes are (never a type
stored beside it, which the admin or a bug could set): a file that is not what its view
serves is refused. Media go out with `nosniff` and a `sandbox` policy, so even a file that
got past that could not run as a page on Studio's origin.

In S3-compatible storage (STUDIO_STORAGE) the bytes are streamed through Studio too, rather
than redirecting to a presigned URL: the URL stays Studio's own, so a browser's cache keeps
working (a fresh signature per page would be a new URL every time), the owner is checked on
every request, and the object store need not be reachable from creators' browsers. A range
is asked of the store as a ranged GET (studio/storage.py).
"""

import enum
import logging
import re

from django.core.files.storage import default_storage
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)

from studio import storage

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


class Kind(enum.Enum):
    """What Studio writes, by its content type: stills and posters are JPEG, clips MP4."""

    JPEG = "image/jpeg"
    MP4 = "video/mp4"

    def is_what(self, head: bytes) -> bool:
        """Whether a file starting with `head` (its first 12 bytes) is of this kind."""
        if self is Kind.JPEG:
            return head.startswith(b"\xff\xd8\xff")
        return head[4:8] == b"ftyp"  # an ISO-BMFF file type box, as every MP4 starts


def sandboxed(response: HttpResponseBase) -> HttpResponseBase:
    """A media response that no browser sniffs or runs as a page."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


# ASCII digits only: \d also matches other scripts' digits, which are no byte position.
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.ASCII)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte positions of a single satisfiable range, else None.

    Raises ValueError when the header is well-formed but unsatisfiable (416). A header we
    do not understand (several ranges, other units) is ignored: the whole file is sent.
    """
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise ValueError("range not satisfiable")
    return start, end


def serve(
    request: HttpRequest, name: str, kind: Kind, download_name: str | None = None
) -> HttpResponseBase:
    size = default_storage.size(name)
    # The first bytes say what the file is (one small ranged GET from an object store).
    head = b"".join(storage.read_range(name, 0, min(12, size), 12))
    if not kind.is_what(head):
        log.warning("refused to serve %s: it is not %s", name, kind.value)
        raise Http404
    try:
        byte_range = parse_range(request.headers.get("Range", ""), size)
    except ValueError:
        refusal = HttpResponse(status=416)
        refusal["Content-Range"] = f"bytes */{size}"
        return sandboxed(refusal)
    start, end = byte_range or (0, size - 1)
    length = end - start + 1 if size else 0
    response = StreamingHttpResponse(
        storage.read_range(name, start, length, CHUNK) if request.method != "HEAD" else iter(()),
        status=206 if byte_range else 200,
        content_type=kind.value,
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Cache-Control"] = "private, max-age=3600"
    if download_name:
        response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return sandboxed(response)

"""Serving creators' files from storage, with HTTP Range support.

Django answers no Range requests for media, and Safari will not play an MP4 without
206 Partial Content; players also need ranges to seek. Callers check ownership first.

In S3-compatible storage (STUDIO_STORAGE) the bytes are streamed through Studio too, rather
than redirecting to a presigned URL: the URL stays Studio's own, so a browser's cache keeps
working (a fresh signature per page would be a new URL every time), the owner is checked on
every request, and the object store need not be reachable from creators' browsers. A range
is asked of the store as a ranged GET (studio/storage.py).
"""

import re

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from studio import storage

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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
    request: HttpRequest, name: str, content_type: str, download_name: str | None = None
) -> HttpResponseBase:
    size = default_storage.size(name)
    try:
        byte_range = parse_range(request.headers.get("Range", ""), size)
    except ValueError:
        refusal = HttpResponse(status=416)
        refusal["Content-Range"] = f"bytes */{size}"
        return refusal
    start, end = byte_range or (0, size - 1)
    length = end - start + 1 if size else 0
    response = StreamingHttpResponse(
        storage.read_range(name, start, length, CHUNK) if request.method != "HEAD" else iter(()),
        status=206 if byte_range else 200,
        content_type=content_type,
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Cache-Control"] = "private, max-age=3600"
    if download_name:
        response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return response

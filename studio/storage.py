"""What Studio needs of its media storage beyond Django's API: ranges and unfinished uploads.

Local disk (the default) and S3-compatible object storage (STUDIO_STORAGE=s3://bucket,
django-storages' S3Storage) both sit behind `default_storage`. An object store is told apart
by its bucket.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage


def _bucket() -> Any | None:
    """The boto3 Bucket of S3Storage, or None on local disk."""
    return getattr(default_storage, "bucket", None)


def read_range(name: str, start: int, length: int, chunk: int) -> Iterator[bytes]:
    """`length` bytes of the file from `start`, in pieces of at most `chunk`. From an object
    store this is one ranged GET, so a seek in a long clip never downloads all of it
    (S3Storage's own file object would)."""
    if length <= 0:
        return
    bucket = _bucket()
    if bucket is not None:
        answer = bucket.Object(name).get(Range=f"bytes={start}-{start + length - 1}")
        yield from answer["Body"].iter_chunks(chunk)
        return
    with default_storage.open(name, "rb") as f:
        f.seek(start)
        while length > 0:
            data = f.read(min(chunk, length))
            if not data:
                return
            length -= len(data)
            yield data


def local_path(name: str, copy_to: Path) -> Path:
    """The file as a path on this machine: where local storage keeps it, or (from an object
    store, which has no paths) a copy downloaded to `copy_to`."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        with default_storage.open(name, "rb") as src, open(copy_to, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
        return copy_to


def abort_unfinished_uploads(name: str) -> int:
    """Abort the multipart uploads of `name` still open at the object store; how many.

    An S3 object appears only once its upload completes, so a worker killed mid-upload
    leaves no half object; but a multipart upload (boto3 makes one for files over 8 MB) stays
    open, its parts stored and billed, until someone aborts it. Names are fixed per job and
    one step at a time holds a job, so an open upload of the name is a dead step's."""
    bucket = _bucket()
    if bucket is None:
        return 0
    aborted = 0
    for upload in bucket.multipart_uploads.filter(Prefix=name):
        if upload.object_key == name:
            upload.abort()
            aborted += 1
    return aborted

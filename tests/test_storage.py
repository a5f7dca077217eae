"""Media in S3-compatible object storage (STUDIO_STORAGE=s3://bucket), against a real S3 server:
moto's standalone server, the stack's in the PostgreSQL + Redis + S3 run, else one started
here. The rest of the suite runs on it too in that run (views, Range, deletion, the crash
suite's upload killed half-way)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from studio import jobs, storage
from tests import stack
from tests.test_views import finished_job

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def s3_endpoint():
    if os.environ.get("AWS_S3_ENDPOINT_URL"):
        yield os.environ["AWS_S3_ENDPOINT_URL"]
        return
    with stack.s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(settings, s3_endpoint, monkeypatch):
    """default_storage is S3Storage on a fresh bucket of the real server, for one test."""
    for name, value in stack.S3_KEY.items():
        monkeypatch.setenv(name, value)
    name = stack.fresh_bucket(s3_endpoint)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": stack.REGION,
                "default_acl": None,
                "file_overwrite": True,
            },
        },
    }
    client = stack.s3_client(s3_endpoint)

    def listed() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))

    def uploads() -> list[str]:
        found = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        return sorted(u["Key"] for u in found)

    return type(
        "Bucket", (), {"name": name, "client": client, "listed": listed, "uploads": uploads}
    )


def test_studio_storage_selects_s3_and_keeps_keys_out_of_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "storage-test-secret-" + "k" * 40,
        "STUDIO_STORAGE": "s3://clips-bucket",
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_SECRET_ACCESS_KEY": "never-in-settings",
    }
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.files.storage import storages\n"
        "print(type(storages['default']).__name__)\n"
        "print(settings.STORAGES['default']['OPTIONS']['bucket_name'])\n"
        "print('never-in-settings' in repr(settings.STORAGES))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["S3Storage", "clips-bucket", "False"]
    env["STUDIO_STORAGE"] = "gs://elsewhere"
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert "STUDIO_STORAGE must be s3://BUCKET" in ran.stderr


@pytest.mark.django_db
def test_ranges_are_streamed_from_the_object_store(signed_in, creator, bucket):
    clip = finished_job(creator).clip
    assert f"{clip.file.name}" in bucket.listed()
    url = reverse("clip_video", args=[clip.pk])
    whole = b"".join(signed_in.get(url).streaming_content)
    assert len(whole) == clip.size_bytes
    part = signed_in.get(url, headers={"Range": "bytes=1000-1999"})
    assert (part.status_code, part["Content-Range"]) == (206, f"bytes 1000-1999/{len(whole)}")
    assert b"".join(part.streaming_content) == whole[1000:2000]
    tail = signed_in.get(url, headers={"Range": "bytes=-7"})
    assert b"".join(tail.streaming_content) == whole[-7:]
    # Studio's own URL, cacheable in the browser: never a presigned link to the store.
    assert part["Cache-Control"] == "private, max-age=3600"
    assert "Location" not in part


def test_a_range_is_one_ranged_get_not_the_whole_object(bucket):
    content = bytes(range(256)) * 4096
    name = default_storage.save("clips/range-probe.bin", ContentFile(content))
    asked: list[str] = []
    events = default_storage.connection.meta.client.meta.events
    events.register(
        "before-call.s3.GetObject",
        lambda params, **_: asked.append(params.get("headers", {}).get("Range", "whole")),
    )
    assert b"".join(storage.read_range(name, 5000, 300, chunk=64)) == content[5000:5300]
    assert asked == ["bytes=5000-5299"]


@pytest.mark.django_db
def test_deleting_a_clip_removes_its_objects(creator, bucket, django_capture_on_commit_callbacks):
    job = finished_job(creator)
    names = sorted([job.clip.file.name, job.clip.poster.name])
    assert set(names) <= set(bucket.listed())
    with django_capture_on_commit_callbacks(execute=True):
        jobs.delete_clip(job.clip)
    assert not set(names) & set(bucket.listed())


def test_a_replaced_file_aborts_the_upload_a_killed_step_left_open(bucket, tmp_path):
    name = "clips/7/job-42.mp4"
    left_open = bucket.client.create_multipart_upload(Bucket=bucket.name, Key=name)
    bucket.client.upload_part(
        Bucket=bucket.name, Key=name, UploadId=left_open["UploadId"], PartNumber=1, Body=b"x" * 10
    )
    assert bucket.uploads() == [name]
    assert bucket.listed() == []  # an unfinished upload is no object: nothing half is visible
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(b"whole clip" * 1000)
    assert jobs.replace_file(name, mp4) == name
    assert bucket.uploads() == []
    assert bucket.listed() == [name]
    assert default_storage.size(name) == 10_000

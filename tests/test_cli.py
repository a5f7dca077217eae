import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse

from studio.models import Job, Quota
from studio.providers.registry import provider_classes
from tests.emulator import use_emulator
from tests.factories import make_creator, photo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo(db):
    return make_creator(settings.STUDIO_DEMO_USERNAME)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def assert_printed_clip(result: dict, job: Job) -> None:
    """`clip` is the file's path on local disk, its name in object storage (STUDIO_STORAGE)."""
    name = job.clip.file.name
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:
        assert result["clip"] == name
    else:
        assert result["clip"] == str(path) and path.is_file()
    assert default_storage.size(name) == job.clip.size_bytes


@pytest.mark.django_db(transaction=True)
def test_generate_wait_prints_the_finished_job(tmp_path, capsys, tasks_inline):
    make_creator(settings.STUDIO_DEMO_USERNAME)
    image = write(tmp_path, "hill.jpg", photo(1280, 720))
    call_command(
        "generate", image, "--prompt", "tilt up to the sky", "--duration", "4",
        "--aspect", "16:9", "--seed", "3", "--no-audio", "--wait",
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    job = Job.objects.get()
    assert result["job"] == job.pk
    assert (result["status"], result["error"], result["cost_usd"]) == ("succeeded", None, "0.00")
    assert_printed_clip(result, job)
    assert (result["width"], result["height"], result["has_audio"]) == (1280, 720, False)
    assert (job.seed, job.audio, job.mode) == (3, False, Job.Mode.IMAGE)


def test_generate_without_wait_queues_and_says_so(tmp_path, capsys, demo):
    call_command("generate", "--prompt", "northern lights over a lake", "--duration", "6")
    result = json.loads(capsys.readouterr().out)
    job = Job.objects.get(pk=result["job"])
    assert (result["status"], job.mode, job.duration, job.creator) == ("queued", "text", 6, demo)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "5"], "Duration must be 4, 6 or 8 seconds; 5 is not allowed."),
        (["--resolution", "480p"], "Resolution must be 720p or 1080p; 480p is not allowed."),
        (["--prompt", ""], "Write a prompt"),
        (["--provider", "acme"], "Provider must be one of those listed"),
    ],
)
def test_generate_refuses_bad_options_with_the_forms_message(tmp_path, demo, args, message):
    image = write(tmp_path, "a.jpg", photo())
    with pytest.raises(CommandError) as error:
        call_command("generate", image, "--prompt", "push in", *args)
    assert error.value.returncode == 2
    assert message in str(error.value)
    assert not Job.objects.exists()


def test_generate_refuses_a_file_that_is_not_an_image(tmp_path, demo):
    fake = write(tmp_path, "notes.png", b"these are my notes")
    with pytest.raises(CommandError, match="not an image Studio can read") as error:
        call_command("generate", fake, "--prompt", "push in")
    assert error.value.returncode == 2
    assert not Job.objects.exists()


def test_generate_refuses_a_missing_file(tmp_path, demo):
    with pytest.raises(CommandError, match=r"Cannot read .*nope.jpg: No such file") as error:
        call_command("generate", str(tmp_path / "nope.jpg"), "--prompt", "push in")
    assert error.value.returncode == 2


def test_generate_exits_with_status_2_from_the_shell(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    subprocess.run([*manage, "demo_account"], env=env, check=True, capture_output=True)
    small = write(tmp_path, "small.jpg", photo(640, 480))
    run = subprocess.run(
        [*manage, "generate", small, "--prompt", "push in"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "Image: The image is 640×480; its short side must be at least 512 px." in run.stderr
    assert run.stdout == ""


def test_demo_account_can_be_created_again_and_signs_in(client, db, capsys):
    call_command("demo_account")
    call_command("demo_account")
    out = capsys.readouterr().out
    assert "Created the demo account" in out and "Reset the demo account" in out
    # Through the sign-in page: django-axes checks every sign-in against its request.
    signed_in = client.post(
        reverse("login"),
        {"username": settings.STUDIO_DEMO_USERNAME, "password": settings.STUDIO_DEMO_PASSWORD},
    )
    assert signed_in.status_code == 302 and "_auth_user_id" in client.session


def fast_follow(settings, monkeypatch):
    """Point the providers at the emulator and let the inline follower poll it quickly."""
    use_emulator(settings)
    settings.STUDIO_FOLLOW_STEP_SECONDS = 20
    for cls in provider_classes().values():
        monkeypatch.setattr(cls, "poll_interval_seconds", 0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["fal", "gemini", "vertex", "aimlapi", "oxen"])
def test_generate_wait_completes_a_job_at_each_hosted_provider(
    provider, tmp_path, capsys, settings, tasks_inline, monkeypatch
):
    fast_follow(settings, monkeypatch)
    make_creator(settings.STUDIO_DEMO_USERNAME)
    image = write(tmp_path, "hill.jpg", photo(1280, 720))
    call_command(
        "generate", image, "--prompt", "push in on the hill", "--provider", provider,
        "--duration", "8", "--aspect", "16:9", "--wait",
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert (result["status"], result["provider"], result["error"]) == ("succeeded", provider, None)
    assert (result["width"], result["height"], result["duration"]) == (1280, 720, 8.0)
    assert Decimal(result["cost_usd"]) > 0
    assert_printed_clip(result, Job.objects.get(pk=result["job"]))


@pytest.mark.django_db(transaction=True)
def test_generate_reports_a_provider_refusal(tmp_path, capsys, settings, tasks_inline, monkeypatch):
    fast_follow(settings, monkeypatch)
    make_creator(settings.STUDIO_DEMO_USERNAME)
    image = write(tmp_path, "hill.jpg", photo(1280, 720))
    with pytest.raises(CommandError) as error:
        call_command(
            "generate", image, "--prompt", "[fail:policy] push in", "--provider", "gemini",
            "--duration", "8", "--wait",
        )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert error.value.returncode == 1
    assert result["status"] == "failed"
    assert "not charged" in result["error"]


def test_generate_names_the_limit_it_would_pass(tmp_path, demo, settings):
    settings.FAL_KEY = "k"
    Quota.objects.create(creator=demo, monthly_budget=Decimal("0.10"))
    image = write(tmp_path, "a.jpg", photo())
    with pytest.raises(CommandError) as error:
        call_command("generate", image, "--prompt", "push in", "--provider", "fal")
    assert error.value.returncode == 2
    assert "This clip costs $0.40; your monthly budget is $0.10" in str(error.value)
    assert not Job.objects.exists()

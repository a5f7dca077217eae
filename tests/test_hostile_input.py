"""Numbers and ids that are not what they look like, sent to every parameter of every view:
Unicode digits Python's int() refuses (superscripts), fullwidth and Arabic-Indic digits it
takes, exponents, hex, negatives and numbers far too big for a column or a list. Each is
answered with a 4xx, a form error, or (for a real number in range) what that number means;
never with a 500. Counts are bounded before any work is done."""

import time
import uuid

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from studio.models import Job
from tests.factories import text_job
from tests.test_views import finished_job

HOSTILE = [
    "²",  # a superscript: str.isdigit() says yes, int() says no
    "１２",  # fullwidth digits: int() reads 12
    "٣",  # an Arabic-Indic digit: int() reads 3
    "1e3",
    "0x10",
    "-1",
    "NaN",
    "99999999999999999999999",  # beyond any integer column
    "5000000000",  # beyond a 32-bit column, and beyond random.randrange for a seed
    "3000000",
]
HUGE = "99999999999999999999999"
UNREADABLE_IDS = {"²", "1e3", "0x10", "-1", "NaN", HUGE}

FORM = {
    "mode": "text", "prompt": "Rain over the harbour", "negative_prompt": "",
    "provider": "local", "duration": "4", "resolution": "720p", "aspect": "16:9",
    "audio": "on", "seed": "", "framing": "crop", "copies": "1",
}  # fmt: skip
PARAMETERS = [
    "mode", "image_id", "last_frame_id", "provider", "duration", "resolution", "aspect",
    "seed", "framing", "crop_left", "crop_top", "crop_width", "crop_height", "copies",
    "more_prompts", "more_durations", "audio",
]  # fmt: skip


@pytest.fixture
def hostile(signed_in):
    signed_in.raise_request_exception = False
    return signed_in


def _answered(response) -> None:
    assert response.status_code < 500, response.status_code


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", PARAMETERS)
def test_the_create_form_answers_any_number_without_a_500(hostile, name, value):
    started = time.monotonic()
    response = hostile.post(reverse("create"), {**FORM, name: value})
    _answered(response)
    assert time.monotonic() - started < 2
    if response.status_code == 200:
        assert response.context["form"].errors, "a 200 from a submit shows why"
    assert Job.objects.count() <= 12


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", [*PARAMETERS, "rendered_for"])
def test_the_options_panel_answers_any_number_without_a_500(hostile, name, value):
    started = time.monotonic()
    _answered(hostile.get(reverse("options"), {**FORM, name: value}))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("view", ["create", "options"])
@pytest.mark.parametrize("copies", ["13", "3000000", "5000000000", str(10**12)])
def test_counts_are_bounded_by_the_form_before_any_list_is_built(hostile, view, copies):
    data = {**FORM, "copies": copies}
    started = time.monotonic()
    if view == "create":
        response = hostile.post(reverse("create"), data)
        assert response.status_code == 200
        form = response.context["form"]
        assert form.errors["copies"] == [
            "A batch can have at most 12 clips; ask for 12 copies or fewer."
        ]
        assert form.batch == []
    else:
        response = hostile.get(reverse("options"), data)
        assert response.status_code == 200
        assert b"This clip will cost" in response.content
        assert b"A batch can have at most 12 clips; ask for 12 copies or fewer." in response.content
    assert time.monotonic() - started < 1


def test_more_prompts_are_bounded_by_the_form_too(hostile):
    response = hostile.post(reverse("create"), {**FORM, "more_prompts": "r\n" * 5000})
    assert response.context["form"].errors["more_prompts"] == [
        "A batch can have at most 12 clips: that is at most 11 more prompts, not 5000."
    ]
    assert response.context["form"].batch == []


def test_upload_stills_and_pages_answer_any_number_without_a_500(hostile, creator):
    job = finished_job(creator)
    clip = job.clip
    video = reverse("clip_video", args=[clip.pk])
    for value in HOSTILE:
        _answered(hostile.post(reverse("upload_still", args=["image"]), {"image": value}))
        _answered(hostile.post(f"/images/upload/{value}/", {}))
        _answered(hostile.get(reverse("padded_preview", args=[job.image_id]), {"aspect": value}))
        for path in (f"/jobs/{value}/", f"/batches/{value}/", f"/clips/{value}/"):
            _answered(hostile.get(path))
        for name in ("q", "show", "provider", "since", "older_than", "favourites"):
            _answered(hostile.get(reverse("library"), {name: value}))
        _answered(hostile.get(reverse("create"), {"recipe": value}))
        _answered(hostile.post(reverse("job_retry", args=[job.pk]), {"how": value}))
        _answered(hostile.post(reverse("library_export"), {"clip": value}))
        _answered(hostile.get(video, {"download": value}))
        for header in (f"bytes={value}-", f"bytes=0-{value}", f"bytes=-{value}", f"bytes={value}"):
            for url in (video, reverse("clip_poster", args=[clip.pk]),
                        reverse("source_image", args=[job.image_id])):  # fmt: skip
                response = hostile.get(url, HTTP_RANGE=header)
                _answered(response)
                if not value.isascii():
                    # Only ASCII digits make a range; anything else is not understood, and
                    # the whole file is sent.
                    assert response.status_code == 200, (header, response.status_code)
    for path in (f"/jobs/{HUGE}/", f"/clips/{HUGE}/", f"/clips/{HUGE}/video.mp4",
                 f"/clips/{HUGE}/poster.jpg", f"/images/{HUGE}/", f"/images/{HUGE}/padded.jpg",
                 f"/batches/{uuid.uuid4()}/"):  # fmt: skip
        _answered(hostile.get(path))
    for path in (f"/jobs/{HUGE}/cancel/", f"/clips/{HUGE}/delete/"):
        _answered(hostile.post(path))


@pytest.fixture
def boss(client, db):
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw-boss"))
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("admin:studio_job_changelist", "cancel_jobs"),
        ("admin:studio_job_changelist", "retry_jobs"),
        ("admin:studio_creator_changelist", "grant_budget"),
        ("admin:studio_creator_changelist", "reset_month"),
        ("admin:studio_creator_changelist", "suspend"),
        ("admin:studio_creator_changelist", "resume"),
        ("admin:studio_price_changelist", "delete_selected"),
        ("admin:studio_clip_changelist", "delete_selected"),
        ("admin:studio_sourceimage_changelist", "delete_selected"),
        ("admin:axes_accessattempt_changelist", "delete_selected"),
    ],
)
def test_admin_actions_answer_any_selection_without_a_500(boss, creator, changelist, action, value):
    text_job(creator)
    url = reverse(changelist)
    response = boss.post(url, {"action": action, "_selected_action": [value], "index": "0"})
    _answered(response)
    response = boss.post(url, {"action": action, "_selected_action": ["1", value], "index": value})
    _answered(response)
    if value in UNREADABLE_IDS:
        assert response.status_code == 302
        messages = [str(m) for m in response.wsgi_request._messages]
        assert "The selected rows could not be read; select them again." in messages


@pytest.mark.parametrize("value", HOSTILE)
def test_admin_forms_and_lists_answer_any_number_without_a_500(boss, creator, value):
    text_job(creator)
    grant = {"action": "grant_budget", "_selected_action": [creator.pk], "apply": "1"}
    _answered(boss.post(reverse("admin:studio_creator_changelist"), {**grant, "usd": value}))
    for path in (
        f"/admin/studio/job/{value}/change/",
        f"/admin/studio/job/{HUGE}/change/",
        f"/admin/studio/creator/{value}/change/",
        f"/admin/studio/creator/{HUGE}/change/",
        f"/admin/auth/user/{value}/delete/",
        f"/admin/auth/user/{HUGE}/delete/",
        f"/admin/studio/job/?creator__id__exact={value}",
        f"/admin/studio/job/?p={value}",
        f"/admin/studio/job/?o={value}",
        f"/admin/studio/ledgerentry/?job__id__exact={value}",
        f"/admin/studio/dashboard/?month={value}",
        f"/admin/studio/dashboard/?month=2026-{value}",
    ):
        _answered(boss.get(path))

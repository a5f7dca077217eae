"""Batch variations: several clips from one request, priced together, reserved all or none."""

from decimal import Decimal

import pytest
from django.urls import reverse

from studio.models import Job, LedgerEntry, Quota
from studio.web.forms import variations
from tests.factories import clip_options, make_creator


def text_form(**overrides):
    data = {
        "mode": "text", "prompt": "Rain on the harbour", "provider": "local", "duration": "4",
        "resolution": "720p", "aspect": "16:9", "audio": "on", "seed": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_every_prompt_line_at_every_duration_in_every_copy_is_a_clip():
    made = variations(
        clip_options(prompt="rain", duration=4, seed=100), copies=2,
        more_prompts="fog\n\n  snow  \n", more_durations=[8, 4], seeded=True,
    )  # fmt: skip
    assert len(made) == 3 * 2 * 2
    assert {(v.prompt, v.duration) for v in made} == {
        (p, d) for p in ("rain", "fog", "snow") for d in (4, 8)
    }
    assert {v.seed for v in made} == {100, 101}


def test_copies_get_distinct_seeds_even_without_one_but_not_where_seeds_are_ignored():
    rain = clip_options(prompt="rain", duration=4, seed=None)
    seeded = variations(rain, copies=4, seeded=True)
    assert len({v.seed for v in seeded}) == 4 and None not in {v.seed for v in seeded}
    seedless = variations(rain, copies=3, seeded=False)
    assert [v.seed for v in seedless] == [None, None, None]


def test_a_batch_submits_together_and_shows_its_clips(signed_in, creator):
    Quota.objects.create(creator=creator, concurrent_jobs=10)
    sent = signed_in.post(
        reverse("create"),
        text_form(copies="2", seed="7", more_prompts="Fog over the quay", more_durations=["8"]),
    )
    made = list(Job.objects.order_by("pk"))
    assert len(made) == 8
    assert len({job.batch for job in made}) == 1
    assert sent.status_code == 302 and sent["Location"] == reverse("batch", args=[made[0].batch])
    assert {job.seed for job in made} == {7, 8}
    assert {job.duration for job in made} == {4, 8}
    assert LedgerEntry.objects.filter(kind="reserve").count() == 8
    page = signed_in.get(sent["Location"])
    assert page.content.decode().count('data-testid="batch-job"') == 8
    polled = signed_in.get(sent["Location"], headers={"HX-Request": "true"})
    assert polled.status_code == 200  # still running: keep polling
    job_page = signed_in.get(reverse("job", args=[made[0].pk])).content.decode()
    assert reverse("batch", args=[made[0].batch]) in job_page


def test_a_finished_batch_stops_the_polling(signed_in, creator):
    signed_in.post(reverse("create"), text_form(copies="2"))
    batch = Job.objects.first().batch
    Job.objects.update(status=Job.Status.FAILED)
    polled = signed_in.get(reverse("batch", args=[batch]), headers={"HX-Request": "true"})
    assert polled.status_code == 286


def test_another_creators_batch_is_not_found(client, creator):
    Quota.objects.create(creator=creator, concurrent_jobs=5)
    client.force_login(creator)
    client.post(reverse("create"), text_form(copies="2"))
    batch = Job.objects.first().batch
    client.force_login(make_creator("ben"))
    assert client.get(reverse("batch", args=[batch])).status_code == 404


def test_a_batch_over_the_limit_is_refused_whole_with_the_total_named(signed_in, creator, settings):
    settings.FAL_KEY = "test-key"
    Quota.objects.create(creator=creator, monthly_budget=Decimal("1.00"), concurrent_jobs=10)
    sent = signed_in.post(
        reverse("create"),
        text_form(provider="fal", duration="8", copies="3"),
    )
    assert sent.status_code == 200
    assert "These 3 clips cost $1.20; your monthly budget is $1.00" in sent.content.decode()
    assert not Job.objects.exists()


def test_too_many_variations_are_refused_with_the_count(signed_in, settings):
    settings.STUDIO_MAX_BATCH = 12
    sent = signed_in.post(
        reverse("create"), text_form(copies="5", more_prompts="a\nb", more_durations=["8"])
    )
    assert "That makes 30 clips; a batch can have at most 12." in sent.content.decode()
    assert not Job.objects.exists()


def test_a_duration_the_provider_cannot_make_here_is_named(signed_in, settings):
    settings.FAL_KEY = "test-key"
    sent = signed_in.post(
        reverse("create"),
        text_form(provider="fal", duration="8", resolution="1080p", more_durations=["4"]),
    )
    assert "At 4 s: fal.ai makes 1080p clips only 8 s long" in sent.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("extra", "count", "total"),
    [({"copies": "3"}, 3, "1.20"), ({"copies": "2", "more_durations": ["4"]}, 4, "1.20")],
)
def test_the_panel_shows_the_count_and_total_before_submit(
    signed_in, settings, extra, count, total
):
    settings.FAL_KEY = "test-key"
    panel = signed_in.get(
        reverse("options"), {**text_form(provider="fal", duration="8"), **extra}
    ).content.decode()
    assert f"{count} clips will cost" in panel
    assert f"these {count} clips: ${total}" in panel
    assert "$10.00 left" in panel

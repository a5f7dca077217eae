"""The model each provider was asked for, kept on the job at submit for the clip's recipe."""

import pytest
from django.urls import reverse

from studio.models import Job
from tests.emulator import finished, new_job, submitted, use_emulator

# What each provider is asked for by default (its settings, or fal's endpoint per mode).
ASKED = {
    "fal": "fal-ai/veo3.1/lite/image-to-video",
    "vertex": "veo-3.1-lite-generate-001",
    "aimlapi": "google/veo-3.1-lite-generate-001",
    "oxen": "google-veo-3-1-lite",
}


@pytest.mark.parametrize("provider", sorted(ASKED))
def test_each_provider_s_model_is_kept_at_submit(settings, creator, provider):
    use_emulator(settings)
    job = new_job(creator, provider, duration=8)
    assert job.model == ""  # nothing was asked of anyone yet
    assert submitted(job).model == ASKED[provider]


def test_fal_s_endpoint_follows_the_mode_and_the_clip_page_names_it(settings, creator, client):
    use_emulator(settings)
    job = submitted(new_job(creator, "fal", mode=Job.Mode.TEXT, aspect="16:9", duration=8))
    assert job.model == "fal-ai/veo3.1/lite"
    job = finished(job)
    client.force_login(creator)
    page = client.get(reverse("clip", args=[job.clip.pk])).content.decode()
    assert 'data-testid="model">fal-ai/veo3.1/lite<' in page

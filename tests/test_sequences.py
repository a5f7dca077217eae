"""Sequences: planning a film from clips, stitching it in the worker (probed: length =
sum - crossfades within one frame, sound present), the idempotency and crash rules of any
job, and the editor's views."""

import tempfile
from datetime import timedelta
from pathlib import Path

import av
import pytest
from django.urls import reverse
from django.utils import timezone

from studio import sequences, stitch, storage
from studio.models import Clip, Sequence
from tests.test_views import finished_job


@pytest.fixture
def clips(creator):
    return [finished_job(creator).clip for _ in range(3)]


def test_a_plan_has_the_films_length_and_refuses_what_cannot_be_made(creator, clips, other_creator):
    ids = [clip.pk for clip in clips]
    planned = sequences.plan(creator, ids, [0, 0.5, 1.0])
    assert planned.fades == [0.0, 0.5, 1.0]
    assert planned.length == pytest.approx(sum(c.duration for c in clips) - 1.5)
    assert planned.warnings == []
    with pytest.raises(sequences.SequenceRefused, match=r"0\.25, 0\.5, 0\.75 or 1 s"):
        sequences.plan(creator, ids, [0, 0.3, 0])
    with pytest.raises(sequences.SequenceRefused, match="not in your library"):
        sequences.plan(other_creator, ids, [])
    Clip.objects.filter(pk=clips[1].pk).update(width=720, height=1280, has_audio=False)
    warned = sequences.plan(creator, ids, [])
    assert "Clip 2 is 720×1280" in warned.warnings[0] and "no sound" in warned.warnings[1]


def probe(name: str) -> dict:
    with (
        tempfile.TemporaryDirectory() as tmp,
        av.open(
            storage.local_path(name, Path(tmp) / "film.mp4")  # from S3 too
        ) as container,
    ):
        return {s.type: float(s.duration * s.time_base) for s in container.streams if s.duration}


def test_stitching_makes_one_film_of_the_clips_once(creator, clips):
    planned = sequences.plan(creator, [c.pk for c in clips], [0, 0.5, 0.25])
    sequence = sequences.create(creator, planned)
    sequences.make(sequence.pk)
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.SUCCEEDED, sequence.error
    expected = sum(c.duration for c in clips) - 0.75
    assert abs(sequence.duration - expected) <= 1 / 24
    streams = probe(sequence.file.name)
    assert abs(streams["video"] - expected) <= 1 / 24
    assert abs(streams["audio"] - expected) <= 1 / 24  # sound crossfaded with the picture
    assert (sequence.width, sequence.height, sequence.has_audio) == (1280, 720, True)
    assert [part["fade"] for part in sequence.parts] == [0.0, 0.5, 0.25]
    # A second delivery of the task does nothing: the claim only takes a queued one.
    finished_at = sequence.finished_at
    sequences.make(sequence.pk)
    sequence.refresh_from_db()
    assert sequence.finished_at == finished_at


def test_a_clip_of_another_shape_is_scaled_and_padded(tmp_path):
    from bench.render import photo_like
    from studio.providers.local.renderer import RenderSpec, render_clip

    still = photo_like(800, 600)
    wide, tall = tmp_path / "wide.mp4", tmp_path / "tall.mp4"
    render_clip(still, None, RenderSpec(1280, 720, 4, "static", True, 1), wide)
    render_clip(still, None, RenderSpec(720, 1280, 4, "static", False, 2), tall)
    pieces = [stitch.Piece(str(wide)), stitch.Piece(str(tall), 1.0)]
    made = stitch.stitch(pieces, tmp_path / "o.mp4")
    assert (made.width, made.height, made.duration) == (1280, 720, 7.0)
    assert any("scaled and padded" in w for w in made.warnings)
    assert any("no sound" in w for w in made.warnings)


def test_a_deleted_clip_fails_the_sequence_with_its_name(creator, clips):
    sequence = sequences.create(creator, sequences.plan(creator, [c.pk for c in clips], []))
    clips[1].delete()
    sequences.make(sequence.pk)
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.FAILED
    assert "was deleted before the film was made" in sequence.error


def test_the_follower_takes_up_a_lost_or_abandoned_sequence(creator, clips, monkeypatch):
    queued = []
    monkeypatch.setattr(sequences, "queue", queued.append)
    sequence = sequences.create(creator, sequences.plan(creator, [clips[0].pk], []))
    now = timezone.now()
    assert sequences.take_up_lost(now) == 0  # its task may still come
    later = now + timedelta(minutes=2)
    assert sequences.take_up_lost(later) == 1 and queued == [sequence.pk]
    assert sequences.take_up_lost(later) == 0  # once per grace period
    # A worker that died while stitching: its lease runs out, and the sequence is queued again.
    Sequence.objects.filter(pk=sequence.pk).update(
        status=Sequence.Status.STITCHING, lease_until=later
    )
    assert sequences.take_up_lost(later + timedelta(minutes=5)) == 1
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.QUEUED
    assert sequence.claim(for_seconds=60)
    assert not Sequence.objects.get(pk=sequence.pk).claim(for_seconds=60)


def test_the_editor_orders_clips_and_shows_the_length(signed_in, creator, clips):
    url = reverse("sequence_new")
    # From the library's selection (newest first): sent on as a URL, oldest first.
    response = signed_in.post(url, {"clip": [c.pk for c in reversed(clips)]})
    assert response.status_code == 302
    page = signed_in.get(response["Location"])
    assert [c.pk for c, _ in page.context["rows"]] == [c.pk for c in clips]
    assert [f for _, f in page.context["rows"]] == [0.0, 0.5, 0.5]
    assert page.context["planned"].length == pytest.approx(sum(c.duration for c in clips) - 1)
    moved = signed_in.get(response["Location"] + "&move=2:up", headers={"HX-Request": "true"})
    assert [c.pk for c, _ in moved.context["rows"]] == [clips[0].pk, clips[2].pk, clips[1].pk]
    assert "clip=" in moved["HX-Push-Url"] and "move" not in moved["HX-Push-Url"]
    made = signed_in.post(
        reverse("sequence_create"), {"clip": [c.pk for c in clips], "fade": ["0", "1", "0"]}
    )
    sequence = creator.sequences.get()
    assert made["Location"] == reverse("sequence", args=[sequence.pk])
    assert [p["fade"] for p in sequence.parts] == [0.0, 1.0, 0.0]
    live = signed_in.get(made["Location"], headers={"HX-Request": "true"})
    assert live.status_code == 200 and b"Stitching" in live.content


def test_another_creators_sequence_is_not_found(client, creator, clips, other_creator):
    sequence = sequences.create(creator, sequences.plan(creator, [clips[0].pk], []))
    client.force_login(other_creator)
    for name in ("sequence", "sequence_video", "sequence_poster"):
        assert client.get(reverse(name, args=[sequence.pk])).status_code == 404
    assert client.post(reverse("sequence_delete", args=[sequence.pk])).status_code == 404

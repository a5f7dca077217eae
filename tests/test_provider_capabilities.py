"""Pre-flight: what each provider would reject or silently change, with its one-click fix."""

import itertools

import pytest

from studio.options import ClipOptions, Still, StoredVideo
from studio.providers.base import GenerationRequest, InvalidRequestError
from studio.providers.capabilities import Capabilities, Problem, adapt, preflight
from studio.providers.registry import LABELS, capabilities_of, get_provider, provider_class

DEFAULTS = ClipOptions(prompt="")


def opts(image_bytes=None, last_frame_bytes=None, **options) -> ClipOptions:
    """Options differing from the defaults by `options`, with stills of the given sizes."""

    def still(size):
        if size is None:
            return None
        return Still(id=None, name="", content_type="image/jpeg", width=1600, height=900,
                     size_bytes=size)  # fmt: skip

    return DEFAULTS.replace(**options, image=still(image_bytes), last_frame=still(last_frame_bytes))


def problems(provider, **options):
    return preflight(caps_of(provider), opts(**options))


def caps_of(provider) -> Capabilities:
    return provider if isinstance(provider, Capabilities) else capabilities_of(provider)


def fields(found: list[Problem]) -> list[str]:
    return [problem.field for problem in found]


@pytest.mark.parametrize("name", list(LABELS))
def test_the_default_options_suit_every_provider(name):
    assert problems(name) == []


@pytest.mark.parametrize("name", list(LABELS))
def test_every_message_is_one_line_naming_the_provider(name):
    label = provider_class(name).capabilities.label
    options = dict(
        mode="first_last", duration=4, resolution="1080p", audio=False, seed=3,
        negative_prompt="blur", image_bytes=50_000_000,
    )  # fmt: skip
    for problem in problems(name, **options):
        assert "\n" not in problem.message
        assert problem.message.startswith(label)


def test_the_local_renderer_takes_every_combination():
    for mode, duration, resolution, aspect, audio in itertools.product(
        ("image", "text", "first_last"), (4, 6, 8), ("720p", "1080p"), ("auto", "16:9", "9:16"),
        (True, False),
    ):  # fmt: skip
        found = problems("local", mode=mode, duration=duration, resolution=resolution,
                         aspect=aspect, audio=audio, seed=1, negative_prompt="x")  # fmt: skip
        assert found == []


def test_fal_needs_8_seconds_for_1080p_and_for_first_and_last_frames():
    (problem,) = problems("fal", resolution="1080p", duration=4)
    assert problem == Problem(
        "duration", "fal.ai makes 1080p clips only 8 s long; choose 8 s or 720p.", {"duration": 8}
    )
    (problem,) = problems("fal", mode="first_last", duration=6)
    assert (problem.field, problem.fix) == ("duration", {"duration": 8})
    assert problems("fal", resolution="720p", duration=4, seed=5, audio=False) == []


def test_fal_refuses_images_over_8_mb_with_no_automatic_fix():
    (problem,) = problems("fal", image_bytes=9 * 1024 * 1024)
    assert problem.field == "image"
    assert problem.message == "fal.ai accepts images up to 8.0 MB; this one is 9.0 MB."
    assert problem.fix == {}
    assert problems("fal", last_frame_bytes=8 * 1024 * 1024) == []


def test_gemini_always_adds_sound_and_takes_no_seed():
    found = problems("gemini", audio=False, seed=42)
    assert fields(found) == ["audio", "seed"]
    audio, seed = found
    assert audio.message == "Gemini API always adds sound; it cannot make a silent clip."
    assert audio.fix == {"audio": True}
    assert seed.fix == {"seed": None}
    # No documented 1080p rule on the Gemini API, and negative prompts are supported.
    assert problems("gemini", resolution="1080p", duration=4, negative_prompt="blur") == []


def test_aimlapi_takes_no_seed_or_negative_prompt_and_first_last_needs_8_s():
    found = problems("aimlapi", seed=1, negative_prompt="blur", mode="first_last", duration=6)
    assert fields(found) == ["duration", "seed", "negative_prompt"]
    assert found[2].fix == {"negative_prompt": ""}
    assert problems("aimlapi", resolution="1080p", duration=4) == []


def test_oxen_has_no_last_frame_and_its_sound_is_unconfirmed():
    found = problems("oxen", mode="first_last", resolution="1080p", duration=6, audio=False)
    assert fields(found) == ["mode", "duration", "audio"]
    mode, duration, audio = found
    assert mode.message == (
        "Oxen.ai cannot make first and last frame clips; use image to video instead."
    )
    assert mode.fix == {"mode": "image"}
    assert duration.fix == {"duration": 8}
    assert "may add sound anyway" in audio.message


def test_unknown_values_are_fixed_to_the_nearest_supported_one():
    caps = Capabilities(label="Tiny", durations=(4, 8), resolutions=("720p",))
    found = preflight(caps, opts(duration=6, resolution="1080p"))
    assert [p.fix for p in found] == [{"duration": 8}, {"resolution": "720p"}]


def test_options_not_chosen_take_defaults_every_provider_accepts():
    assert preflight(capabilities_of("gemini"), opts()) == []
    assert preflight(capabilities_of("fal"), opts(resolution="1080p")) == []


def test_adapt_keeps_every_choice_still_valid_when_switching_provider():
    chosen = opts(
        mode="first_last", duration=4, resolution="1080p", aspect="9:16", audio=False, seed=5,
        negative_prompt="blur",
    )  # fmt: skip
    assert adapt(chosen, capabilities_of("local")) == chosen
    assert adapt(chosen, capabilities_of("oxen")) == chosen.replace(
        mode="image", duration=8, audio=True, negative_prompt=""
    )
    assert adapt(chosen, capabilities_of("gemini")) == chosen.replace(audio=True, seed=None)
    assert adapt(chosen, capabilities_of("fal")) == chosen.replace(duration=8)
    assert adapt(chosen, capabilities_of("aimlapi")) == chosen.replace(
        duration=8, seed=None, negative_prompt=""
    )
    for name in LABELS:
        assert [
            p
            for p in preflight(capabilities_of(name), adapt(chosen, capabilities_of(name)))
            if p.fix
        ] == []


def test_adapt_leaves_what_only_the_creator_can_fix():
    adapted = adapt(opts(image_bytes=20_000_000), capabilities_of("fal"))
    assert adapted.image.size_bytes == 20_000_000
    assert fields(preflight(capabilities_of("fal"), adapted)) == ["image"]


def test_an_unknown_provider_is_a_lookup_error():
    with pytest.raises(LookupError, match="no provider called 'nope'"):
        preflight(capabilities_of("nope"), DEFAULTS)


@pytest.mark.parametrize("name", list(LABELS))
def test_every_provider_declares_what_it_can_do(name):
    caps = provider_class(name).capabilities
    assert isinstance(caps, Capabilities) and caps.label
    assert caps.modes <= {"image", "text", "first_last"} and "image" in caps.modes
    assert set(caps.durations) <= {4, 6, 8}
    assert caps.last_frame == ("first_last" in caps.modes)


CLIP = StoredVideo(name="clips/1/job-1.mp4", width=1280, height=720, duration=4.0)


@pytest.mark.parametrize(
    "name", [name for name in LABELS if capabilities_of(name).extend_seconds is None]
)
def test_a_provider_that_cannot_continue_a_clip_refuses_one_before_sending_anything(name):
    request = GenerationRequest("studio-job-1", opts(mode="text"), extend_from=CLIP)
    with pytest.raises(InvalidRequestError) as refused:
        get_provider(name).submit(request)
    assert refused.value.field == "extend_from"
    assert str(refused.value) == (
        f"{LABELS[name]} cannot continue a clip; only a new one can be made."
    )

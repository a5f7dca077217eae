"""What a prompt may hold: control characters are taken out (newline and tab stay), and
text-direction overrides, which can make a prompt read differently from what is sent, are
refused with a message. The same for the negative prompt and more prompts, on the page and
from the CLI."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from studio.models import Job

FORM = {
    "mode": "text", "provider": "local", "duration": "4", "resolution": "720p",
    "aspect": "16:9", "audio": "on", "copies": "1",
}  # fmt: skip


def test_control_characters_are_taken_out_of_every_prompt(signed_in):
    response = signed_in.post(
        reverse("create"),
        {
            **FORM,
            "prompt": "Rain\x00 over\x1b[2J the\r\nharbour\x07,\tslowly\x7f\x85\x9b",
            "negative_prompt": "blur\x08, text\x0c",
            "more_prompts": "Fog\x1b over\x00 the quay\r\n\x01Snow",
        },
    )
    assert response.status_code == 302
    prompts = sorted(Job.objects.values_list("prompt", "negative_prompt"))
    assert prompts == [
        ("Fog over the quay", "blur, text"),
        ("Rain over[2J the\nharbour,\tslowly", "blur, text"),
        ("Snow", "blur, text"),
    ]


@pytest.mark.parametrize("override", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                                      "\u2066", "\u2067", "\u2068", "\u2069"])  # fmt: skip
@pytest.mark.parametrize("field", ["prompt", "negative_prompt", "more_prompts"])
def test_text_direction_overrides_are_refused_with_a_message(signed_in, field, override):
    data = {**FORM, "prompt": "Rain over the harbour", field: f"pan left {override}thgir"}
    response = signed_in.post(reverse("create"), data)
    assert response.status_code == 200
    assert not Job.objects.exists()
    [message] = response.context["form"].errors[field]
    assert message.startswith(
        f"Remove the invisible text-direction control (U+{ord(override):04X} "
    )
    assert "it can make the text read differently from what is sent" in message
    assert message in response.content.decode()


def test_marks_that_only_hint_direction_are_kept(signed_in):
    # Left-to-right and right-to-left marks change no order of what is already written.
    prompt = "Rain over \u05e9\u05dc\u05d5\u05dd\u200f harbour\u200e"
    response = signed_in.post(reverse("create"), {**FORM, "prompt": prompt})
    assert response.status_code == 302
    assert Job.objects.get().prompt == prompt


def test_the_cli_refuses_an_override_in_the_form_s_words(creator):
    with pytest.raises(CommandError) as refused:
        call_command(
            "generate", "--prompt", "push in \u202eon the lighthouse", "--user", creator.username,
            "--duration", "4",
        )  # fmt: skip
    assert refused.value.returncode == 2
    assert "Remove the invisible text-direction control (U+202E" in str(refused.value)
    assert not Job.objects.exists()

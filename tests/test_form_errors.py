"""Every error the create form can produce is shown on the page, next to what caused it:
hidden fields (the crop box, a stored still's id) included, where the creator sees them."""

import io
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from studio import images
from studio.models import Job
from tests.factories import photo

# Where each field's errors belong on the page: its own field, or the visible part it is
# the hidden value of.
PLACE = {
    "crop_left": "framing", "crop_top": "framing", "crop_width": "framing",
    "crop_height": "framing", "image_id": "field-image", "last_frame_id": "field-last_frame",
    "framing": "framing", "__all__": "create-form",
}  # fmt: skip


class _Texts(HTMLParser):
    """The text inside every element with an id, and whether that element is hidden."""

    VOID = {"input", "img", "br", "meta", "link", "hr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None, bool]] = []
        self.texts: dict[str, list[str]] = {}
        self.hidden: set[str] = set()

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        hidden = "hidden" in attrs or any(h for _, _, h in self.open)
        self.open.append((tag, attrs.get("id"), hidden))
        if attrs.get("id"):
            self.texts.setdefault(attrs["id"], [])
            if hidden:
                self.hidden.add(attrs["id"])

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _, element, _ in self.open:
            if element:
                self.texts[element].append(data)

    def text(self, element: str) -> str:
        return " ".join(" ".join(self.texts.get(element, [])).split())


def assert_every_error_is_shown_where_it_belongs(response) -> None:
    form = response.context["form"]
    assert form.errors, "the form was expected to refuse this"
    page = _Texts()
    page.feed(response.content.decode())
    for name, messages in form.errors.items():
        place = PLACE.get(name, f"field-{name}")
        assert place in page.texts, f"nothing on the page shows {name}'s errors"
        assert place not in page.hidden, f"{name}'s errors are in a hidden part of the page"
        for message in messages:
            shown = " ".join(message.split())
            assert shown in page.text(place), f"{name}: {message!r} is not shown at #{place}"


@pytest.fixture
def wide_still(creator):
    """A stored 4:3 still: a 16:9 clip needs it cropped."""
    data = photo(1600, 1200)
    return images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))


def image_form(still, **overrides):
    data = {
        "mode": "image", "image_id": str(still.pk), "prompt": "Push in on the quay",
        "provider": "local", "duration": "4", "resolution": "720p", "aspect": "16:9",
        "audio": "on", "framing": "crop", "crop_left": "0", "crop_top": "150",
        "crop_width": "1600", "crop_height": "900", "copies": "1",
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"crop_left": "-5"}, "The crop frame starts at (-5, 150), outside the image"),
        ({"crop_top": "-1"}, "The crop frame starts at (0, -1), outside the image"),
        ({"crop_width": "0", "crop_height": "0"}, "The crop frame is 0×0 px"),
        ({"crop_width": "0"}, "The crop frame is 0×900 px"),
        ({"crop_left": "NaN"}, "The crop frame's left edge must be a whole number of pixels"),
        ({"crop_height": "1e3"}, "The crop frame's height must be a whole number of pixels"),
        ({"crop_top": "²"}, "The crop frame's top edge must be a whole number of pixels"),
        ({"crop_width": ""}, "The crop frame needs its left edge, top edge, width and height"),
        ({"crop_left": "900"}, "The crop frame reaches (2500, 1050), outside the 1600×1200 image"),
        ({"crop_height": "1000"}, "The crop frame is 1600×1000 (1.600:1); it must be 16:9"),
    ],
)
def test_a_bad_crop_frame_is_explained_by_the_framing(signed_in, wide_still, overrides, message):
    response = signed_in.post(reverse("create"), image_form(wide_still, **overrides))
    assert response.status_code == 200
    assert not Job.objects.exists()
    assert message in " ".join(response.context["form"].errors["framing"])
    assert_every_error_is_shown_where_it_belongs(response)


def test_crop_values_that_are_not_used_make_no_error(signed_in):
    text = {
        "mode": "text", "prompt": "Rain", "provider": "local", "duration": "4",
        "resolution": "720p", "aspect": "16:9", "audio": "on", "crop_left": "NaN",
        "crop_width": "-3",
    }  # fmt: skip
    response = signed_in.post(reverse("create"), text)
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"image_id": "abc"}, "image", "That image is no longer available; upload it again."),
        ({"image_id": "²"}, "image", "That image is no longer available; upload it again."),
        ({"image_id": "999999"}, "image", "That image is no longer available; upload it again."),
        (
            {"mode": "first_last", "last_frame_id": "1e3"},
            "last_frame",
            "That image is no longer available; upload it again.",
        ),
        ({"prompt": ""}, "prompt", "Write a prompt"),
        ({"seed": "-1"}, "seed", "Ensure this value is greater than or equal to 0."),
        ({"copies": "0"}, "copies", "Ensure this value is greater than or equal to 1."),
        ({"more_durations": ["5"]}, "more_durations", "Select a valid choice."),
        ({"framing": "stretch"}, "framing", "Framing must be crop or pad"),
        ({"duration": "5"}, "duration", "Duration must be 4, 6 or 8 seconds"),
        ({"mode": "video"}, "mode", "Mode must be image, text or first_last"),
    ],
)
def test_every_field_error_is_shown_next_to_its_field(
    signed_in, wide_still, overrides, field, message
):
    response = signed_in.post(reverse("create"), image_form(wide_still, **overrides))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert_every_error_is_shown_where_it_belongs(response)


def test_radio_buttons_written_without_templates_are_what_django_s_template_writes():
    """The create page's radio buttons skip a template render each (studio/web/forms.py
    LimitedChoice._render): they must still be exactly Django's own markup."""
    from django import forms

    from studio.web.forms import LimitedChoice

    class Both(forms.Form):
        fast = forms.ChoiceField(choices=[("4", "4 s"), ("6", "6 s"), ("8", 'a "quoted" <8>')])
        plain = forms.ChoiceField(
            choices=[("4", "4 s"), ("6", "6 s"), ("8", 'a "quoted" <8>')],
            widget=forms.RadioSelect,
        )

    Both.base_fields["fast"].widget = LimitedChoice(choices=Both.base_fields["fast"].choices)
    form = Both(initial={"fast": "6", "plain": "6"})
    form.fields["fast"].widget.disabled_values = {"8"}
    form.fields["fast"].widget.attrs["data-x"] = 'say "hi"'
    form.fields["plain"].widget.attrs["data-x"] = 'say "hi"'
    fast = [choice.tag() for choice in form["fast"]]
    plain = [choice.tag() for choice in form["plain"]]
    assert [tag.replace("fast", "plain") for tag in fast[:2]] == plain[:2]
    assert "checked" in fast[1] and 'data-x="say &quot;hi&quot;"' in fast[1]
    assert fast[2].replace(" disabled", "").replace("fast", "plain") == plain[2]
    assert fast[2].endswith(" disabled>")

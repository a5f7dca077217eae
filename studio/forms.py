"""The create form. The web page and the `generate` command both go through it, so a bad
request gets the same specific message wherever it comes from."""

from django import forms
from django.conf import settings
from django.db import transaction

from studio import images, jobs
from studio.models import Job
from studio.providers import provider_choices


def _choice_error(what: str, allowed: str) -> dict:
    return {"invalid_choice": f"{what} must be {allowed}; %(value)s is not allowed."}


class OptionsForm(forms.Form):
    """The options that decide the price: enough to show an estimate while the creator edits."""

    provider = forms.ChoiceField(
        choices=provider_choices, error_messages=_choice_error("Provider", "one of those listed")
    )
    duration = forms.TypedChoiceField(
        choices=[(d, f"{d} seconds") for d in Job.DURATIONS],
        coerce=int,
        initial=8,
        error_messages=_choice_error("Duration", "4, 6 or 8 seconds"),
    )
    resolution = forms.ChoiceField(
        choices=Job.Resolution.choices,
        initial=Job.Resolution.P720,
        error_messages=_choice_error("Resolution", "720p or 1080p"),
    )
    audio = forms.BooleanField(required=False, initial=True, label="Generate audio")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].initial = settings.STUDIO_PROVIDER

    def initial_options(self) -> dict:
        return {name: self.fields[name].initial for name in OptionsForm.base_fields}


class JobForm(OptionsForm):
    mode = forms.ChoiceField(
        choices=Job.Mode.choices,
        initial=Job.Mode.IMAGE,
        error_messages=_choice_error("Mode", "image, text or first_last"),
    )
    image = forms.FileField(
        required=False,
        label="Image",
        help_text="JPEG, PNG or WebP, up to 20 MB, at least 512 px on the short side.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    last_frame = forms.FileField(
        required=False,
        label="Last frame",
        help_text="First and last frame mode only: the clip ends on this image.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    prompt = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Slow push in as the mist lifts"}),
        error_messages={"required": "Write a prompt: describe the motion you want."},
        help_text="Name a camera move (push in, pull out, pan left/right, tilt up/down) "
        "to steer the local renderer.",
    )
    negative_prompt = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "blur, text, watermark"}),
    )
    aspect = forms.ChoiceField(
        choices=Job.Aspect.choices,
        initial=Job.Aspect.AUTO,
        error_messages=_choice_error("Aspect ratio", "16:9, 9:16 or auto"),
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=Job.MAX_SEED,
        help_text="Same seed, same result. Leave empty for a random one.",
    )

    field_order = [
        "mode", "image", "last_frame", "prompt", "negative_prompt", "provider",
        "duration", "resolution", "aspect", "audio", "seed",
    ]  # fmt: skip

    def _clean_still(self, name: str, needed: bool, why: str) -> images.NormalisedImage | None:
        upload = self.cleaned_data.get(name)
        if not upload:
            if needed:
                self.add_error(name, why)
            return None
        try:
            return images.normalise(upload, size=upload.size)
        except images.ImageRejected as exc:
            self.add_error(name, str(exc))
            return None

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        data["image"] = self._clean_still(
            "image",
            needed=mode in (Job.Mode.IMAGE, Job.Mode.FIRST_LAST),
            why="Choose an image to animate.",
        )
        data["last_frame"] = self._clean_still(
            "last_frame",
            needed=mode == Job.Mode.FIRST_LAST,
            why="First and last frame mode needs a last frame.",
        )
        if mode == Job.Mode.TEXT:
            data["image"] = data["last_frame"] = None
        elif mode == Job.Mode.IMAGE:
            data["last_frame"] = None
        return data

    @property
    def warnings(self) -> list[str]:
        stills = (self.cleaned_data.get("image"), self.cleaned_data.get("last_frame"))
        return [note for still in stills if still for note in still.warnings]

    def save(self, creator) -> Job:
        data = self.cleaned_data
        with transaction.atomic():
            image = images.store(creator, data["image"]) if data["image"] else None
            last = images.store(creator, data["last_frame"]) if data["last_frame"] else None
            return jobs.create_job(
                creator=creator,
                provider=data["provider"],
                mode=data["mode"],
                prompt=data["prompt"],
                negative_prompt=data["negative_prompt"],
                duration=data["duration"],
                resolution=data["resolution"],
                aspect=data["aspect"],
                audio=data["audio"],
                seed=data["seed"],
                image=image,
                last_frame=last,
            )

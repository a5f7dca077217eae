"""The create form. The web page and the `generate` command both go through it, so a bad
request gets the same specific message wherever it comes from."""

import random

from django import forms
from django.conf import settings
from django.db import transaction

from studio import images, jobs, quotas
from studio.models import Job, SourceImage
from studio.providers import PROVIDERS
from studio.providers.capabilities import OPTION_FIELDS, capabilities_of, preflight


def still_bytes(still) -> int:
    """The size a provider will be sent: the stored file, or the normalised upload."""
    return still.file.size if isinstance(still, SourceImage) else len(still.data)


def _choice_error(what: str, allowed: str) -> dict:
    return {"invalid_choice": f"{what} must be {allowed}; %(value)s is not allowed."}


def variations(
    *,
    prompt: str,
    duration: int,
    seed: int | None,
    copies: int,
    more_prompts: str,
    more_durations,
    seeded: bool,
) -> list[dict]:
    """The clips of a batch: every prompt line, at every duration, in every copy.

    Copies differ by seed: consecutive seeds from the one given, or from a random one, so
    each clip can be made again; at a provider that takes no seed they differ by chance.
    """  # fmt: skip
    prompts = [prompt, *(line.strip() for line in more_prompts.splitlines() if line.strip())]
    durations = [duration, *(d for d in sorted(set(more_durations)) if d != duration)]
    if copies > 1 and seeded:
        first = seed if seed is not None else random.randrange(Job.MAX_SEED - copies)
        seeds = [(first + i) % (Job.MAX_SEED + 1) for i in range(copies)]
    else:
        seeds = [seed] * copies
    return [
        {"prompt": p, "duration": d, "seed": s} for p in prompts for d in durations for s in seeds
    ]


class LimitedSelect(forms.Select):
    """A select whose choices the chosen provider cannot make are shown but disabled."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled_values: set[str] = set()

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


def _all_providers() -> list[tuple[str, str]]:
    return [(name, cls.label) for name, cls in PROVIDERS.items()]


class JobForm(forms.Form):
    """Everything a job needs. A still arrives either as a file (the CLI, or a browser
    without JavaScript) or as the id of one the creator uploaded already (the create page
    uploads on selection, so problems show at once and a form error never loses the file)."""

    provider = forms.ChoiceField(
        choices=_all_providers,
        widget=LimitedSelect,
        error_messages=_choice_error("Provider", "one of those listed"),
    )
    duration = forms.TypedChoiceField(
        choices=[(d, f"{d} seconds") for d in Job.DURATIONS],
        coerce=int,
        initial=8,
        widget=LimitedSelect,
        error_messages=_choice_error("Duration", "4, 6 or 8 seconds"),
    )
    resolution = forms.ChoiceField(
        choices=Job.Resolution.choices,
        initial=Job.Resolution.P720,
        widget=LimitedSelect,
        error_messages=_choice_error("Resolution", "720p or 1080p"),
    )
    audio = forms.BooleanField(required=False, initial=True, label="Generate audio")

    def __init__(self, *args, creator, **kwargs):
        super().__init__(*args, **kwargs)
        self.creator = creator
        self.limits = quotas.limits_of(creator)
        if not settings.STUDIO_FAILOVER:
            del self.fields["allow_failover"]
        self.fields["provider"].initial = settings.STUDIO_PROVIDER
        unavailable = {name: cls().unavailable_reason() for name, cls in PROVIDERS.items()}
        for name in PROVIDERS:
            if not self.limits.allows_provider(name):
                unavailable[name] = "your account may not use it; ask the studio's admin."
        self.unavailable = {name: reason for name, reason in unavailable.items() if reason}
        self.fields["provider"].widget.disabled_values = set(self.unavailable)
        self.fields["provider"].choices = [
            (name, f"{label} (unavailable)" if name in self.unavailable else label)
            for name, label in _all_providers()
        ]

    def clean_provider(self) -> str:
        name = self.cleaned_data["provider"]
        if name in self.unavailable:
            raise forms.ValidationError(
                f"{PROVIDERS[name].label} is not available: {self.unavailable[name]}"
            )
        return name

    def limit_to(self, provider: str) -> None:
        """Show only what `provider` can make (the rest stays visible, disabled)."""
        caps = capabilities_of(provider)
        self.fields["duration"].widget.disabled_values = {
            str(d) for d in Job.DURATIONS if d not in caps.durations
        }
        self.fields["resolution"].widget.disabled_values = {
            r
            for r in Job.Resolution.values
            if r not in caps.resolutions or not self.limits.allows_resolution(r)
        }
        if "aspect" in self.fields:
            self.fields["aspect"].widget.disabled_values = {
                a for a in Job.Aspect.values if a not in caps.aspects
            }
        if "mode" in self.fields:
            self.fields["mode"].widget.disabled_values = {
                m for m in Job.Mode.values if m not in caps.modes
            }

    def disabled_choices(self) -> dict[str, list[str]]:
        """The choices `limit_to` disabled, by field, for the page to apply."""
        return {
            name: sorted(field.widget.disabled_values)
            for name, field in self.fields.items()
            if isinstance(field.widget, LimitedSelect) and name != "provider"
        }

    mode = forms.ChoiceField(
        choices=Job.Mode.choices,
        initial=Job.Mode.IMAGE,
        widget=LimitedSelect,
        error_messages=_choice_error("Mode", "image, text or first_last"),
    )
    image = forms.FileField(
        required=False,
        label="Image",
        help_text="JPEG, PNG or WebP, up to 20 MB, at least 512 px on the short side.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    image_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    last_frame = forms.FileField(
        required=False,
        label="Last frame",
        help_text="First and last frame mode only: the clip ends on this image. "
        "It must be the same size as the first.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    last_frame_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
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
        widget=LimitedSelect,
        error_messages=_choice_error("Aspect ratio", "16:9, 9:16 or auto"),
    )
    framing = forms.ChoiceField(
        required=False,
        choices=Job.Framing.choices,
        initial=Job.Framing.CROP,
        widget=forms.RadioSelect,
        label="When the image does not fit the aspect",
        error_messages=_choice_error("Framing", "crop or pad"),
    )
    crop_left = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    crop_top = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    crop_width = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    crop_height = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=Job.MAX_SEED,
        help_text="Same seed, same result. Leave empty for a random one.",
    )

    allow_failover = forms.BooleanField(
        required=False,
        label="If this provider cannot take the job, use another that makes the same clip",
        help_text="Only before any provider accepts it; the price may differ and is "
        "checked against what you have left.",
    )
    # Batch variations: every prompt line, at every duration, in every copy becomes its own clip.
    copies = forms.IntegerField(
        required=False,
        min_value=1,
        initial=1,
        label="Clips per prompt",
        help_text="Each copy gets its own seed.",
        widget=forms.NumberInput(attrs={"min": 1}),
    )
    more_prompts = forms.CharField(
        required=False,
        max_length=2000 * 10,
        label="More prompts",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "One per line"}),
        help_text="One per line; each makes its own clips with the same settings.",
    )
    more_durations = forms.TypedMultipleChoiceField(
        required=False,
        choices=[(d, f"{d} s") for d in Job.DURATIONS],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Also at",
    )

    field_order = [
        "mode", "image", "last_frame", "prompt", "negative_prompt", "provider",
        "duration", "resolution", "aspect", "audio", "seed", "framing",
    ]  # fmt: skip

    def _clean_still(self, name: str, needed: bool, why: str):
        """The still as a SourceImage (already stored) or a NormalisedImage (to store)."""
        upload = self.cleaned_data.get(name)
        stored_id = self.cleaned_data.get(f"{name}_id")
        if upload:
            try:
                return images.normalise(upload, size=upload.size)
            except images.ImageRejected as exc:
                self.add_error(name, str(exc))
                return None
        if stored_id:
            still = self.creator.images.filter(pk=stored_id).first()
            if still is None:
                self.add_error(name, "That image is no longer available; upload it again.")
            return still
        if needed:
            self.add_error(name, why)
        return None

    def clean_resolution(self) -> str:
        resolution = self.cleaned_data["resolution"]
        if refusal := self.limits.resolution_refusal(resolution):
            raise forms.ValidationError(refusal)
        return resolution

    def clean_framing(self) -> str:
        return self.cleaned_data["framing"] or Job.Framing.CROP

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        needs_image = mode in (Job.Mode.IMAGE, Job.Mode.FIRST_LAST)
        image = self._clean_still("image", needs_image, "Choose an image to animate.")
        last = None
        if mode == Job.Mode.FIRST_LAST:
            last = self._clean_still(
                "last_frame", True, "First and last frame mode needs a last frame."
            )
        data["image"] = image if needs_image else None
        data["last_frame"] = last
        data["crop_box"] = None
        if image and last:
            try:
                images.check_last_frame(image, last)
            except images.ImageRejected as exc:
                self.add_error("last_frame", str(exc))
        if image and data.get("aspect"):
            data["crop_box"] = self._crop_box(image, data)
        self._preflight(data)
        self._vary(data)
        return data

    def _vary(self, data) -> None:
        """The batch's variations, each within the limits of a prompt and the provider."""
        if not all(data.get(name) is not None for name in ("prompt", "duration", "provider")):
            return
        data["variations"] = variations(
            prompt=data["prompt"],
            duration=data["duration"],
            seed=data.get("seed"),
            copies=data.get("copies") or 1,
            more_prompts=data.get("more_prompts", ""),
            more_durations=data.get("more_durations") or [],
            seeded=capabilities_of(data["provider"]).seed,
        )
        if len(data["variations"]) > settings.STUDIO_MAX_BATCH:
            self.add_error(
                "copies",
                f"That makes {len(data['variations'])} clips; a batch can have at most "
                f"{settings.STUDIO_MAX_BATCH}.",
            )
        for line in data.get("more_prompts", "").splitlines():
            if len(line.strip()) > 2000:
                self.add_error("more_prompts", "Each prompt can be at most 2000 characters.")
                break
        for duration in set(data.get("more_durations") or []) - {data["duration"]}:
            options = {name: data.get(name) for name in OPTION_FIELDS}
            for problem in preflight(data["provider"], {**options, "duration": duration}):
                if problem.field == "duration":
                    self.add_error("more_durations", f"At {duration} s: {problem.message}")

    def _preflight(self, data) -> None:
        """Refuse what the provider would reject or silently change, in its one-line words."""
        if not data.get("provider"):
            return
        options = {name: data.get(name) for name in OPTION_FIELDS}
        for role in ("image", "last_frame"):
            still = data.get(role)
            if still is not None:
                options[f"{role}_bytes"] = still_bytes(still)
        for problem in preflight(data["provider"], options):
            field = problem.field if problem.field in self.fields else None
            self.add_error(field, problem.message)

    def _crop_box(self, image, data) -> "images.CropBox | None":
        """The region to keep, when the image must be cropped to the aspect."""
        size = (image.width, image.height)
        ratio = images.target_ratio(data["aspect"], size)
        if images.fits_ratio(size, ratio) or data.get("framing") != Job.Framing.CROP:
            return None
        sent = [data.get(f"crop_{side}") for side in ("left", "top", "width", "height")]
        if any(value is None for value in sent):
            return images.centred_crop(size, ratio)
        try:
            return images.checked_crop(size, ratio, images.CropBox(*sent))
        except images.ImageRejected as exc:
            self.add_error("framing", str(exc))
            return None

    @property
    def varied(self) -> bool:
        """Whether the creator asked for variations (or got them wrong): keep them in view."""
        names = ("copies", "more_prompts", "more_durations")
        if any(self.errors.get(name) for name in names) if self.is_bound else False:
            return True
        return str(self["copies"].value() or 1) != "1" or any(
            self[name].value() for name in names[1:]
        )

    @property
    def warnings(self) -> list[str]:
        stills = (self.cleaned_data.get("image"), self.cleaned_data.get("last_frame"))
        return [note for still in stills if still for note in getattr(still, "warnings", ())]

    def save(self) -> list[Job]:
        """The jobs (one, or a batch's variations), or none with the limit they would pass
        added as a form error."""
        try:
            return self._save()
        except quotas.QuotaExceeded as exc:
            self.add_error(None, str(exc))
            return []

    def _save(self) -> list[Job]:
        data = self.cleaned_data
        with transaction.atomic():
            image = last = None
            framing = ""
            if data["image"]:
                image = self._stored(data["image"])
                size = (image.width, image.height)
                ratio = images.target_ratio(data["aspect"], size)
                if not images.fits_ratio(size, ratio):
                    framing = data["framing"]
                    image = images.framed(image, ratio=ratio, framing=framing, box=data["crop_box"])
                if data["last_frame"]:
                    last = self._stored(data["last_frame"])
                    if framing:
                        last = images.framed(
                            last, ratio=ratio, framing=framing, box=data["crop_box"]
                        )
            return jobs.create_jobs(
                creator=self.creator,
                variations=data["variations"],
                provider=data["provider"],
                mode=data["mode"],
                negative_prompt=data["negative_prompt"],
                resolution=data["resolution"],
                aspect=data["aspect"],
                framing=framing,
                audio=data["audio"],
                image=image,
                last_frame=last,
                allow_failover=data.get("allow_failover", False),
            )

    def _stored(self, still) -> SourceImage:
        return still if isinstance(still, SourceImage) else images.store(self.creator, still)

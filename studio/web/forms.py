"""The create form. The web page and the `generate` command both go through it, so a bad
request gets the same specific message wherever it comes from; it produces the clip's
`ClipOptions` (studio/options.py)."""

from __future__ import annotations

import dataclasses
import random
import unicodedata
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.core.validators import MaxValueValidator
from django.db import transaction
from django.utils.html import format_html, format_html_join

from studio import health, images, jobs, library, quotas
from studio.models import Job, Preferences, SourceImage
from studio.options import (
    DURATIONS,
    MAX_SEED,
    STILL_ROLES,
    Aspect,
    ClipOptions,
    Framing,
    Mode,
    Resolution,
    Still,
)
from studio.providers.capabilities import Problem, preflight
from studio.providers.registry import LABELS, capabilities_of

# The options a form starts with, and falls back to where a value is missing or invalid.
DEFAULTS = ClipOptions(prompt="")
# The options a creator chooses on the form (the rest, framing and stills, Studio works out).
CHOSEN = tuple(
    f.name for f in dataclasses.fields(ClipOptions) if f.name not in ("framing", *STILL_ROLES)
)


def variations(
    options: ClipOptions,
    *,
    copies: int,
    more_prompts: str = "",
    more_durations: list[int] | tuple[int, ...] = (),
    seeded: bool,
) -> list[ClipOptions]:
    """The clips of a batch: every prompt line, at every duration, in every copy.

    Copies differ by seed: consecutive seeds from the one given, or from a random one, so
    each clip can be made again; at a provider that takes no seed they differ by chance.
    """
    prompts = [options.prompt, *prompt_lines(more_prompts)]
    durations = [
        options.duration,
        *(d for d in sorted(set(more_durations)) if d != options.duration),
    ]
    seeds: list[int | None]
    if copies > 1 and seeded:
        first = options.seed if options.seed is not None else random.randrange(MAX_SEED - copies)
        seeds = [(first + i) % (MAX_SEED + 1) for i in range(copies)]
    else:
        seeds = [options.seed] * copies
    return [
        options.replace(prompt=p, duration=d, seed=s)
        for p in prompts
        for d in durations
        for s in seeds
    ]


class StillIdForm(forms.Form):
    """The id of a still already on the page, sent along with an upload."""

    image_id = forms.IntegerField(required=False, min_value=1)


def prompt_lines(more_prompts: str) -> list[str]:
    """The extra prompts of a batch: one per non-empty line."""
    return [line.strip() for line in more_prompts.splitlines() if line.strip()]


# Unicode's embeddings, overrides and isolates: they reorder how text is shown, so a prompt
# could read one way on the page and another to the provider. (The marks U+200E and U+200F
# reorder nothing already written, and stay.)
DIRECTION_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
KEPT_CONTROLS = frozenset("\n\t")


def refuse_direction_controls(text: str) -> None:
    for char in text:
        if char in DIRECTION_CONTROLS:
            raise forms.ValidationError(
                f"Remove the invisible text-direction control (U+{ord(char):04X} "
                f"{unicodedata.name(char)}) from this text: it can make the text read "
                "differently from what is sent.",
                code="direction_control",
            )


class PromptField(forms.CharField):
    """Text for a provider: C0 and C1 control characters (and DEL) are taken out, newline and
    tab kept (a browser's CRLF becomes LF); text-direction controls are refused."""

    default_validators = [refuse_direction_controls]

    def to_python(self, value: Any) -> str:
        text = super().to_python(value) or ""
        kept = (c for c in text if c in KEPT_CONTROLS or unicodedata.category(c) != "Cc")
        return "".join(kept).strip() if self.strip else "".join(kept)


def _choice_error(what: str, allowed: str) -> dict[str, str]:
    return {"invalid_choice": f"{what} must be {allowed}; %(value)s is not allowed."}


class LimitedChoice(forms.RadioSelect):
    """Choices as radio buttons (the page draws them as segments, tiles or cards); those the
    chosen provider cannot make are shown but disabled, except the one chosen: it stays, and
    is sent, so a provider switch never drops it (the panel explains it and offers the fix)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled_values: set[str] = set()

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.disabled_values and not option["selected"]:
            option["attrs"]["disabled"] = True
        return option

    def _render(self, template_name: str, context: dict[str, Any], renderer: Any = None) -> str:
        """One radio button as Django's own template writes it (`choice.tag` on the page),
        without a template render per button: the create page has about forty of them."""
        option = context["widget"]
        if template_name != self.option_template_name or option.get("wrap_label"):
            rendered: str = super()._render(template_name, context, renderer)  # type: ignore[misc]
            return rendered
        return format_html(
            '<input type="{}" name="{}" value="{}"{}>',
            option["type"],
            option["name"],
            str(option["value"]),
            _attrs(option["attrs"]),
        )


def _attrs(attrs: dict[str, Any]) -> str:
    """Attributes as django/forms/widgets/attrs.html writes them, in their order."""
    return format_html_join(
        "",
        "{}",
        (
            (format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value),)
            for name, value in attrs.items()
            if value is not False and value is not None
        ),
    )


# The crop frame's hidden inputs, by the words a creator knows them by.
CROP_SIDES = {"left": "left edge", "top": "top edge", "width": "width", "height": "height"}
# Hidden inputs, and the visible part of the page that shows their errors.
HIDDEN_SHOWN_BY = {
    "image_id": "image",
    "last_frame_id": "last_frame",
    **{f"crop_{side}": "framing" for side in CROP_SIDES},
}
GONE = "That image is no longer available; upload it again."


def _crop_field(side: str) -> forms.IntegerField:
    return forms.IntegerField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": f"The crop frame's {CROP_SIDES[side]} must be a whole number of "
            "pixels; place the frame again."
        },
    )


def _all_providers() -> list[tuple[str, str]]:
    return list(LABELS.items())


class JobForm(forms.Form):
    """Everything a job needs. A still arrives either as a file (the CLI, or a browser
    without JavaScript) or as the id of one the creator uploaded already (the create page
    uploads on selection, so problems show at once and a form error never loses the file)."""

    mode = forms.ChoiceField(
        choices=Mode.choices,
        initial=DEFAULTS.mode,
        widget=LimitedChoice,
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
    prompt = PromptField(
        max_length=2000,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "Describe the motion: slow push in as the mist lifts"}
        ),
        error_messages={"required": "Write a prompt: describe the motion you want."},
        help_text="Describe what moves and how the camera moves; a camera move below writes "
        "one in.",
    )
    negative_prompt = PromptField(
        max_length=1000,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "blur, text, watermark"}),
    )
    provider = forms.ChoiceField(
        choices=_all_providers,
        widget=LimitedChoice,
        error_messages=_choice_error("Provider", "one of those listed"),
    )
    duration = forms.TypedChoiceField(
        choices=[(d, f"{d} s") for d in DURATIONS],
        coerce=int,
        initial=DEFAULTS.duration,
        widget=LimitedChoice,
        error_messages=_choice_error("Duration", "4, 6 or 8 seconds"),
    )
    resolution = forms.ChoiceField(
        choices=Resolution.choices,
        initial=DEFAULTS.resolution,
        widget=LimitedChoice,
        error_messages=_choice_error("Resolution", "720p or 1080p"),
    )
    aspect = forms.ChoiceField(
        choices=Aspect.choices,
        initial=DEFAULTS.aspect,
        widget=LimitedChoice,
        error_messages=_choice_error("Aspect ratio", "16:9, 9:16 or auto"),
    )
    audio = forms.BooleanField(
        required=False,
        initial=DEFAULTS.audio,
        label="Sound",
        widget=forms.CheckboxInput(attrs={"role": "switch"}),
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Same seed, same result. Leave empty for a random one.",
    )
    framing = forms.ChoiceField(
        required=False,
        choices=Framing.choices,
        initial=Framing.CROP,
        widget=forms.RadioSelect,
        label="When the image does not fit the aspect",
        error_messages=_choice_error("Framing", "crop or pad"),
    )
    # The crop frame, in the stored still's pixels. Its range is checked against the image
    # (images.checked_crop), which can say where the frame is; the framing shows the errors.
    crop_left = _crop_field("left")
    crop_top = _crop_field("top")
    crop_width = _crop_field("width")
    crop_height = _crop_field("height")
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
    more_prompts = PromptField(
        required=False,
        max_length=2000 * 10,
        label="More prompts",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "One per line"}),
        help_text="One per line; each makes its own clips with the same settings.",
    )
    more_durations = forms.TypedMultipleChoiceField(
        required=False,
        choices=[(d, f"{d} s") for d in DURATIONS],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Also at",
    )

    def __init__(
        self, *args: Any, creator: User, refused: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.creator = creator
        # Files dropped while they streamed in, for their size (studio/web/uploads.py).
        self.refused = refused or {}
        self.limits = quotas.limits_of(creator)
        # Set by clean(): the options as chosen (each valid value, the default where one is
        # missing or invalid), what pre-flight found, and the batch of variations.
        self.options = DEFAULTS
        self.problems: list[Problem] = []
        self.batch: list[ClipOptions] = []
        self._variation_args: dict[str, Any] = {"copies": 1}
        self._stored_stills: dict[str, SourceImage] = {}
        self._hidden_errors: dict[str, list[str]] = {}
        if not settings.STUDIO_FAILOVER:
            del self.fields["allow_failover"]
        # Counts are bounded here, before any list of clips is built (settings are read per
        # form, not at import).
        most = settings.STUDIO_MAX_BATCH
        copies = self.fields["copies"]
        copies.validators.append(
            MaxValueValidator(
                most, f"A batch can have at most {most} clips; ask for {most} copies or fewer."
            )
        )
        copies.widget.attrs["max"] = most
        self.fields["provider"].initial = settings.STUDIO_PROVIDER
        unavailable = health.unavailable_reasons()
        for name in LABELS:
            if not self.limits.allows_provider(name):
                unavailable[name] = "your account may not use it; ask the studio's admin."
        self.unavailable = {name: reason for name, reason in unavailable.items() if reason}
        provider = self.fields["provider"]
        assert isinstance(provider, forms.ChoiceField)
        provider.widget.disabled_values = set(self.unavailable)
        provider.choices = _all_providers()

    # ----------------------------------------------------------------------- cleaning

    def clean_provider(self) -> str:
        name: str = self.cleaned_data["provider"]
        if name in self.unavailable:
            raise forms.ValidationError(
                f"{LABELS[name]} is not available: {self.unavailable[name].rstrip('.')}."
            )
        return name

    def clean_resolution(self) -> str:
        resolution: str = self.cleaned_data["resolution"]
        if refusal := self.limits.resolution_refusal(resolution):
            raise forms.ValidationError(refusal)
        return resolution

    def clean_more_prompts(self) -> str:
        more_prompts: str = self.cleaned_data["more_prompts"]
        lines = prompt_lines(more_prompts)
        most = settings.STUDIO_MAX_BATCH
        if len(lines) > most - 1:
            raise forms.ValidationError(
                f"A batch can have at most {most} clips: that is at most {most - 1} more "
                f"prompts, not {len(lines)}."
            )
        if any(len(line) > 2000 for line in lines):
            raise forms.ValidationError("Each prompt can be at most 2000 characters.")
        return more_prompts

    def clean_framing(self) -> str:
        return self.cleaned_data["framing"] or Framing.CROP

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # A hidden input's own error would be shown nowhere: taken out here, and given to
        # the part of the page it belongs to when its value is used (else it does not count).
        self._hidden_errors = {
            name: [str(e) for e in self.errors.pop(name)]
            for name in HIDDEN_SHOWN_BY
            if name in self.errors
        }
        # Stills uploaded already, by id: kept on the page whatever else is wrong.
        self._stored_stills = {}
        for role in STILL_ROLES:
            if stored_id := data.get(f"{role}_id"):
                found = SourceImage.objects.filter(owner=self.creator, pk=stored_id).first()
                if found is not None:
                    self._stored_stills[role] = found
        mode = data.get("mode")
        needs_image = mode in (Mode.IMAGE, Mode.FIRST_LAST)
        image = self._clean_still("image", needs_image, "Choose an image to animate.")
        last = None
        if mode == Mode.FIRST_LAST:
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
        # Read before our own errors below take fields out of cleaned_data.
        values: dict[str, Any] = {name: data.get(name, getattr(DEFAULTS, name)) for name in CHOSEN}
        values["prompt"] = values["prompt"] or ""
        values.update({role: _as_still(data.get(role)) for role in STILL_ROLES})
        self.options = ClipOptions(**values)
        self._variation_args = {
            "copies": data.get("copies") or 1,
            "more_prompts": data.get("more_prompts") or "",
            "more_durations": data.get("more_durations") or [],
        }
        if image and data.get("aspect"):
            data["crop_box"] = self._crop_box(image, data)
        if data.get("provider"):
            self._preflight(data["provider"], self.options)
            self._vary(data["provider"], self.options)
        return data

    def _clean_still(self, name: str, needed: bool, why: str) -> Any:
        """The still as a SourceImage (already stored) or a NormalisedImage (to store)."""
        upload = self.cleaned_data.get(name)
        stored_id = self.cleaned_data.get(f"{name}_id")
        if name in self.refused:
            self.add_error(name, self.refused[name])
            return None
        if not upload and f"{name}_id" in self._hidden_errors:
            self.add_error(name, GONE)
            return None
        if upload:
            try:
                return images.normalise(upload, size=upload.size)
            except images.ImageRejected as exc:
                self.add_error(name, str(exc))
                return None
        if stored_id:
            still = self._stored_stills.get(name)
            if still is None:
                self.add_error(name, GONE)
            return still
        if needed:
            self.add_error(name, why)
        return None

    def _crop_box(self, image: Any, data: dict[str, Any]) -> images.CropBox | None:
        """The region to keep, when the image must be cropped to the aspect."""
        size = (image.width, image.height)
        ratio = images.target_ratio(data["aspect"], size)
        if images.fits_ratio(size, ratio) or data.get("framing") != Framing.CROP:
            return None
        garbled = [m for side in CROP_SIDES for m in self._hidden_errors.get(f"crop_{side}", ())]
        for message in garbled:
            self.add_error("framing", message)
        sent = [data.get(f"crop_{side}") for side in CROP_SIDES]
        if garbled:
            return None
        if all(value is None for value in sent):
            return images.centred_crop(size, ratio)
        if any(value is None for value in sent):
            self.add_error(
                "framing",
                "The crop frame needs its left edge, top edge, width and height; place the "
                "frame again.",
            )
            return None
        left, top, width, height = (value for value in sent if value is not None)
        try:
            return images.checked_crop(size, ratio, images.CropBox(left, top, width, height))
        except images.ImageRejected as exc:
            self.add_error("framing", str(exc))
            return None

    def _preflight(self, provider: str, options: ClipOptions) -> None:
        """Refuse what the provider would reject or silently change, in its one-line words."""
        self.problems = preflight(capabilities_of(provider), options)
        for problem in self.problems:
            field = problem.field if problem.field in self.fields else None
            self.add_error(field, problem.message)

    def _vary(self, provider: str, options: ClipOptions) -> None:
        """The batch's variations, each within the limits of a prompt and the provider."""
        self.batch = []
        if self.has_error("copies") or self.has_error("more_prompts"):
            return
        count = self.batch_size(options)
        if count > settings.STUDIO_MAX_BATCH:
            self.add_error(
                "copies",
                f"That makes {count} clips; a batch can have at most {settings.STUDIO_MAX_BATCH}.",
            )
        else:
            self.batch = self.variations_of(options, seeded=capabilities_of(provider).seed)
        for duration in set(self._variation_args["more_durations"]) - {options.duration}:
            caps = capabilities_of(provider)
            for problem in preflight(caps, options.replace(duration=duration)):
                if problem.field == "duration":
                    self.add_error("more_durations", f"At {duration} s: {problem.message}")

    # ----------------------------------------------------------------------- reading

    def batch_size(self, options: ClipOptions) -> int:
        """How many clips the variations make, counted without making them."""
        args = self._variation_args
        durations = {options.duration, *args.get("more_durations", ())}
        prompts = 1 + len(prompt_lines(args.get("more_prompts", "")))
        copies: int = args["copies"]
        return prompts * len(durations) * copies

    def variations_of(self, options: ClipOptions, *, seeded: bool) -> list[ClipOptions]:
        """`options` in every variation the form asks for (copies, prompts, durations)."""
        return variations(options, seeded=seeded, **self._variation_args)

    def kept_stills(self) -> dict[str, SourceImage]:
        """Stills already uploaded, to show again when the form comes back with an error."""
        return self._stored_stills

    def limit_to(self, provider: str) -> None:
        """Show only what `provider` can make (the rest stays visible, disabled)."""
        caps = capabilities_of(provider)
        disabled = {
            "duration": {str(d) for d in DURATIONS if d not in caps.durations},
            "resolution": {
                r
                for r in Resolution.values
                if r not in caps.resolutions or not self.limits.allows_resolution(r)
            },
            "aspect": {a for a in Aspect.values if a not in caps.aspects},
            "mode": {m for m in Mode.values if m not in caps.modes},
        }
        for name, values in disabled.items():
            widget = self.fields[name].widget
            assert isinstance(widget, LimitedChoice)
            widget.disabled_values = values

    def disabled_choices(self) -> dict[str, list[str]]:
        """The choices `limit_to` disabled, by field, for the page to apply."""
        return {
            name: sorted(field.widget.disabled_values)
            for name, field in self.fields.items()
            if isinstance(field.widget, LimitedChoice) and name != "provider"
        }

    @property
    def varied(self) -> bool:
        """Whether the creator asked for variations (or got them wrong): keep them in view."""
        names = ("copies", "more_prompts", "more_durations")
        if self.is_bound and any(self.errors.get(name) for name in names):
            return True
        return str(self["copies"].value() or 1) != "1" or any(
            self[name].value() for name in names[1:]
        )

    @property
    def warnings(self) -> list[str]:
        stills = (self.cleaned_data.get("image"), self.cleaned_data.get("last_frame"))
        return [note for still in stills if still for note in getattr(still, "warnings", ())]

    # ----------------------------------------------------------------------- saving

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
            stills = {
                "image": Still.of(image) if image else None,
                "last_frame": Still.of(last) if last else None,
            }
            return jobs.create_jobs(
                creator=self.creator,
                provider=data["provider"],
                batch=[options.replace(framing=framing, **stills) for options in self.batch],
                allow_failover=data.get("allow_failover", False),
            )

    def _stored(self, still: SourceImage | images.NormalisedImage) -> SourceImage:
        return still if isinstance(still, SourceImage) else images.store(self.creator, still)


def _as_still(still: SourceImage | images.NormalisedImage | None) -> Still | None:
    """A checked still as the options name it: stored, or (from the CLI) not stored yet."""
    if still is None:
        return None
    if isinstance(still, SourceImage):
        return Still.of(still)
    return Still(
        id=None,
        name="",
        content_type=still.content_type,
        width=still.width,
        height=still.height,
        size_bytes=len(still.data),
    )


class NotificationsForm(forms.Form):
    """Whether the creator is e-mailed when a clip, or a batch's last clip, ends, and where
    (their account's address, which the form can set)."""

    email_when_ready = forms.BooleanField(
        required=False, label="E-mail me when a clip or batch is ready"
    )
    email = forms.EmailField(required=False, label="E-mail address")

    def __init__(self, *args: Any, creator: User, **kwargs: Any) -> None:
        self.creator = creator
        wanted = Preferences.objects.filter(creator=creator, email_when_ready=True).exists()
        kwargs.setdefault("initial", {"email_when_ready": wanted, "email": creator.email})
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("email_when_ready") and not (data.get("email") or self.creator.email):
            self.add_error("email", "Give the address to send them to.")
        return data

    def save(self) -> Preferences:
        data = self.cleaned_data
        if data["email"] and data["email"] != self.creator.email:
            self.creator.email = data["email"]
            self.creator.save(update_fields=["email"])
        preferences, _ = Preferences.objects.update_or_create(
            creator=self.creator, defaults={"email_when_ready": data["email_when_ready"]}
        )
        return preferences


class LibraryForm(forms.Form):
    """The library's filters and search, read from the URL (so a filtered view can be
    bookmarked). A value that is not one of the choices is ignored, not an error page."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search prompts",
        widget=forms.TextInput({"type": "search", "placeholder": "Search your prompts"}),
    )
    show = forms.ChoiceField(required=False, choices=library.Show.CHOICES, label="Show")
    provider = forms.ChoiceField(
        required=False, choices=lambda: [("", "Any provider"), *LABELS.items()], label="Provider"
    )
    aspect = forms.ChoiceField(
        required=False,
        choices=[("", "Any aspect"), (Aspect.LANDSCAPE, "16:9"), (Aspect.PORTRAIT, "9:16")],
        label="Aspect",
    )
    resolution = forms.ChoiceField(
        required=False, choices=[("", "Any resolution"), *Resolution.choices], label="Resolution"
    )
    audio = forms.ChoiceField(
        required=False,
        choices=[("", "With or without sound"), ("with", "With sound"), ("without", "Silent")],
        label="Sound",
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    favourites = forms.BooleanField(required=False, label="Favourites only")
    older_than = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput
    )

    def filters(self) -> library.Filters:
        """The filters asked for, each invalid one left out."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        audio = {"with": True, "without": False}.get(data.get("audio") or "")
        return library.Filters(
            show=data.get("show") or "",
            provider=data.get("provider") or "",
            aspect=data.get("aspect") or "",
            resolution=data.get("resolution") or "",
            audio=audio,
            since=data.get("since"),
            until=data.get("until"),
            favourites=bool(data.get("favourites")),
            q=(data.get("q") or "").strip(),
        )

    def cursor(self) -> int | None:
        """Where the page starts: the tiles older than this job (None: the newest)."""
        self.is_valid()
        value: int | None = self.cleaned_data.get("older_than")
        return value


def _row_id(value: str) -> int:
    """A row id: ASCII digits within a database integer (ValueError otherwise)."""
    if not (value.isascii() and value.isdigit() and 0 < int(value) < 2**63):
        raise ValueError(value)
    return int(value)


class SelectionForm(forms.Form):
    """Clips chosen in the library (checkboxes named `clip`)."""

    clip = forms.TypedMultipleChoiceField(coerce=lambda value: _row_id(value), required=True)

    def __init__(self, *args: Any, creator: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creator = creator
        field = self.fields["clip"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.error_messages["required"] = "Choose at least one clip."
        # Any id is a choice; clean_clip keeps the creator's own.
        field.valid_value = lambda value: True  # type: ignore[method-assign]

    def clean_clip(self) -> list[int]:
        ids: list[int] = self.cleaned_data["clip"]
        if len(ids) > 5000:
            raise forms.ValidationError("Choose at most 5,000 clips at once.")
        return ids

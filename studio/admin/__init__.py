"""The Django admin, where the studio's money is run (the spending dashboard is in
dashboard.py).

Every change to usage, a creator's standing or a job goes through its domain module
(`quotas`, `jobs`); the admin never edits a balance or a status by hand.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from studio import accounts, images, jobs, pricing, quotas, spending
from studio.models import (
    Clip,
    Creator,
    Job,
    LedgerEntry,
    LocalRender,
    Price,
    ProviderStatus,
    Quota,
    SourceImage,
    Usage,
)
from studio.providers.registry import LABELS


class StudioAdmin(admin.ModelAdmin):
    """What every Studio admin shares: an action's selection is read through a form field
    before any query, so an id that is no number (or too big for the column) is explained
    instead of failing in the database."""

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        field = selected_id_field(self.model)
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                field.clean(value)
        except ValidationError:
            self.message_user(
                request, "The selected rows could not be read; select them again.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


def selected_id_field(model: type[models.Model]) -> forms.Field:
    """The form field that reads one of `model`'s primary keys as sent by a changelist."""
    pk = model._meta.pk
    if isinstance(pk, models.UUIDField):
        return forms.UUIDField()
    _, most = connection.ops.integer_field_range(pk.get_internal_type())
    return forms.IntegerField(min_value=1, max_value=most)


# Accounts


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(StudioAdmin, UserAdmin):
    """Django's user admin, except that an account with money history is deactivated
    instead of deleted (studio/accounts.py): its ledger, jobs and clips stay."""

    delete_confirmation_template = "admin/auth/user/delete_confirmation.html"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # One at a time, through the delete page, which says what will happen to each.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        if len(objs) == 1 and accounts.has_money_history(objs[0]):
            return [], {}, set(), []  # nothing is deleted: the account is deactivated
        return super().get_deleted_objects(objs, request)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        if user is None or not accounts.has_money_history(user):
            return super().delete_view(request, object_id, extra_context)
        if not self.has_delete_permission(request, user):
            raise PermissionDenied
        if request.method != "POST" or not request.POST.get("post"):
            return super().delete_view(
                request, object_id, {**(extra_context or {}), "deactivates": True}
            )
        accounts.delete_account(user)
        self.log_change(request, user, "Deactivated instead of deleted: it has money history.")
        self.message_user(
            request,
            f"{user} has money history, so the account was deactivated instead of deleted: it "
            "can no longer sign in, and its ledger, jobs and clips stay.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:auth_user_changelist"))

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        accounts.delete_account(obj)


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class SignInAttemptAdmin(StudioAdmin, AccessAttemptAdmin):
    """django-axes' failed sign-ins, by account and address: deleting a locked-out row
    unlocks that pair at once."""


# Creators


def _money(usd: Decimal) -> str:
    # Annotated sums come back from SQLite with a float's digits: shown to the cent.
    return f"${usd:.2f}"


def _labels(names: Iterable[str], choices: dict[str, str], everything: str = "all") -> str:
    return ", ".join(choices.get(name, name) for name in names) if names else everything


class LimitFilter(admin.SimpleListFilter):
    title = "limits this month"
    parameter_name = "limit"
    SHARES = {"near": 80, "over": 100}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("near", "Near a limit (80% or more)"),
            ("over", "At or over a limit (100%)"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        percent = self.SHARES.get(self.value() or "")
        return spending.using_at_least(queryset, percent) if percent else queryset


class SuspendedFilter(admin.SimpleListFilter):
    title = "suspended"
    parameter_name = "suspended"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Suspended"), ("no", "Not suspended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(is_suspended=self.value() == "yes")
        return queryset


class LimitsForm(forms.ModelForm):
    """A creator's own limits; an empty field is the site's default, which it names."""

    monthly_budget = forms.DecimalField(
        required=False, min_value=0, max_digits=10, decimal_places=2, label="Monthly budget"
    )
    allowed_providers = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple
    )
    allowed_resolutions = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, choices=Job.Resolution.choices
    )

    class Meta:
        model = Quota
        fields = [
            "monthly_budget",
            "monthly_seconds",
            "concurrent_jobs",
            "allowed_providers",
            "allowed_resolutions",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        providers = LABELS
        allowed = self.fields["allowed_providers"]
        assert isinstance(allowed, forms.MultipleChoiceField)
        allowed.choices = list(providers.items())
        resolutions = dict(Job.Resolution.choices)
        defaults = {
            "monthly_budget": f"${Decimal(settings.STUDIO_DEFAULT_MONTHLY_BUDGET):.2f} (USD)",
            "monthly_seconds": f"{settings.STUDIO_DEFAULT_MONTHLY_SECONDS} s of video",
            "concurrent_jobs": f"{settings.STUDIO_DEFAULT_CONCURRENT_JOBS} jobs at once",
            "allowed_providers": _labels(
                settings.STUDIO_DEFAULT_PROVIDERS, providers, "every provider"
            ),
            "allowed_resolutions": _labels(
                settings.STUDIO_DEFAULT_RESOLUTIONS, resolutions, "every resolution"
            ),
        }
        for name, default in defaults.items():
            empty = "None ticked" if name.startswith("allowed") else "Empty"
            self.fields[name].help_text = f"{empty}: the site default, {default}."


class LimitsInline(admin.StackedInline):
    model = Quota
    form = LimitsForm
    verbose_name = verbose_name_plural = "limits"
    can_delete = False
    extra = 1
    max_num = 1


class GrantForm(forms.Form):
    usd = forms.DecimalField(
        label="Extra budget (USD)",
        min_value=Decimal("0.01"),
        max_digits=8,
        decimal_places=2,
        error_messages={
            "required": "Enter the extra budget in dollars, for instance 5.00.",
            "invalid": "Enter the extra budget in dollars, for instance 5.00.",
            "min_value": "An extra budget must be at least $0.01.",
            "max_decimal_places": "Give the extra budget to the cent: at most 2 decimal places.",
            "max_digits": "An extra budget can be at most $999999.99.",
            "max_whole_digits": "An extra budget can be at most $999999.99.",
        },
    )


@admin.register(Creator)
class CreatorAdmin(StudioAdmin):
    """Every account with this month's spend against its limits. Accounts themselves are
    edited under Users; here only the limits, and the allowance through the actions."""

    list_display = ["username", "spend", "seconds", "running", "providers", "resolutions",
                    "suspended"]  # fmt: skip
    list_filter = [LimitFilter, SuspendedFilter]
    list_select_related = ["quota"]
    search_fields = ["username", "email"]
    actions = ["grant_budget", "reset_month", "suspend", "resume"]
    fields = ["account", "this_month", "standing", "history"]
    readonly_fields = ["account", "this_month", "standing", "history"]
    inlines = [LimitsInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Creator]:
        return spending.with_meter(super().get_queryset(request), quotas.this_month())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Nothing of the account is edited here; saving it would only put back stale values.
        pass

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Only the limits are written: saving the whole row would put back a running-jobs
        # count or suspension that studio/quotas.py changed since the page was loaded. The
        # row may be created at this moment by a submit too; get_or_create lets one win.
        for limits in formset.save(commit=False):
            quota, _ = Quota.objects.get_or_create(creator_id=form.instance.pk)
            Quota.objects.filter(pk=quota.pk).update(
                **{name: getattr(limits, name) for name in LimitsForm.Meta.fields}
            )
            # A limit raised: the jobs waiting for a slot start now, not at the follower's pass.
            quotas.admit(form.instance.pk)

    @admin.display(description="spent this month", ordering="spent_usd")
    def spend(self, creator: Any) -> str:
        share = f" ({creator.spent_usd / creator.budget_usd:.0%})" if creator.budget_usd else ""
        return f"{_money(creator.spent_usd)} of {_money(creator.budget_usd)}{share}"

    @admin.display(description="seconds", ordering="used_seconds")
    def seconds(self, creator: Any) -> str:
        return f"{creator.used_seconds} s of {creator.seconds_limit} s"

    @admin.display(description="running", ordering="running")
    def running(self, creator: Any) -> str:
        waiting = f" · {creator.waiting} waiting" if creator.waiting else ""
        return f"{creator.running} of {creator.concurrent_limit}{waiting}"

    @admin.display(description="providers")
    def providers(self, creator: Any) -> str:
        quota = getattr(creator, "quota", None)
        names = (quota and quota.allowed_providers) or settings.STUDIO_DEFAULT_PROVIDERS
        return _labels(names, LABELS)

    @admin.display(description="resolutions")
    def resolutions(self, creator: Any) -> str:
        quota = getattr(creator, "quota", None)
        names = (quota and quota.allowed_resolutions) or settings.STUDIO_DEFAULT_RESOLUTIONS
        return _labels(names, dict(Job.Resolution.choices))

    @admin.display(description="suspended", boolean=True, ordering="is_suspended")
    def suspended(self, creator: Any) -> bool:
        return bool(creator.is_suspended)

    @admin.display(description="account")
    def account(self, creator: Any) -> str:
        url = reverse("admin:auth_user_change", args=[creator.pk])
        return format_html('{} (<a href="{}">edit the account under Users</a>)', creator, url)

    @admin.display(description="this month")
    def this_month(self, creator: Any) -> str:
        meter = quotas.meter(creator)
        granted = f" (${meter.limits.monthly_budget} plus ${meter.granted} granted)"
        return (
            f"${meter.usd} of ${meter.budget}{granted if meter.granted else ''} · "
            f"{meter.seconds} s of {meter.limits.monthly_seconds} s · "
            f"{meter.running} of {meter.limits.concurrent_jobs} running"
            + (f" · {meter.waiting} waiting for a slot" if meter.waiting else "")
        )

    @admin.display(description="standing")
    def standing(self, creator: Any) -> str:
        if creator.is_suspended:
            return "Suspended: no new jobs. Resume from the creators list's actions."
        return "Active. Suspend from the creators list's actions."

    @admin.display(description="history")
    def history(self, creator: Any) -> str:
        return format_html(
            '<a href="{}?creator__id__exact={}">Ledger entries</a> · '
            '<a href="{}?creator__id__exact={}">Jobs</a>',
            reverse("admin:studio_ledgerentry_changelist"), creator.pk,
            reverse("admin:studio_job_changelist"), creator.pk,
        )  # fmt: skip

    def has_grant_permission(self, request: HttpRequest) -> bool:
        # Money for an account takes its own permission, not just the right to edit limits.
        return request.user.has_perm("studio.grant_budget")

    def _own(self, request: HttpRequest, creator: Creator, refusal: str) -> bool:
        """Whether `creator` is the admin's own account (refused, with `refusal`)."""
        if creator.pk != request.user.pk:
            return False
        self.message_user(request, refusal, messages.ERROR)
        return True

    @admin.action(description="Grant extra budget this month", permissions=["grant"])
    def grant_budget(
        self, request: HttpRequest, queryset: QuerySet[Creator]
    ) -> TemplateResponse | None:
        form = GrantForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": "Grant extra budget",
                "opts": self.opts,
                "creators": queryset,
                "form": form,
                "month": quotas.this_month(),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/studio/creator/grant.html", context)
        usd = form.cleaned_data["usd"]
        month = f"{quotas.this_month():%B %Y}"
        for creator in queryset:
            if self._own(
                request,
                creator,
                f"No extra budget for {creator}: nobody grants their own account money; ask "
                "another admin.",
            ):
                continue
            quotas.grant(creator, usd, by=request.user.get_username())
            self.log_change(request, creator, f"Granted ${usd} extra budget for {month}.")
            meter = quotas.meter(creator)
            self.message_user(
                request,
                f"Granted {creator} ${usd} extra for {month}: their "
                f"budget this month is now ${meter.budget}.",
                messages.SUCCESS,
            )
        return None

    @admin.action(description="Reset this month's spend and seconds", permissions=["grant"])
    def reset_month(self, request: HttpRequest, queryset: QuerySet[Creator]) -> None:
        for creator in queryset:
            if self._own(
                request,
                creator,
                f"Month not reset for {creator}: nobody resets their own account's spend; ask "
                "another admin.",
            ):
                continue
            before = quotas.meter(creator)
            quotas.reset_month(creator, by=request.user.get_username())
            after = quotas.meter(creator)
            change = f"${before.usd} → ${after.usd}, {before.seconds} s → {after.seconds} s"
            self.log_change(request, creator, f"Reset {quotas.this_month():%B %Y}: {change}.")
            held = " (what jobs still running hold)" if after.usd or after.seconds else ""
            self.message_user(
                request, f"Reset {creator}'s month: {change}{held}.", messages.SUCCESS
            )

    @admin.action(description="Suspend: no new jobs", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Creator]) -> None:
        for creator in queryset:
            if quotas.suspend(creator, by=request.user.get_username()):
                self.message_user(
                    request,
                    f"Suspended {creator}: no new jobs until resumed; jobs running now finish.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{creator} was already suspended.", messages.WARNING)

    @admin.action(description="Resume", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Creator]) -> None:
        for creator in queryset:
            if quotas.resume(creator, by=request.user.get_username()):
                self.message_user(request, f"Resumed {creator}.", messages.SUCCESS)
            else:
                self.message_user(request, f"{creator} was not suspended.", messages.WARNING)


# Jobs


class ProviderFilter(admin.SimpleListFilter):
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(provider=self.value()) if self.value() else queryset


class BatchFilter(admin.SimpleListFilter):
    title = "batch"
    parameter_name = "batch"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "In a batch"), ("no", "On its own")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(batch__isnull=self.value() == "no")
        return queryset


@admin.register(Job)
class JobAdmin(StudioAdmin):
    list_display = ["id", "creator", "status", "provider_name", "duration", "resolution", "cost",
                    "charge", "error_kind", "created_at"]  # fmt: skip
    list_filter = ["status", ProviderFilter, "charge", "error_kind", BatchFilter, "mode",
                   "resolution", ("creator", admin.RelatedOnlyFieldListFilter)]  # fmt: skip
    search_fields = ["prompt", "creator__username", "provider_job_id"]
    raw_id_fields = ["creator", "image", "last_frame"]
    actions = ["cancel_jobs", "retry_jobs"]

    # Status changes only through the job engine (jobs.py), never by editing a row. Nor are
    # jobs deleted: a reserved one would hold its running slot and money for good, and a
    # finished one is the record of what was charged.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # A retry spends the creator's money again: it takes more than the right to look.
        return request.user.has_perm("studio.change_job")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        # Cancelling stops a creator's work and moves money back: more than looking, too.
        return request.user.has_perm("studio.change_job")

    @admin.display(description="provider", ordering="provider")
    def provider_name(self, job: Job) -> str:
        return job.provider_label

    @admin.display(description="cost", ordering="estimated_cost")
    def cost(self, job: Job) -> str:
        return f"${job.estimated_cost}"

    @admin.action(description="Cancel the selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled = sum(1 for job in queryset if jobs.cancel(job))
        skipped = queryset.count() - cancelled
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} job(s) had already finished or were saving their clip.",
                messages.WARNING,
            )  # fmt: skip

    @admin.action(description="Retry the selected failed or cancelled jobs", permissions=["retry"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset.select_related("creator", "image", "last_frame"):
            try:
                new = jobs.retry(job)
            except (ValueError, quotas.QuotaExceeded, pricing.UnknownPrice) as exc:
                self.message_user(
                    request, f"Job #{job.pk} of {job.creator} was not retried: {exc}",
                    messages.WARNING if isinstance(exc, ValueError) else messages.ERROR,
                )  # fmt: skip
            else:
                self.message_user(
                    request,
                    f"Job #{job.pk} of {job.creator} was retried as job #{new.pk} "
                    f"(${new.estimated_cost} reserved).",
                    messages.SUCCESS,
                )


# Prices


@admin.register(Price)
class PriceAdmin(StudioAdmin):
    """The price table. A job keeps the price it was created at, so a change here applies
    to new jobs only."""

    list_display = ["provider", "mode", "resolution", "audio", "usd_per_second", "confirmed",
                    "as_of", "source_start"]  # fmt: skip
    list_editable = ["usd_per_second"]
    list_filter = ["provider", "mode", "resolution", "audio", "confirmed"]
    search_fields = ["provider", "source"]

    @admin.display(description="source", ordering="source")
    def source_start(self, price: Price) -> str:
        # Sources run to a paragraph; the list shows their start, the whole on hover.
        return format_html(
            '<span title="{}">{}</span>', price.source, Truncator(price.source).chars(60)
        )


# Read-only records


class ReadOnlyAdmin(StudioAdmin):
    """Written only by studio/quotas.py; the admin looks, never edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Usage)
class UsageAdmin(ReadOnlyAdmin):
    list_display = ["creator", "month", "usd", "seconds", "granted_usd"]
    list_filter = ["month"]
    search_fields = ["creator__username"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "creator", "kind", "usd", "seconds", "month_name", "job_link",
                    "reason"]  # fmt: skip
    list_filter = ["kind", "month", ("creator", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["creator"]
    search_fields = ["creator__username", "reason"]

    @admin.display(description="month", ordering="month")
    def month_name(self, entry: LedgerEntry) -> str:
        return f"{entry.month:%B %Y}"

    @admin.display(description="job", ordering="job")
    def job_link(self, entry: LedgerEntry) -> str:
        if entry.job_id is None:
            return "—"
        url = reverse("admin:studio_job_change", args=[entry.job_id])
        return format_html('<a href="{}">#{}</a>', url, entry.job_id)


@admin.register(ProviderStatus)
class ProviderStatusAdmin(ReadOnlyAdmin):
    """Written by studio/health.py: a model a provider no longer serves, and each check."""

    list_display = ["provider", "available", "reason", "unavailable_since", "checked_at",
                    "key_ok", "model_ok", "latency_ms", "message"]  # fmt: skip


class MediaAdmin(StudioAdmin):
    """Stored media are made by Studio alone (intake, the worker): the admin looks and may
    delete, through the domain functions that take the files with the rows, but never adds
    or edits a file or its type by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Clip)
class ClipAdmin(MediaAdmin):
    list_display = [
        "id",
        "job",
        "width",
        "height",
        "duration",
        "has_audio",
        "size_bytes",
        "created_at",
    ]
    raw_id_fields = ["job"]

    def delete_model(self, request: HttpRequest, obj: Clip) -> None:
        jobs.delete_clip(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Clip]) -> None:
        for clip in queryset:
            jobs.delete_clip(clip)


@admin.register(SourceImage)
class SourceImageAdmin(MediaAdmin):
    list_display = ["id", "owner", "width", "height", "created_at"]
    raw_id_fields = ["owner"]

    def delete_model(self, request: HttpRequest, obj: SourceImage) -> None:
        images.delete_still(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SourceImage]) -> None:
        for still in queryset:
            images.delete_still(still)


@admin.register(LocalRender)
class LocalRenderAdmin(MediaAdmin):
    """The local renderer's own queue, its side of the provider protocol: a job follows its
    render, so a render is never deleted by hand (cancel the job instead)."""

    list_display = ["id", "client_reference", "status", "progress", "heartbeat_at", "created_at"]
    list_filter = ["status"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""The admin's spending dashboard: spend per day, per provider and per creator in a month,
and how each provider did. The figures come from studio/spending.py."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from studio import quotas, spending


class MonthForm(forms.Form):
    FIRST, LAST = date(2000, 1, 1), date(2999, 12, 1)

    month = forms.DateField(
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        error_messages={
            "required": "Choose a month.",
            "invalid": "Write the month as YYYY-MM, for instance 2026-11.",
        },
    )

    def clean_month(self) -> date:
        month: date = self.cleaned_data["month"]
        if not self.FIRST <= month <= self.LAST:
            raise forms.ValidationError("Choose a month from 2000 to 2999.")
        return month


# The chart's geometry, in SVG user units: room on the left for the dollar axis and below
# for the day numbers.
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_BOTTOM = 720, 220, 56, 24
CHART_FLOOR = CHART_HEIGHT - CHART_BOTTOM


@dataclass(frozen=True)
class Bar:
    day: date
    usd: Decimal
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> float:
        return round(self.x + self.width / 2, 1)


def day_bars(days: list[spending.DaySpend]) -> list[Bar]:
    """One bar a day, the month's biggest day reaching nearly to the top."""
    top = max((day.usd for day in days), default=Decimal("0"))
    slot = (CHART_WIDTH - CHART_LEFT) / max(len(days), 1)
    bars = []
    for n, day in enumerate(days):
        height = float(day.usd / top) * (CHART_FLOOR - 8) if top else 0.0
        x = CHART_LEFT + n * slot + slot * 0.15
        bars.append(
            Bar(day.day, day.usd, round(x, 1), round(CHART_FLOOR - height, 1),
                round(slot * 0.7, 1), round(height, 1))
        )  # fmt: skip
    return bars


@admin.site.admin_view
def dashboard(request: HttpRequest) -> HttpResponse:
    """Spend per day, per provider and per creator, and how each provider did, in a month."""
    if not request.user.has_perm("studio.view_ledgerentry"):
        raise PermissionDenied
    month = quotas.this_month()
    form = MonthForm(request.GET if "month" in request.GET else None, initial={"month": month})
    if form.is_valid():
        month = form.cleaned_data["month"]
    figures = spending.month_figures(month)
    bars = day_bars(figures.days)
    context = {
        **admin.site.each_context(request),
        "title": f"Spending in {month:%B %Y}",
        "form": form,
        "figures": figures,
        "bars": bars,
        "top": max((bar.usd for bar in bars), default=Decimal("0")),
        "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": CHART_LEFT,
                  "floor": CHART_FLOOR},
        "previous": (month - timedelta(days=1)).replace(day=1),
        "next": spending.next_month(month),
        "time_zone": settings.TIME_ZONE,
    }  # fmt: skip
    return TemplateResponse(request, "admin/studio/dashboard.html", context)

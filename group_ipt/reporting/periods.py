"""Reporting periods: DHIS2's period ids (2026, 2026Q4, 202611, 2026W47) and plain date ranges.

Plain Python, shared by the indicators page, the CSV export and the DHIS2 export,
so a period means the same everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from ..base import bounds
from ..base.errors import N_, DomainError


class PeriodError(DomainError):
    """A period that cannot be read; the message shows the formats."""


@dataclass(frozen=True)
class Period:
    """A span of local dates, both ends included; ``dhis2`` is its DHIS2 period id, if it has one."""

    start: date
    end: date
    dhis2: str | None = None

    def __str__(self) -> str:
        return self.dhis2 or f"{self.start.isoformat()}..{self.end.isoformat()}"

    def bounds(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()


_YEAR = re.compile(r"^(\d{4})$", re.ASCII)
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$", re.ASCII)
_MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$", re.ASCII)
_WEEK = re.compile(r"^(\d{4})W(\d{1,2})$", re.ASCII)
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(?:\.\.|/)\s*(\d{4}-\d{2}-\d{2})$", re.ASCII)


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def parse_period(text: str) -> Period:
    """Read a DHIS2 period id or a date range; PeriodError names the text and the formats."""
    text = (text if isinstance(text, str) else "").strip().upper()[:40]
    try:
        if m := _RANGE.match(text):
            return period_between(bounds.parse_date(m[1], field="period"), bounds.parse_date(m[2], field="period"))
        if (
            m := _YEAR.match(text) or _QUARTER.match(text) or _MONTH.match(text) or _WEEK.match(text)
        ) and not bounds.MIN_YEAR <= int(m[1]) <= bounds.MAX_YEAR:
            raise PeriodError(
                N_("The period %(period)s is outside the years this software accepts (%(first)s to %(last)s)."),
                field="period",
                period=text,
                first=str(bounds.MIN_YEAR),
                last=str(bounds.MAX_YEAR),
            )
        if m := _YEAR.match(text):
            year = int(m[1])
            return Period(date(year, 1, 1), date(year, 12, 31), text)
        if m := _QUARTER.match(text):
            year, quarter = int(m[1]), int(m[2])
            return Period(date(year, 3 * quarter - 2, 1), _month_end(year, 3 * quarter), text)
        if m := _MONTH.match(text):
            year, month = int(m[1]), int(m[2])
            return Period(date(year, month, 1), _month_end(year, month), text)
        if m := _WEEK.match(text):
            year, week = int(m[1]), int(m[2])
            start = date.fromisocalendar(year, week, 1)
            return Period(start, start + timedelta(days=6), f"{year}W{week}")
    except bounds.BoundsError as exc:
        if "first" in exc.params:  # out of bounds: say which years are accepted
            raise PeriodError(exc.message, field="period", **exc.params) from exc
        raise PeriodError(
            N_("The period %(period)s does not exist (no such date or week)."), field="period", period=text
        ) from exc
    except ValueError as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(
            N_("The period %(period)s does not exist (no such date or week)."), field="period", period=text
        ) from exc
    raise PeriodError(
        N_(
            "Unknown period %(period)s. Use a year (2026), a quarter (2026Q4), a month (202611), "
            "an ISO week (2026W47) or two dates (2026-01-01..2026-03-31)."
        ),
        field="period",
        period=text or "''",
    )


def period_between(start: date, end: date) -> Period:
    """Return the period from ``start`` to ``end``; PeriodError if it ends before it starts or is out of bounds."""
    for day in (start, end):
        try:
            bounds.check_year(day, field="period")
        except bounds.BoundsError as exc:
            raise PeriodError(exc.message, field="period", **exc.params) from exc
    if end < start:
        raise PeriodError(
            N_("The period ends (%(end)s) before it starts (%(start)s)."),
            field="period",
            start=start.isoformat(),
            end=end.isoformat(),
        )
    return Period(start, end, None)


def quarter_of(day: date) -> Period:
    return parse_period(f"{day.year}Q{(day.month - 1) // 3 + 1}")

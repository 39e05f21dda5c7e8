"""The one reader of dates and whole numbers typed by people (web forms, query strings, CLI).

``date.fromisoformat`` takes years 1 to 9999, so a date far out (``9999-12-31``) or a week
(``9999W52``) passed every check and then overflowed where a day or a week was added; and
``int()`` takes ``1_0``, `` 10`` and digits of other scripts (``str.isdigit`` says yes to
``²``, which ``int()`` then refuses). Everything a person types goes through these two
functions, which accept only plain forms within bounds and raise ``BoundsError`` with a
message to show (a 400 on the web, one line in the CLI).
"""

from __future__ import annotations

import re
from datetime import date

from .errors import N_, DomainError

# Dates this software works with: birth years, screenings, sessions, reports. Far enough
# either side for any programme, and far from the ends of Python's dates, so adding weeks
# or a year to one can never overflow.
MIN_YEAR = 1900
MAX_YEAR = 2199
# SQLite's largest integer: a larger number cannot even be looked up.
MAX_INTEGER = 2**63 - 1

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
_INT = re.compile(r"^-?[0-9]{1,19}$")


class BoundsError(DomainError):
    """A date or a number that cannot be read or is out of bounds; the message says which."""


def parse_date(text: object, *, field: str | None = None) -> date:
    """Return ``text`` (YYYY-MM-DD) as a date between MIN_YEAR and MAX_YEAR, or raise BoundsError."""
    value = text.strip() if isinstance(text, str) else ""
    match = _DATE.match(value)
    if not match:
        raise BoundsError(
            N_("%(date)s is not a date that exists; write it as 2026-03-02."), field=field, date=value[:40] or "?"
        )
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise BoundsError(
            N_("%(date)s is not a date that exists; write it as 2026-03-02."), field=field, date=value
        ) from None
    return check_year(day, field=field, text=value)


def check_year(day: date, *, field: str | None = None, text: str | None = None) -> date:
    """Return ``day`` if its year is within bounds, else raise BoundsError."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise BoundsError(
            N_("%(date)s is outside the years this software accepts (%(first)s to %(last)s)."),
            field=field,
            date=text or day.isoformat(),
            first=str(MIN_YEAR),
            last=str(MAX_YEAR),
        )
    return day


def parse_int(text: object, *, minimum: int = 0, maximum: int = MAX_INTEGER, field: str | None = None) -> int:
    """Return ``text`` (plain ASCII digits, an optional minus) as an int in [minimum, maximum]."""
    if isinstance(text, bool):
        text = ""
    value = str(text).strip() if isinstance(text, (str, int)) else ""
    if not _INT.match(value) or not minimum <= int(value) <= maximum:
        raise BoundsError(
            N_("%(value)s is not a whole number from %(min)s to %(max)s."),
            field=field,
            value=value[:40] or "?",
            min=str(minimum),
            max=str(maximum),
        )
    return int(value)

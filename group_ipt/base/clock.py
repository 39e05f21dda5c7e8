"""Today's date and the time, in one place so tests can set them.

Dates of sessions, screenings and follow-ups are local calendar dates on the
laptop (no time zones: a session is "on Tuesday 3 March" wherever it is).
"""

from __future__ import annotations

from datetime import date, datetime


def today() -> date:
    return date.today()


def now() -> datetime:
    return datetime.now()

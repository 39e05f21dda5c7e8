"""Plan and move the dates of a cycle's weekly group sessions.

Pure functions on local ``datetime.date`` values; no clock, no time zone, no
database. A schedule is a list with one entry per session in order, where
``None`` marks a cancelled session. Blackout dates are days the group cannot
meet (public holidays, market days, a closed venue): a session that would
fall on one moves a week later and the sessions after it follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

WEEK = timedelta(days=7)

# How reschedule moves a session: "only" that one, or "shift" it and every later one. A plain str:
# the mode comes from a form, and reschedule refuses any other value with a ScheduleError.
RESCHEDULE_MODES = ("only", "shift")


class ScheduleError(ValueError):
    """A schedule that cannot be made, with a machine-readable ``reason``.

    Reasons: ``bad_count``, ``bad_weekday``, ``bad_index``, ``bad_mode``,
    ``cancelled``, ``blackout``, ``before_previous``, ``after_next``,
    ``same_date``. ``dates`` holds the dates involved, for the message shown.
    """

    def __init__(self, message: str, *, reason: str, dates: Sequence[date] = ()):
        super().__init__(message)
        self.reason = reason
        self.dates = tuple(dates)


def weekly_dates(first: date, count: int, blackout: Iterable[date] = ()) -> list[date]:
    """Return ``count`` weekly dates on ``first``'s weekday, skipping blackout dates.

    A session that falls on a blackout date moves to the next week, and the
    rest of the sequence continues from there; ``first`` itself may move.

    >>> weekly_dates(date(2026, 3, 2), 2, blackout=[date(2026, 3, 9)])
    [datetime.date(2026, 3, 2), datetime.date(2026, 3, 16)]
    """
    if count < 1:
        raise ScheduleError(f"a cycle needs at least one session, not {count}", reason="bad_count")
    closed = frozenset(blackout)
    dates: list[date] = []
    day = first
    while len(dates) < count:
        if day not in closed:
            dates.append(day)
        day += WEEK
    return dates


def next_weekday_on_or_after(d: date, weekday: int) -> date:
    """Return the first date on or after ``d`` that falls on ``weekday`` (Monday=0).

    >>> next_weekday_on_or_after(date(2026, 3, 4), 0)
    datetime.date(2026, 3, 9)
    """
    if not 0 <= weekday <= 6:
        raise ScheduleError(
            f"weekday must be 0 (Monday) to 6 (Sunday), not {weekday}",
            reason="bad_weekday",
        )
    return d + timedelta(days=(weekday - d.weekday()) % 7)


def _neighbours(dates: Sequence[date | None], index: int) -> tuple[date | None, date | None]:
    """Return the nearest non-cancelled dates before and after ``index``."""
    before = next((d for d in reversed(dates[:index]) if d is not None), None)
    after = next((d for d in dates[index + 1 :] if d is not None), None)
    return before, after


def _skip_blackout(day: date, closed: frozenset[date]) -> date:
    while day in closed:
        day += WEEK
    return day


def check_order(dates: Sequence[date | None]) -> None:
    """Raise ScheduleError unless the non-cancelled dates strictly increase."""
    previous: date | None = None
    for day in dates:
        if day is None:
            continue
        if previous is not None and day == previous:
            raise ScheduleError(
                f"two sessions would be on {day.isoformat()}",
                reason="same_date",
                dates=[day],
            )
        if previous is not None and day < previous:
            raise ScheduleError(
                f"a session on {day.isoformat()} would come before the session on {previous.isoformat()}",
                reason="before_previous",
                dates=[day, previous],
            )
        previous = day


def reschedule(
    dates: Sequence[date | None],
    index: int,
    new_date: date,
    mode: str,
    blackout: Iterable[date] = (),
) -> list[date | None]:
    """Move session ``index`` to ``new_date`` and return the new schedule.

    ``mode="only"`` moves that one session, which must stay between its
    neighbours. ``mode="shift"`` moves it and every later session by the same
    number of days; a later session landing on a blackout date moves a further
    week, and so do the sessions after it. Cancelled sessions (``None``) stay
    cancelled. The input list is not changed.

    >>> d = weekly_dates(date(2026, 3, 2), 3)
    >>> reschedule(d, 1, date(2026, 3, 11), "shift")[1:]
    [datetime.date(2026, 3, 11), datetime.date(2026, 3, 18)]
    """
    if mode not in RESCHEDULE_MODES:
        raise ScheduleError(f"mode must be 'only' or 'shift', not {mode!r}", reason="bad_mode")
    if not 0 <= index < len(dates):
        raise ScheduleError(f"there is no session at position {index}", reason="bad_index")
    old_date = dates[index]
    if old_date is None:
        raise ScheduleError(
            "a cancelled session cannot be moved; add a make-up session instead",
            reason="cancelled",
        )
    closed = frozenset(blackout)
    if new_date in closed:
        raise ScheduleError(
            f"{new_date.isoformat()} is a blackout date",
            reason="blackout",
            dates=[new_date],
        )
    before, after = _neighbours(dates, index)
    if before is not None and new_date <= before:
        raise ScheduleError(
            f"the session would be on or before the previous session ({before.isoformat()})",
            reason="same_date" if new_date == before else "before_previous",
            dates=[new_date, before],
        )

    result = list(dates)
    result[index] = new_date
    if mode == "only":
        if after is not None and new_date >= after:
            raise ScheduleError(
                f"the session would be on or after the next session "
                f"({after.isoformat()}); move the later sessions with it instead",
                reason="same_date" if new_date == after else "after_next",
                dates=[new_date, after],
            )
    else:
        _shift_later(result, index, new_date - old_date, closed)
    check_order(result)
    return result


def _shift_later(result: list[date | None], index: int, offset: timedelta, closed: frozenset[date]) -> None:
    """Move every session after ``index`` by ``offset``, a further week off each blackout date.

    Pushes add up, so a session moved off a blackout date never lands on (or behind)
    the next one: the whole rest of the cycle follows it.
    """
    for i in range(index + 1, len(result)):
        day = result[i]
        if day is None:
            continue
        moved = _skip_blackout(day + offset, closed)
        offset = moved - day
        result[i] = moved


def check_makeup_date(existing: Sequence[date | None], d: date, blackout: Iterable[date] = ()) -> None:
    """Raise ScheduleError if a make-up session cannot be held on ``d``.

    A make-up session is an extra meeting, so it may fall anywhere in the
    cycle, but not on a blackout date or a day that already has a session.
    """
    if d in frozenset(blackout):
        raise ScheduleError(f"{d.isoformat()} is a blackout date", reason="blackout", dates=[d])
    if d in existing:
        raise ScheduleError(
            f"there is already a session on {d.isoformat()}",
            reason="same_date",
            dates=[d],
        )


def makeup_date_ok(existing: Sequence[date | None], d: date, blackout: Iterable[date] = ()) -> bool:
    """Tell whether a make-up session can be held on ``d``."""
    try:
        check_makeup_date(existing, d, blackout)
    except ScheduleError:
        return False
    return True

"""Weekly session dates, blackout dates, rescheduling and make-up sessions."""

from __future__ import annotations

from datetime import date

import pytest

from group_ipt.core.scheduling import (
    ScheduleError,
    check_makeup_date,
    makeup_date_ok,
    next_weekday_on_or_after,
    reschedule,
    weekly_dates,
)


def D(text: str) -> date:
    return date.fromisoformat(text)


def Ds(*texts: str | None) -> list[date | None]:
    return [None if t is None else D(t) for t in texts]


# --- weekly_dates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "count", "blackout", "expected"),
    [
        pytest.param("2026-03-02", 4, [], ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23"], id="plain"),
        pytest.param("2026-03-02", 1, [], ["2026-03-02"], id="one-session"),
        pytest.param(
            # Uganda's Independence Day, a Friday in 2026
            "2026-09-25",
            3,
            ["2026-10-09"],
            ["2026-09-25", "2026-10-02", "2026-10-16"],
            id="public-holiday",
        ),
        pytest.param(
            # a three-week harvest or school break
            "2026-11-30",
            4,
            ["2026-12-14", "2026-12-21", "2026-12-28"],
            ["2026-11-30", "2026-12-07", "2027-01-04", "2027-01-11"],
            id="blackout-run-of-weeks",
        ),
        pytest.param(
            "2026-12-24",
            3,
            ["2026-12-31"],
            ["2026-12-24", "2027-01-07", "2027-01-14"],
            id="year-end",
        ),
        pytest.param("2026-12-25", 2, ["2026-12-25"], ["2027-01-01", "2027-01-08"], id="first-is-blackout"),
        pytest.param("2026-01-29", 3, [], ["2026-01-29", "2026-02-05", "2026-02-12"], id="month-end"),
        pytest.param("2028-02-15", 3, [], ["2028-02-15", "2028-02-22", "2028-02-29"], id="leap-day"),
        pytest.param(
            "2028-02-15", 3, ["2028-02-29"], ["2028-02-15", "2028-02-22", "2028-03-07"], id="leap-day-blackout"
        ),
        pytest.param("2027-02-15", 3, [], ["2027-02-15", "2027-02-22", "2027-03-01"], id="no-leap-day-in-2027"),
        pytest.param(
            # blackout days on other weekdays do not move a Monday group
            "2026-03-02",
            2,
            ["2026-03-03", "2026-03-08", "2026-03-10"],
            ["2026-03-02", "2026-03-09"],
            id="blackout-other-weekdays",
        ),
    ],
)
def test_weekly_dates(first, count, blackout, expected):
    assert weekly_dates(D(first), count, [D(b) for b in blackout]) == Ds(*expected)


def test_weekly_dates_blackout_may_be_a_generator():
    blackout = (D(b) for b in ["2026-03-09", "2026-03-16"])
    assert weekly_dates(D("2026-03-02"), 3, blackout) == Ds("2026-03-02", "2026-03-23", "2026-03-30")


def test_weekly_dates_blackout_defaults_to_none():
    assert weekly_dates(D("2026-03-02"), 2) == Ds("2026-03-02", "2026-03-09")


@pytest.mark.parametrize("count", [0, -1])
def test_weekly_dates_count_below_one(count):
    with pytest.raises(ScheduleError, match="at least one session") as caught:
        weekly_dates(D("2026-03-02"), count, [])
    assert caught.value.reason == "bad_count"


def test_weekly_dates_keep_the_weekday():
    dates = weekly_dates(D("2026-12-24"), 16, [D("2026-12-31"), D("2027-01-07")])
    assert len(dates) == 16
    assert {d.weekday() for d in dates} == {3}
    assert len(set(dates)) == 16


# --- next_weekday_on_or_after ---------------------------------------------------


@pytest.mark.parametrize(
    ("day", "weekday", "expected"),
    [
        ("2026-03-02", 0, "2026-03-02"),  # already a Monday
        ("2026-03-04", 0, "2026-03-09"),  # Wednesday to next Monday
        ("2026-03-08", 0, "2026-03-09"),  # Sunday to the next day
        ("2026-03-02", 6, "2026-03-08"),  # Monday to Sunday
        ("2026-12-31", 0, "2027-01-04"),  # across the year end
        ("2028-02-28", 1, "2028-02-29"),  # onto a leap day
        ("2026-01-31", 4, "2026-02-06"),  # across the month end
    ],
)
def test_next_weekday_on_or_after(day, weekday, expected):
    assert next_weekday_on_or_after(D(day), weekday) == D(expected)


@pytest.mark.parametrize("weekday", [-1, 7])
def test_next_weekday_on_or_after_bad_weekday(weekday):
    with pytest.raises(ScheduleError) as caught:
        next_weekday_on_or_after(D("2026-03-02"), weekday)
    assert caught.value.reason == "bad_weekday"


# --- reschedule ---------------------------------------------------------------

WEEKLY = Ds("2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23")


def test_reschedule_only_moves_one_session():
    dates = list(WEEKLY)
    result = reschedule(dates, 1, D("2026-03-11"), "only")
    assert result == Ds("2026-03-02", "2026-03-11", "2026-03-16", "2026-03-23")
    assert dates == WEEKLY  # the input is left alone


def test_reschedule_shift_moves_later_sessions_too():
    result = reschedule(WEEKLY, 1, D("2026-03-11"), "shift")
    assert result == Ds("2026-03-02", "2026-03-11", "2026-03-18", "2026-03-25")


def test_reschedule_shift_earlier():
    result = reschedule(WEEKLY, 2, D("2026-03-12"), "shift")
    assert result == Ds("2026-03-02", "2026-03-09", "2026-03-12", "2026-03-19")


def test_reschedule_shift_a_whole_week_past_the_next_session():
    result = reschedule(WEEKLY, 1, D("2026-03-16"), "shift")
    assert result == Ds("2026-03-02", "2026-03-16", "2026-03-23", "2026-03-30")


def test_reschedule_shift_keeps_cancelled_sessions_cancelled():
    dates = Ds("2026-03-02", "2026-03-09", None, "2026-03-23")
    assert reschedule(dates, 1, D("2026-03-10"), "shift") == Ds("2026-03-02", "2026-03-10", None, "2026-03-24")


def test_reschedule_shift_reskips_blackout_and_the_rest_follows():
    blackout = [D("2026-03-17")]
    result = reschedule(WEEKLY, 1, D("2026-03-10"), "shift", blackout)
    assert result == Ds("2026-03-02", "2026-03-10", "2026-03-24", "2026-03-31")


def test_reschedule_shift_across_the_year_end():
    dates = weekly_dates(D("2026-12-10"), 4, [])
    blackout = [D("2026-12-25"), D("2027-01-01")]
    result = reschedule(dates, 1, D("2026-12-18"), "shift", blackout)
    assert result == Ds("2026-12-10", "2026-12-18", "2027-01-08", "2027-01-15")


def test_reschedule_shift_across_a_leap_day():
    dates = weekly_dates(D("2028-02-14"), 3, [])
    assert reschedule(dates, 0, D("2028-02-15"), "shift") == Ds("2028-02-15", "2028-02-22", "2028-02-29")


def test_reschedule_shift_does_not_move_earlier_sessions_off_blackout():
    # An earlier session that sits on a day blacked out later stays where it is.
    result = reschedule(WEEKLY, 2, D("2026-03-17"), "shift", [D("2026-03-02")])
    assert result == Ds("2026-03-02", "2026-03-09", "2026-03-17", "2026-03-24")


def test_reschedule_same_date_is_a_copy():
    result = reschedule(WEEKLY, 2, D("2026-03-16"), "shift")
    assert result == WEEKLY
    assert result is not WEEKLY


def test_reschedule_skips_cancelled_neighbours():
    dates = Ds("2026-03-02", None, "2026-03-16", None)
    assert reschedule(dates, 2, D("2026-03-05"), "only") == Ds("2026-03-02", None, "2026-03-05", None)
    assert reschedule(dates, 2, D("2026-04-30"), "only") == Ds("2026-03-02", None, "2026-04-30", None)


@pytest.mark.parametrize(
    ("dates", "index", "new_date", "mode", "blackout", "reason"),
    [
        pytest.param(WEEKLY, 2, "2026-03-08", "only", [], "before_previous", id="only-before-previous"),
        pytest.param(WEEKLY, 2, "2026-03-08", "shift", [], "before_previous", id="shift-before-previous"),
        pytest.param(WEEKLY, 2, "2026-03-09", "only", [], "same_date", id="only-on-previous"),
        pytest.param(WEEKLY, 2, "2026-03-09", "shift", [], "same_date", id="shift-on-previous"),
        pytest.param(WEEKLY, 1, "2026-03-16", "only", [], "same_date", id="only-on-next"),
        pytest.param(WEEKLY, 1, "2026-03-17", "only", [], "after_next", id="only-after-next"),
        pytest.param(WEEKLY, 1, "2026-03-10", "only", ["2026-03-10"], "blackout", id="onto-blackout"),
        pytest.param(WEEKLY, 1, "2026-03-10", "shift", ["2026-03-10"], "blackout", id="shift-onto-blackout"),
        pytest.param(Ds("2026-03-02", None), 1, "2026-03-10", "only", [], "cancelled", id="cancelled"),
        pytest.param(WEEKLY, 4, "2026-03-30", "only", [], "bad_index", id="index-past-end"),
        pytest.param(WEEKLY, -1, "2026-03-30", "only", [], "bad_index", id="negative-index"),
        pytest.param(WEEKLY, 1, "2026-03-10", "later", [], "bad_mode", id="bad-mode"),
    ],
)
def test_reschedule_error(dates, index, new_date, mode, blackout, reason):
    with pytest.raises(ScheduleError) as caught:
        reschedule(dates, index, D(new_date), mode, [D(b) for b in blackout])
    assert caught.value.reason == reason


def test_reschedule_error_names_the_dates():
    with pytest.raises(ScheduleError, match="previous session \\(2026-03-09\\)") as caught:
        reschedule(WEEKLY, 2, D("2026-03-05"), "only")
    assert caught.value.dates == (D("2026-03-05"), D("2026-03-09"))


def test_reschedule_rejects_a_schedule_already_out_of_order():
    dates = Ds("2026-03-02", "2026-03-16", "2026-03-09")
    with pytest.raises(ScheduleError) as caught:
        reschedule(dates, 0, D("2026-03-01"), "only")
    assert caught.value.reason == "before_previous"


def test_schedule_error_is_a_value_error():
    assert issubclass(ScheduleError, ValueError)


# --- make-up sessions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "blackout", "ok"),
    [
        ("2026-03-11", [], True),  # a free Wednesday
        ("2026-03-30", [], True),  # after the last session
        ("2026-03-09", [], False),  # a session is already on that day
        ("2026-03-11", ["2026-03-11"], False),  # blackout
    ],
)
def test_makeup_date_ok(day, blackout, ok):
    existing = Ds("2026-03-02", "2026-03-09", None, "2026-03-23")
    assert makeup_date_ok(existing, D(day), [D(b) for b in blackout]) is ok


@pytest.mark.parametrize(
    ("day", "blackout", "reason"),
    [("2026-03-09", [], "same_date"), ("2026-03-11", ["2026-03-11"], "blackout")],
)
def test_check_makeup_date_reason(day, blackout, reason):
    with pytest.raises(ScheduleError) as caught:
        check_makeup_date(WEEKLY, D(day), [D(b) for b in blackout])
    assert caught.value.reason == reason
    assert caught.value.dates == (D(day),)

"""Attendance over a cycle: absence streaks and follow-up visits, rates, completion, measures due.

Plain functions (no Flask). Rules:

- A member needs a call or home visit after ``absences_for_followup`` (protocol
  file, default 2) *absent* marks in a row over the sessions held. "Excused"
  neither counts nor breaks a streak (the group knows why); "present" and
  "late" end it. A follow-up recorded on or after the day the streak reached
  the threshold clears the need; it is overdue ``FOLLOWUP_DUE_DAYS`` days later.
- Attended = present or late. A make-up session counts for the session it
  makes up, so a member is never counted twice for one session number.
- Completion follows the protocol (``Protocol.is_completed``); a member who can
  no longer reach it with the sessions left is counted as dropping out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlite_utils

from ..base.errors import N_
from ..formfiles.protocols import Protocol
from ..store.db import marks, new_id, row, rows, utcnow, write
from . import audit
from . import cycles as cycles_module
from .attendance import ATTENDED, absence_streak, group_attended, member_records, member_records_of
from .attendance import attended_group_sessions as attended_group_sessions  # re-exported: read as followup.*
from .cycles import CycleError, Message, cycle_row, list_cycles, member_row, members, protocol_of, sessions, stage

RECENTLY_CLOSED_DAYS = 60  # a closed cycle stays on its facilitator's home page this long


@dataclass(frozen=True)
class FollowUpNeed:
    member_id: str
    streak: int
    since: str  # the local date of the session at which the streak reached the threshold
    due_by: str
    overdue: bool
    last_followup: dict | None


def _need(
    records: list[dict], threshold: int, followups: list[dict], today: date, due_days: int
) -> FollowUpNeed | None:
    statuses = [r["status"] for r in records]
    streak = absence_streak(statuses)
    if streak < threshold:
        return None
    absent = [r for r in records if r["status"] == "absent"]
    trigger = absent[len(absent) - streak + threshold - 1]["scheduled_date"]
    done = [f for f in followups if f["done_on"] >= trigger]
    if done:
        return None
    due_by = (date.fromisoformat(trigger) + timedelta(days=due_days)).isoformat()
    return FollowUpNeed(
        records[0]["member_id"],
        streak,
        trigger,
        due_by,
        today.isoformat() > due_by,
        followups[-1] if followups else None,
    )


def followups_needed(
    db: sqlite_utils.Database,
    site_ids: list[str],
    protocols: dict[str, Protocol],
    *,
    today: date,
    due_days: int,
    cycle_id: str | None = None,
    user_id: str | None = None,
) -> list[dict]:
    """Return the active members who need a call or visit, with phone, village and cycle."""
    sql = f"select * from cycles where site_id in ({marks(site_ids)}) and status in ('planned', 'active')"
    params: list = list(site_ids)
    if cycle_id:
        sql += " and id = ?"
        params.append(cycle_id)
    if user_id:
        sql += " and id in (select cycle_id from cycle_facilitators where user_id = ?)"
        params.append(user_id)
    found: list[dict[str, Any]] = []
    open_cycles = rows(db, sql, params)
    ids = [c["id"] for c in open_cycles]
    # Three queries for every open cycle together (a facilitator's home lists them all).
    records_of = member_records_of(db, ids)
    members_of = cycles_module.members_of(db, ids)
    visits: dict[str, list[dict]] = {}
    for f in db.query(
        "select f.* from absence_followups f join members m on m.id = f.member_id"
        f" where m.cycle_id in ({marks(ids)}) and m.status = 'active' order by f.done_on, f.created_at",
        ids,
    ):
        visits.setdefault(f["member_id"], []).append(f)
    for cycle in open_cycles:
        protocol = protocols.get(cycle["protocol_id"])
        threshold = protocol.absences_for_followup if protocol else 2
        records = records_of.get(cycle["id"], {})
        for member in (m for m in members_of.get(cycle["id"], []) if m["status"] == "active"):
            followups = visits.get(member["id"], [])
            need = _need(records.get(member["id"], []), threshold, followups, today, due_days)
            if need:
                found.append({"member": member, "cycle": cycle, "need": need})
    found.sort(key=lambda f: (f["need"].since, f["member"]["name"]))
    return found


def record_followup(
    db: sqlite_utils.Database, member_id: str, done_on: date, note: str, *, actor: dict | None, today: date
) -> dict:
    """Record a call or home visit to a member after absences."""
    member = member_row(db, member_id)
    if done_on > today:
        raise CycleError(N_("The visit date %(date)s is in the future."), date=done_on)
    stamp = utcnow()
    record = {
        "id": new_id(),
        "site_id": member["site_id"],
        "member_id": member_id,
        "done_on": done_on.isoformat(),
        "note": (note or "").strip(),
        "done_by": actor["id"] if actor else None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    with write(db):
        audit.insert(db, "absence_followups", record, user=actor)
    return record


# --- rates and outcomes -------------------------------------------------------------


def session_rates(db: sqlite_utils.Database, cycle_id: str) -> dict[str, dict]:
    """Return per held session: attended, marked and the rate (attended / marked)."""
    result = {}
    for r in db.query(
        "select a.session_id, count(*) as marked, sum(a.status in ('present', 'late')) as attended"
        " from attendance a join sessions x on x.id = a.session_id where x.cycle_id = ? group by a.session_id",
        (cycle_id,),
    ):
        result[r["session_id"]] = {**r, "rate": r["attended"] / r["marked"] if r["marked"] else None}
    return result


def member_summaries(db: sqlite_utils.Database, cycle: dict, protocol: Protocol) -> dict[str, dict]:
    """Return per member: attended/marked sessions, rate, streak, and the completion outlook.

    ``outcome`` is the member's status once ended; else ``completed`` (already
    reached the rule), ``on_track`` (can still reach it) or ``dropping_out``
    (cannot any more with the sessions left).
    """
    return summarise_members(
        sessions(db, cycle["id"]), member_records(db, cycle["id"]), members(db, cycle["id"]), protocol
    )


def summarise_members(
    cycle_sessions: list[dict], records: dict[str, list[dict]], cycle_members: list[dict], protocol: Protocol
) -> dict[str, dict]:
    """Compute :func:`member_summaries` from rows already read (the indicators read many cycles at once)."""
    attended = group_attended(records)
    left = {s["number"] for s in cycle_sessions if s["kind"] == "group" and s["status"] == "scheduled"}
    result = {}
    for member in cycle_members:
        mine = records.get(member["id"], [])
        got = attended.get(member["id"], 0)
        done_numbers = {r["number"] for r in mine if r["status"] in ATTENDED}
        possible = got + len(left - done_numbers)
        if member["status"] != "active":
            outcome = member["status"]
        elif protocol.is_completed(got):
            outcome = "completed"
        elif protocol.is_completed(min(possible, len(protocol.group_sessions))):
            outcome = "on_track"
        else:
            outcome = "dropping_out"
        present = sum(1 for r in mine if r["status"] in ATTENDED)
        result[member["id"]] = {
            "attended": present,
            "marked": len(mine),
            "rate": present / len(mine) if mine else None,
            "group_attended": got,
            "streak": absence_streak([r["status"] for r in mine]),
            "outcome": outcome,
        }
    return result


# --- measures due -------------------------------------------------------------------


def add_months(d: date, months: int) -> date:
    """Return the same day ``months`` later, or the month's last day when it has no such day."""
    month = d.month - 1 + months
    year, month = d.year + month // 12, month % 12 + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def screening_matches(
    screening: dict,
    *,
    instrument: str,
    occasion: str,
    cycle_id: str,
    session_id: str | None,
    due_on: date,
    grace_days: int,
) -> bool:
    """Tell whether a screenings row is the measure due (this instrument, session or cycle occasion).

    A screening saved without its cycle (a form opened from the participant's
    page) counts when its occasion matches and it was given within
    ``grace_days`` of the due date.
    """
    if screening["instrument_id"] != instrument:
        return False
    if session_id is not None and screening["session_id"] == session_id:
        return True
    if screening["occasion"] != occasion:
        return False
    if screening["cycle_id"] is not None:
        return screening["cycle_id"] == cycle_id and screening["session_id"] in (None, session_id)
    given = date.fromisoformat(screening["administered_on"][:10])
    return abs((given - due_on).days) <= grace_days


def occasion_of(number: int, protocol: Protocol) -> str:
    """Return the screening occasion of session ``number``: baseline, mid or end."""
    if number == 0:
        return "baseline"
    last_group = max((p.number for p in protocol.group_sessions), default=None)
    return "end" if number == last_group else "mid"


def measures_due(
    db: sqlite_utils.Database, participant_id: str, protocols: dict[str, Protocol], *, today: date, grace_days: int
) -> list[dict]:
    """Return the instruments due for a participant's active (else last) membership.

    Occasions: ``baseline`` (pre-group session), ``mid`` (sessions in between),
    ``end`` (last group session), ``followup`` (months after the last group
    session). Each row has ``status`` done / due / overdue / upcoming; overdue
    means more than ``grace_days`` after the due date. A measure is done when a
    screening for this participant and instrument exists for that session, or
    for that cycle and occasion. A member who left stops owing later measures.
    """
    member = row(
        db,
        "select * from members where participant_id = ? order by status = 'active' desc, created_at desc limit 1",
        (participant_id,),
    )
    if member is None:
        return []
    cycle = cycle_row(db, member["cycle_id"])
    try:
        protocol = protocol_of(cycle, protocols)
    except CycleError:
        return []
    done = rows(
        db,
        "select instrument_id, occasion, cycle_id, session_id, administered_on from screenings"
        " where participant_id = ?",
        (participant_id,),
    )
    due = _Due(cycle, done, today, grace_days)
    ended_on = member["ended_on"] if member["status"] in ("withdrawn", "transferred") else None
    result, last_date = _session_measures(db, cycle, protocol, due, ended_on)
    if last_date is not None and not ended_on:
        for item in protocol.followup:
            due_on = add_months(last_date, item.months_after_end)
            result.append(
                {
                    "instrument_id": item.instrument,
                    "occasion": "followup",
                    "due_on": due_on.isoformat(),
                    "session_id": None,
                    "session_number": None,
                    "cycle_id": cycle["id"],
                    "cycle_code": cycle["code"],
                    "months": item.months_after_end,
                    "status": due.status(item.instrument, "followup", None, due_on),
                }
            )
    return result


@dataclass(frozen=True)
class _Due:
    """The screenings a participant has done, to tell the status of each measure owed in one cycle."""

    cycle: dict
    done: list[dict]
    today: date
    grace_days: int

    def status(self, instrument: str, occasion: str, session_id: str | None, due_on: date) -> str:
        """Return done, upcoming, due, or overdue (more than ``grace_days`` after ``due_on``)."""
        finished = any(
            screening_matches(
                d,
                instrument=instrument,
                occasion=occasion,
                cycle_id=self.cycle["id"],
                session_id=session_id,
                due_on=due_on,
                grace_days=self.grace_days,
            )
            for d in self.done
        )
        if finished:
            return "done"
        if due_on > self.today:
            return "upcoming"
        return "overdue" if (self.today - due_on).days > self.grace_days else "due"


def _session_measures(
    db: sqlite_utils.Database, cycle: dict, protocol: Protocol, due: _Due, ended_on: str | None
) -> tuple[list[dict], date | None]:
    """Return the measures due at the cycle's sessions (none after the member left) and the date of
    the last group session, from which follow-up measures count."""
    last_group = max((p.number for p in protocol.group_sessions), default=None)
    result = []
    last_date: date | None = None
    for s in sessions(db, cycle["id"]):
        if s["kind"] not in ("pre-group", "group"):
            continue
        if s["number"] == last_group and s["status"] != "cancelled":
            last_date = date.fromisoformat(s["scheduled_date"])
        try:
            due_here = protocol.instruments_due(s["number"])
        except KeyError:
            continue
        if s["status"] == "cancelled" or not due_here:
            continue
        occasion = occasion_of(s["number"], protocol)
        due_on = date.fromisoformat(s["scheduled_date"])
        if ended_on and due_on.isoformat() > ended_on:
            continue
        for instrument in due_here:
            result.append(
                {
                    "instrument_id": instrument,
                    "occasion": occasion,
                    "due_on": due_on.isoformat(),
                    "session_id": s["id"],
                    "session_number": s["number"],
                    "cycle_id": cycle["id"],
                    "cycle_code": cycle["code"],
                    "status": due.status(instrument, occasion, s["id"], due_on),
                }
            )
    return result, last_date


# --- home page ----------------------------------------------------------------------


def _without_attendance(db: sqlite_utils.Database, site_ids: list[str], user_id: str | None, today: date) -> list[dict]:
    """Return the open cycles' sessions whose day has passed with no attendance (only ``user_id``'s cycles if given)."""
    return rows(
        db,
        "select x.*, c.code as cycle_code from sessions x join cycles c on c.id = x.cycle_id"
        f" where x.site_id in ({marks(site_ids)}) and x.status = 'scheduled' and x.scheduled_date < ?"
        " and c.status in ('planned', 'active')"
        + (" and c.id in (select cycle_id from cycle_facilitators where user_id = ?)" if user_id else "")
        + " order by x.scheduled_date",
        (*site_ids, today.isoformat(), *([user_id] if user_id else [])),
    )


def home_summary(
    db: sqlite_utils.Database,
    *,
    user_id: str,
    site_ids: list[str],
    coordinator: bool,
    protocols: dict[str, Protocol],
    today: date,
    due_days: int,
) -> dict:
    """Return the home page's cycle panel: my next session and cycles; for coordinators, every site's."""

    def open_first(found: list[dict]) -> list[dict]:
        return sorted(found, key=lambda c: (c["status"] in ("closed", "closed_early"), c["first_date"]))

    everything_mine = open_first(list_cycles(db, site_ids, user_id=user_id))
    # Open cycles and those closed lately; a facilitator's older cycles are on the cycles page.
    lately = (today - timedelta(days=RECENTLY_CLOSED_DAYS)).isoformat()
    mine = [c for c in everything_mine if c["status"] in ("planned", "active") or (c["closed_on"] or "") >= lately]
    upcoming = rows(
        db,
        "select x.* from sessions x join cycles c on c.id = x.cycle_id"
        " where x.cycle_id in (select cycle_id from cycle_facilitators where user_id = ?)"
        f" and x.site_id in ({marks(site_ids)}) and x.status = 'scheduled' and x.scheduled_date >= ?"
        " and c.status in ('planned', 'active') order by x.scheduled_date, x.start_time limit 1",
        (user_id, *site_ids, today.isoformat()),
    )
    scope_user = None if coordinator else user_id
    # Once for every cycle in scope (it covers the next session's cycle: the user leads it).
    needs = followups_needed(db, site_ids, protocols, today=today, due_days=due_days, user_id=scope_user)
    site_cycles = []
    if coordinator:
        site_cycles = open_first(list_cycles(db, site_ids, statuses=("planned", "active")))
    shown = {c["id"]: c for c in [*mine, *site_cycles]}
    return {
        "mine": mine,
        "mine_total": len(everything_mine),
        "next": _next_session(db, upcoming[0], mine, needs) if upcoming else None,
        "missing": _without_attendance(db, site_ids, scope_user, today),
        "overdue": [f for f in needs if f["need"].overdue],
        "site_cycles": site_cycles,
        "stages": _stages(db, shown),
        "coordinator": coordinator,
    }


def _next_session(db: sqlite_utils.Database, session: dict, mine: list[dict], needs: list[dict]) -> dict:
    """Return the home page's next session: its cycle, the members expected and their follow-ups."""
    cycle = next(c for c in mine if c["id"] == session["cycle_id"])
    return {
        "session": session,
        "cycle": cycle,
        "expected": members(db, cycle["id"], active_only=True),
        "followups": [f for f in needs if f["cycle"]["id"] == cycle["id"]],
    }


def _stages(db: sqlite_utils.Database, shown: dict[str, dict]) -> dict[str, Message]:
    """Return each shown cycle's stage by id."""
    # A closed cycle's stage needs no sessions; a facilitator may have led dozens over the years.
    by_cycle = cycles_module.sessions_of(
        db, [cid for cid, c in shown.items() if c["status"] not in ("closed", "closed_early")]
    )
    return {cid: stage(c, by_cycle.get(cid, [])) for cid, c in shown.items()}

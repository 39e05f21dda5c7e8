"""Attendance rules shared by cycles and follow-up: what counts as attended, absence streaks, records.

Plain functions (no Flask) below both :mod:`cycles` (closing a cycle counts attended
sessions) and :mod:`followup` (streaks, rates, completion), so neither imports the other.

- Attended = present or late; "excused" neither counts nor breaks a streak.
- A make-up session counts for the session it makes up, so a member is never counted
  twice for one session number.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlite_utils

from ..store.db import marks

ATTENDED = ("present", "late")


def absence_streak(statuses: Sequence[str]) -> int:
    """Count the absences at the end of ``statuses`` (oldest first), skipping "excused".

    >>> absence_streak(["present", "absent", "excused", "absent"])
    2
    """
    streak = 0
    for status in reversed(statuses):
        if status == "absent":
            streak += 1
        elif status in ATTENDED:
            break
    return streak


MEMBER_RECORDS_SQL = (
    "select a.member_id, a.status, x.id as session_id, x.cycle_id, x.number, x.kind, x.scheduled_date"
    " from attendance a join sessions x on x.id = a.session_id where x.cycle_id in ({cycles}) and x.status = 'held'"
    " order by x.scheduled_date, x.created_at"
)


def member_records(db: sqlite_utils.Database, cycle_id: str) -> dict[str, list[dict]]:
    """Return each member's attendance at the held sessions of a cycle, oldest first."""
    return member_records_of(db, [cycle_id]).get(cycle_id, {})


def member_records_of(db: sqlite_utils.Database, cycle_ids: Sequence[str]) -> dict[str, dict[str, list[dict]]]:
    """Return :func:`member_records` of several cycles in one query: {cycle id: {member id: records}}."""
    result: dict[str, dict[str, list[dict]]] = {}
    for r in db.query(MEMBER_RECORDS_SQL.format(cycles=marks(cycle_ids)), list(cycle_ids)):
        result.setdefault(r["cycle_id"], {}).setdefault(r["member_id"], []).append(r)
    return result


def group_attended(records: dict[str, list[dict]]) -> dict[str, int]:
    """Count, per member, the distinct group session numbers attended in ``records`` (make-ups included)."""
    counts: dict[str, int] = {}
    for member_id, found in records.items():
        numbers = {r["number"] for r in found if r["status"] in ATTENDED and r["number"] > 0}
        counts[member_id] = len(numbers)
    return counts


def attended_group_sessions(db: sqlite_utils.Database, cycle_id: str) -> dict[str, int]:
    """Return, per member, how many distinct group session numbers they attended (make-ups included)."""
    return group_attended(member_records(db, cycle_id))

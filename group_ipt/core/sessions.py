"""Take a session: attendance, symptom checks, note, member plans and fidelity in one write.

A save carries the session's ``version`` as the form showed it. If someone
saved the session since (another tab, another laptop), the save is refused
with :class:`StaleSession`, which lists what the other save recorded, so the
facilitator can compare and save again: nothing is overwritten silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import sqlite_utils

from ..base.errors import N_
from ..formfiles.protocols import Protocol
from ..store.db import marks, new_id, row, rows, utcnow, write
from . import audit, referrals
from .cycles import PROBLEM_AREAS, CycleError, Message, check_plan, cycle_row, members, protocol_of, session_row
from .followup import occasion_of, screening_matches
from .participants import participant_row

ATTENDANCE = ("present", "absent", "excused", "late")
TRENDS = ("better", "same", "worse")
__all__ = [
    "ATTENDANCE",
    "PROBLEM_AREAS",
    "TRENDS",
    "SessionEntry",
    "StaleSession",
    "expected_members",
    "record_session",
    "saved_entry",
]


class StaleSession(CycleError):
    """The session was saved by someone else since this form was opened."""

    def __init__(self, differences: list[Message], current_version: int, saved_by: str | None, saved_at: str | None):
        super().__init__(
            N_(
                "%(who)s saved this session (at %(when)s) while you were filling it in. Nothing of "
                "yours was saved yet: check the differences below, then save again."
            ),
            who=saved_by or "?",
            when=saved_at or "?",
        )
        self.differences = differences
        self.current_version = current_version


@dataclass
class SessionEntry:
    """What a facilitator filled in for one session."""

    attendance: dict[str, str]  # member id -> present/absent/excused/late
    checks: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)  # member id -> (trend, 0-10)
    note: str = ""
    fidelity: dict[str, bool] | None = None  # checklist id -> done; None = not filled
    plans: dict[str, tuple[str | None, str | None, str]] = field(default_factory=dict)  # pre-group: areas, goals
    # Members the facilitator marked "risk noticed": each gets the urgent alert and referral a risk answer gets.
    risk_noticed: set[str] = field(default_factory=set)


def expected_members(db: sqlite_utils.Database, session: dict) -> list[dict]:
    """Return who belongs on the session's sheet: members then, and anyone already marked."""
    marked = {
        r["member_id"] for r in db.query("select member_id from attendance where session_id = ?", (session["id"],))
    }
    day = session["scheduled_date"]
    if session["kind"] == "maintenance":
        # After the cycle: the members who completed it (and anyone already marked).
        return [m for m in members(db, session["cycle_id"]) if m["id"] in marked or m["status"] == "completed"]
    if session["status"] == "held":
        # Editing a held session: who was marked, plus anyone active who had joined by then.
        return [
            m
            for m in members(db, session["cycle_id"])
            if m["id"] in marked or (m["status"] == "active" and m["enrolled_on"] <= day)
        ]
    return [
        m
        for m in members(db, session["cycle_id"])
        if m["id"] in marked or m["status"] == "active" or (m["ended_on"] is not None and m["ended_on"] > day)
    ]


def saved_entry(db: sqlite_utils.Database, session_id: str, user_id: str | None = None) -> SessionEntry:
    """Return what is saved for a session (the fidelity answers of ``user_id``)."""
    attendance = {
        r["member_id"]: r["status"]
        for r in db.query("select member_id, status from attendance where session_id = ?", (session_id,))
    }
    checks = {
        r["member_id"]: (r["trend"], r["rating"])
        for r in db.query("select member_id, trend, rating from symptom_checks where session_id = ?", (session_id,))
    }
    session = row(db, "select note from sessions where id = ?", (session_id,))
    fidelity = None
    if user_id:
        f = row(
            db,
            "select answers_json from fidelity_checklists where session_id = ? and user_id = ?",
            (session_id, user_id),
        )
        fidelity = json.loads(f["answers_json"]) if f else None
    return SessionEntry(attendance, checks, session["note"] if session else "", fidelity)


def _snapshot(db: sqlite_utils.Database, session_id: str) -> dict:
    s = session_row(db, session_id)
    entry = saved_entry(db, session_id)
    return {
        "status": s["status"],
        "note": s["note"],
        "version": s["version"],
        "attendance": entry.attendance,
        "checks": {k: list(v) for k, v in entry.checks.items()},
    }


def _check(db, session: dict, entry: SessionEntry, protocol: Protocol) -> dict[str, dict]:
    if session["status"] == "cancelled":
        raise CycleError(
            N_("Session %(number)s was cancelled; attendance cannot be recorded for it."), number=session["number"]
        )
    cycle = cycle_row(db, session["cycle_id"])
    # Monthly maintenance sessions are held after the cycle closed (the outcome decision adds them).
    if (
        cycle["status"] in ("closed", "closed_early")
        and session["status"] != "held"
        and session["kind"] != "maintenance"
    ):
        raise CycleError(N_("Cycle %(cycle)s is closed."), cycle=cycle["code"])
    everyone = {m["id"]: m for m in members(db, session["cycle_id"])}
    expected = {m["id"] for m in expected_members(db, session)}
    for member_id in [*entry.attendance, *entry.checks, *entry.plans, *entry.risk_noticed]:
        if member_id not in everyone:
            raise CycleError(N_("Someone on this form is not a member of this cycle; reload the page."))
    for member_id, status in entry.attendance.items():
        if status not in ATTENDANCE:
            raise CycleError(
                N_("Choose present, absent, excused or late for %(name)s."), name=everyone[member_id]["name"]
            )
        if member_id not in expected:
            raise CycleError(N_("%(name)s was not in the group on this date."), name=everyone[member_id]["name"])
    if session["kind"] != "makeup":
        missing = [everyone[m]["name"] for m in expected if m not in entry.attendance]
        if missing:
            raise CycleError(N_("Mark the attendance of: %(names)s."), names=", ".join(sorted(missing)))
    for member_id, (trend, rating) in entry.checks.items():
        name = everyone[member_id]["name"]
        if trend is None and rating is None:
            continue
        if entry.attendance.get(member_id) not in ("present", "late"):
            raise CycleError(
                N_("%(name)s is not marked present but has a symptom check; mark them present or clear the check."),
                name=name,
            )
        if trend is not None and trend not in TRENDS:
            raise CycleError(N_("Choose better, same or worse for %(name)s."), name=name)
        if rating is not None and not 0 <= rating <= 10:
            raise CycleError(N_("The rating of %(name)s must be a whole number from 0 to 10."), name=name)
    for area, area2, _goals in entry.plans.values():
        check_plan(area, area2)
    if entry.fidelity is not None:
        known = {item.id for item in protocol.fidelity_checklist}
        unknown = set(entry.fidelity) - known
        if unknown:
            raise CycleError(N_("Unknown checklist question: %(id)s."), id=sorted(unknown)[0])
    return everyone


def _differences(db, session_id: str, entry: SessionEntry, everyone: dict[str, dict]) -> list[Message]:
    saved = saved_entry(db, session_id)
    found = []
    for member_id in sorted(set(saved.attendance) | set(entry.attendance), key=lambda m: everyone[m]["name"]):
        theirs, yours = saved.attendance.get(member_id), entry.attendance.get(member_id)
        if theirs != yours:
            found.append(
                Message(
                    N_("%(name)s: saved as %(saved)s, you chose %(yours)s."),
                    {"name": everyone[member_id]["name"], "saved": theirs or "-", "yours": yours or "-"},
                )
            )
        their_check = saved.checks.get(member_id, (None, None))
        your_check = entry.checks.get(member_id, (None, None))
        if their_check != your_check and yours in ("present", "late"):
            found.append(
                Message(
                    N_("%(name)s: symptom check saved as %(saved)s, you wrote %(yours)s."),
                    {
                        "name": everyone[member_id]["name"],
                        "saved": " ".join(str(v) for v in their_check if v is not None) or "-",
                        "yours": " ".join(str(v) for v in your_check if v is not None) or "-",
                    },
                )
            )
    if saved.note != entry.note.strip():
        found.append(Message(N_('The session note differs: saved "%(saved)s".'), {"saved": saved.note}))
    return found


def record_session(
    db: sqlite_utils.Database,
    session_id: str,
    entry: SessionEntry,
    *,
    expected_version: int,
    protocols: dict[str, Protocol],
    actor: dict | None,
    today: date,
    plan: referrals.FollowupPlan | None = None,
) -> dict:
    """Save a session's whole sheet as one transaction; return the saved session.

    A member marked "risk noticed" gets an urgent safety referral (the alert, its
    steps and follow-ups planned by ``plan``) in the same transaction, once per
    session; the returned session lists them in ``risk_referrals``.
    Raises CycleError for bad input and StaleSession if ``expected_version`` is
    not the session's version any more.
    """
    with write(db):
        # Read and check inside the write lock, so two saves cannot both pass the version check.
        session = row(db, "select * from sessions where id = ?", (session_id,))
        if session is None:
            raise CycleError(N_("This session does not exist."))
        cycle = cycle_row(db, session["cycle_id"])
        protocol = protocol_of(cycle, protocols)
        everyone = _check(db, session, entry, protocol)
        _check_current(db, session, entry, everyone, expected_version, today)
        before = _snapshot(db, session_id)
        stamp = utcnow()
        actor_id = actor["id"] if actor else None
        _write_attendance(db, session, entry, actor_id, stamp)
        _write_checks(db, session, entry, everyone, stamp)
        _write_plans(db, entry, stamp)
        if entry.fidelity is not None and actor_id:
            _write_fidelity(db, session, entry.fidelity, actor_id, stamp)
        _mark_held(db, session, cycle, entry.note.strip(), actor_id, stamp)
        raised = _refer_risks(db, session, everyone, entry.risk_noticed, actor, plan or referrals.FollowupPlan(), today)
        _log_sheet(db, session, entry, before, actor)
        if actor_id:
            # The sheet is saved: a draft kept while giving a questionnaire is done with.
            db.execute("delete from session_drafts where session_id = ? and user_id = ?", (session_id, actor_id))
        return {**session_row(db, session_id), "risk_referrals": raised}


def _mark_held(db: sqlite_utils.Database, session: dict, cycle: dict, note: str, actor_id, stamp: str) -> None:
    """Mark the session held with its note (a new version); its cycle, if still planned, is now active."""
    db.execute(
        "update sessions set status = 'held', note = ?, recorded_by = ?, recorded_at = ?, version = version + 1,"
        " updated_at = ? where id = ?",
        (note, actor_id, stamp, stamp, session["id"]),
    )
    if cycle["status"] == "planned":
        db.execute("update cycles set status = 'active', updated_at = ? where id = ?", (stamp, cycle["id"]))


def _log_sheet(db: sqlite_utils.Database, session: dict, entry: SessionEntry, before: dict, actor: dict | None) -> None:
    """Log the saved sheet: the session as it was and is, with the fidelity checklist and plans entered."""
    after = _snapshot(db, session["id"])
    after["fidelity"] = entry.fidelity
    after["plans"] = {k: list(v) for k, v in entry.plans.items()}
    audit.log(
        db,
        user=actor,
        action="record_session" if before["status"] != "held" else "edit_session",
        table="sessions",
        record_id=session["id"],
        site_id=session["site_id"],
        before=before,
        after=after,
    )


def _check_current(
    db: sqlite_utils.Database, session: dict, entry: SessionEntry, everyone: dict, expected_version: int, today: date
) -> None:
    """Refuse a sheet saved over someone else's newer save (StaleSession), or a session not yet due."""
    if session["version"] != expected_version:
        saver = row(db, "select display_name from users where id = ?", (session["recorded_by"],))
        raise StaleSession(
            _differences(db, session["id"], entry, everyone),
            session["version"],
            saver["display_name"] if saver else None,
            session["recorded_at"] or session["updated_at"],
        )
    if date.fromisoformat(session["scheduled_date"]) > today:
        raise CycleError(
            N_("Session %(number)s is planned for %(date)s; attendance can be taken on the day."),
            number=session["number"],
            date=date.fromisoformat(session["scheduled_date"]),
        )


def _write_attendance(
    db: sqlite_utils.Database, session: dict, entry: SessionEntry, actor_id: str | None, stamp: str
) -> None:
    """Save each member's mark; a row that did not change keeps its time and recorder."""
    for member_id, status in entry.attendance.items():
        db.execute(
            "insert into attendance (id, site_id, session_id, member_id, status, recorded_by, created_at,"
            " updated_at) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (session_id, member_id) do update set"
            " status = excluded.status, recorded_by = excluded.recorded_by, updated_at = excluded.updated_at"
            " where attendance.status != excluded.status",
            (new_id(), session["site_id"], session["id"], member_id, status, actor_id, stamp, stamp),
        )
    if session["kind"] == "makeup":
        # On a make-up sheet, a member left blank was not expected: drop any earlier mark.
        kept = list(entry.attendance)
        db.execute(
            f"delete from attendance where session_id = ? and member_id not in ({marks(kept)})",
            [session["id"], *kept],
        )


def _write_checks(db: sqlite_utils.Database, session: dict, entry: SessionEntry, everyone: dict, stamp: str) -> None:
    """Save the symptom check of each member present; drop it for a member absent or left blank."""
    for member_id in everyone:
        trend, rating = entry.checks.get(member_id, (None, None))
        if entry.attendance.get(member_id) not in ("present", "late") or (trend is None and rating is None):
            db.execute("delete from symptom_checks where session_id = ? and member_id = ?", (session["id"], member_id))
            continue
        db.execute(
            "insert into symptom_checks (id, site_id, session_id, member_id, trend, rating, created_at, updated_at)"
            " values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (session_id, member_id) do update set"
            " trend = excluded.trend, rating = excluded.rating, updated_at = excluded.updated_at",
            (new_id(), session["site_id"], session["id"], member_id, trend, rating, stamp, stamp),
        )


def _write_plans(db: sqlite_utils.Database, entry: SessionEntry, stamp: str) -> None:
    """Save the problem areas and goals chosen on the sheet (the pre-group session); unchanged ones stay."""
    for member_id, (area, area2, goals) in entry.plans.items():
        area, area2 = check_plan(area, area2)
        db.execute(
            "update members set problem_area = ?, problem_area_2 = ?, goals = ?, updated_at = ?"
            " where id = ? and (problem_area is not ? or problem_area_2 is not ? or goals != ?)",
            (area, area2, goals.strip(), stamp, member_id, area, area2, goals.strip()),
        )


def _write_fidelity(db: sqlite_utils.Database, session: dict, fidelity: dict, actor_id: str, stamp: str) -> None:
    """Save the facilitator's own fidelity checklist for the session (one per facilitator)."""
    answers = json.dumps(fidelity, sort_keys=True)
    db.execute(
        "insert into fidelity_checklists (id, site_id, session_id, user_id, answers_json, created_at,"
        " updated_at) values (?, ?, ?, ?, ?, ?, ?) on conflict (session_id, user_id) do update set"
        " answers_json = excluded.answers_json, updated_at = excluded.updated_at",
        (new_id(), session["site_id"], session["id"], actor_id, answers, stamp, stamp),
    )


def _refer_risks(
    db,
    session: dict,
    everyone: dict[str, dict],
    marked: set[str],
    actor: dict | None,
    plan: referrals.FollowupPlan,
    today: date,
) -> list[dict]:
    """Raise the urgent referral of each member marked "risk noticed" who has none from this session yet."""
    raised = []
    for member_id in sorted(marked):
        member = everyone[member_id]
        if (
            row(
                db,
                "select 1 as x from referrals where session_id = ? and participant_id = ?",
                (session["id"], member["participant_id"]),
            )
            is not None
        ):
            continue  # the sheet saved again: one referral per member and session
        participant = participant_row(db, member["participant_id"])
        trigger = {"kind": "session_risk", "session_id": session["id"], "number": session["number"]}
        raised.append(
            referrals.create(
                db,
                participant=participant,
                reason=f"risk noticed by the facilitator in session {session['number']}",
                triggers=[trigger],
                urgency="urgent",
                actor=actor,
                plan=plan,
                start=today,
                session_id=session["id"],
            )
        )
    return raised


def risk_marked(db: sqlite_utils.Database, session_id: str) -> dict[str, str]:
    """Return participant id -> referral id of the members already marked "risk noticed" in a session."""
    return {
        r["participant_id"]: r["id"]
        for r in db.query("select participant_id, id from referrals where session_id = ?", (session_id,))
    }


MAX_DRAFT_FIELDS = 2000
MAX_DRAFT_CHARS = 200_000


def save_draft(
    db: sqlite_utils.Database, session_id: str, user_id: str, fields: dict[str, str], *, version: int
) -> None:
    """Keep a half-filled sheet of ``user_id`` (its form fields as typed) until they come back to it.

    A draft is local and throwaway: it is not checked (the save is), only bounded, and
    the newest replaces the older one.
    """
    text = json.dumps(fields, sort_keys=True)
    if len(fields) > MAX_DRAFT_FIELDS or len(text) > MAX_DRAFT_CHARS:
        raise CycleError(N_("This sheet is too large to keep; save it instead."))
    with write(db):
        db.execute(
            "insert into session_drafts (session_id, user_id, form_json, version, updated_at) values (?, ?, ?, ?, ?)"
            " on conflict (session_id, user_id) do update set form_json = excluded.form_json,"
            " version = excluded.version, updated_at = excluded.updated_at",
            (session_id, user_id, text, version, utcnow()),
        )


def load_draft(db: sqlite_utils.Database, session_id: str, user_id: str) -> dict | None:
    """Return ``{"fields", "version", "updated_at"}`` of the user's unsaved sheet, or None."""
    found = row(
        db,
        "select form_json, version, updated_at from session_drafts where session_id = ? and user_id = ?",
        (session_id, user_id),
    )
    if found is None:
        return None
    return {"fields": json.loads(found["form_json"]), "version": found["version"], "updated_at": found["updated_at"]}


def discard_draft(db: sqlite_utils.Database, session_id: str, user_id: str) -> None:
    with write(db):
        db.execute("delete from session_drafts where session_id = ? and user_id = ?", (session_id, user_id))


def fidelity_items(protocol: Protocol) -> list:
    return list(protocol.fidelity_checklist)


def instruments_today(db: sqlite_utils.Database, session: dict, protocol: Protocol, *, grace_days: int) -> list[dict]:
    """Return the instruments due at this session, each with the members and whether they have done it."""
    try:
        due = protocol.instruments_due(session["number"])
    except KeyError:
        return []
    occasion = occasion_of(session["number"], protocol)
    people = [m for m in expected_members(db, session) if m["status"] == "active"]
    day = date.fromisoformat(session["scheduled_date"])
    result = []
    for instrument in due:
        given = rows(
            db,
            f"select * from screenings where instrument_id = ? and participant_id in ({','.join('?' * len(people))})",
            [instrument, *[m["participant_id"] for m in people]],
        )
        done = {
            g["participant_id"]
            for g in given
            if screening_matches(
                g,
                instrument=instrument,
                occasion=occasion,
                cycle_id=session["cycle_id"],
                session_id=session["id"],
                due_on=day,
                grace_days=grace_days,
            )
        }
        result.append(
            {
                "instrument_id": instrument,
                "occasion": occasion,
                "members": [{**m, "done": m["participant_id"] in done} for m in people],
            }
        )
    return result

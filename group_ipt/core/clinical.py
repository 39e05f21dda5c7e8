"""Each member's clinical record across the three phases, and who may see it.

- Pre-group (individual) session: the symptom review (a screening), the
  interpersonal inventory, a timeline linking mood to events, the focal problem
  area(s) with a one-line formulation, personal goals, whether medication should
  be assessed (a referral when yes), and consent to join the group.
- During the cycle: progress on goals at chosen sessions; the problem area can be
  revised, every choice kept in ``problem_area_history`` (``members.problem_area``
  holds the current one).
- Termination: the relapse-prevention plan and the outcome decision (completed
  and well, extend with extra sessions, refer elsewhere, monthly maintenance).

Access: a member's record is seen by the facilitators of the member's cycle, the
supervisors assigned to them, coordinators of the member's site and admins
(``can_see_record``); every view is written to the audit log (``open_record``).
Plain Python, no Flask.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import sqlite_utils

from ..base import errors
from ..base.errors import N_, DomainError
from ..formfiles.protocols import Protocol
from ..store.db import marks, new_id, row, rows, utcnow, write
from . import audit, cycles, participants, referrals, scheduling
from .users import user_site_ids

MEDICATION_CHOICES = ("yes", "no")
CLOSENESS = ("close", "distant")
QUALITIES = ("supportive", "conflicted", "mixed")
MOODS = ("lower", "same", "better")
PROGRESS = ("none", "some", "good", "achieved")
DECISIONS = ("well", "extend", "refer", "maintenance")
MAX_TEXT = 2000
MAX_SHORT = 200
MAX_EXTRA_SESSIONS = 4


class ClinicalError(DomainError):
    """A change to a member's record that cannot be made; the message says why."""


# --- access ---------------------------------------------------------------------------


def cycle_facilitator_ids(db: sqlite_utils.Database, cycle_id: str) -> set[str]:
    return {r["user_id"] for r in db.query("select user_id from cycle_facilitators where cycle_id = ?", (cycle_id,))}


def supervisor_ids_of(db: sqlite_utils.Database, facilitator_ids: set[str], site_id: str) -> set[str]:
    """Return the supervisors assigned to any of ``facilitator_ids`` at ``site_id``."""
    if not facilitator_ids:
        return set()
    return {
        r["supervisor_id"]
        for r in db.query(
            "select supervisor_id from supervisor_facilitators"
            f" where site_id = ? and facilitator_id in ({marks(facilitator_ids)})",
            (site_id, *facilitator_ids),
        )
    }


def can_see_record(db: sqlite_utils.Database, user: dict, member: dict) -> bool:
    """Tell whether ``user`` may see ``member``'s clinical record.

    Admins always; coordinators of the member's site; the facilitators of the
    member's cycle; the supervisors assigned to those facilitators at that site.
    A facilitator of another cycle of the same site may not.
    """
    if user["role"] == "admin":
        return True
    if member["site_id"] not in user_site_ids(db, user):
        return False
    if user["role"] == "coordinator":
        return True
    facilitators = cycle_facilitator_ids(db, member["cycle_id"])
    if user["id"] in facilitators:
        return True
    return user["role"] == "supervisor" and user["id"] in supervisor_ids_of(db, facilitators, member["site_id"])


def can_edit_record(db: sqlite_utils.Database, user: dict, member: dict) -> bool:
    """Tell whether ``user`` may write to the record: its facilitators, the site's coordinators, admins."""
    if user["role"] == "admin":
        return True
    if member["site_id"] not in user_site_ids(db, user):
        return False
    return user["role"] == "coordinator" or user["id"] in cycle_facilitator_ids(db, member["cycle_id"])


def get_member(db: sqlite_utils.Database, member_id: str) -> dict | None:
    return row(
        db,
        "select m.*, p.name, p.code as participant_code, p.sex, p.birth_year, p.village, c.code as cycle_code,"
        " c.protocol_id, c.status as cycle_status from members m join participants p on p.id = m.participant_id"
        " join cycles c on c.id = m.cycle_id where m.id = ?",
        (member_id,),
    )


def visible_member(db: sqlite_utils.Database, member_id: str, user: dict) -> dict | None:
    """Return the member if ``user`` may see the record, else None (the edge answers 404)."""
    member = get_member(db, member_id)
    if member is None or not can_see_record(db, user, member):
        return None
    return member


# --- reading the record ---------------------------------------------------------------


def record(db: sqlite_utils.Database, member: dict) -> dict:
    """Return everything in a member's record, for the record page."""
    member_id = member["id"]
    pregroup = row(db, "select * from pregroup_records where member_id = ?", (member_id,))
    progress = rows(
        db,
        "select g.*, x.number, x.kind, x.phase, x.scheduled_date, u.display_name as recorded_by_name"
        " from goal_progress g join sessions x on x.id = g.session_id left join users u on u.id = g.recorded_by"
        " where g.member_id = ? order by x.scheduled_date, g.created_at",
        (member_id,),
    )
    history = rows(
        db,
        "select h.*, u.display_name as changed_by_name from problem_area_history h"
        " left join users u on u.id = h.changed_by where h.member_id = ? order by h.created_at, h.rowid",
        (member_id,),
    )
    screenings = rows(
        db,
        "select id, instrument_id, occasion, total, band, risk, missing_json, administered_on, cycle_id"
        " from screenings where participant_id = ? order by administered_on, created_at",
        (member["participant_id"],),
    )
    for s in screenings:
        s["missing"] = json.loads(s.pop("missing_json"))
    return {
        "member": member,
        "pregroup": pregroup,
        "inventory": rows(
            db, "select * from inventory_people where member_id = ? order by created_at, rowid", (member_id,)
        ),
        "timeline": rows(
            db,
            "select * from timeline_events where member_id = ? order by sort_key = '', sort_key, created_at, rowid",
            (member_id,),
        ),
        "problem_area_history": history,
        "goal_progress": progress,
        "relapse_plan": row(db, "select * from relapse_plans where member_id = ?", (member_id,)),
        "outcome": row(db, "select * from outcome_decisions where member_id = ?", (member_id,)),
        "screenings": screenings,
        "referrals": referrals.for_participant(db, member["participant_id"]),
        "symptom_checks": rows(
            db,
            "select c.*, x.number, x.kind, x.scheduled_date from symptom_checks c join sessions x"
            " on x.id = c.session_id where c.member_id = ? order by x.scheduled_date",
            (member_id,),
        ),
        "group_consent": row(
            db,
            "select * from consents where participant_id = ? and purpose = 'group'"
            " order by created_at desc, rowid desc limit 1",
            (member["participant_id"],),
        ),
    }


def open_record(db: sqlite_utils.Database, member_id: str, user: dict) -> dict | None:
    """Return the member's record for ``user`` and log the view; None if they may not see it."""
    member = visible_member(db, member_id, user)
    if member is None:
        return None
    with write(db):
        audit.log(db, user=user, action="view", table="members", record_id=member_id, site_id=member["site_id"])
    return record(db, member)


# --- checking input -------------------------------------------------------------------


def _text(value: str | None, field: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ClinicalError(N_("This field cannot be empty."), field=field)
    if len(value) > limit:
        raise ClinicalError(N_("The text is too long (at most %(n)d characters)."), field=field, n=limit)
    return value


def _choice(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    value = (value or "").strip() or None
    if value is not None and value not in allowed:
        raise ClinicalError(N_("Unknown answer %(value)s."), field=field, value=value)
    return value


def _chosen(value: str | None, allowed: tuple[str, ...], field: str) -> str:
    """Return an answer that must be given: one of ``allowed``."""
    chosen = _choice(value, allowed, field)
    if chosen is None:
        raise ClinicalError(N_("Choose one of the answers."), field=field)
    return chosen


# --- pre-group session ----------------------------------------------------------------


def _add_history(
    db, member: dict, area, area2, formulation: str, reason: str, actor, now: str, session_id: str | None = None
) -> dict:
    entry = {
        "id": new_id(),
        "site_id": member["site_id"],
        "member_id": member["id"],
        "problem_area": area,
        "problem_area_2": area2,
        "formulation": formulation,
        "reason": reason,
        "session_id": session_id,
        "changed_by": actor["id"] if actor else None,
        "created_at": now,
        "updated_at": now,
    }
    db.table("problem_area_history").insert(entry)
    return entry


def save_pregroup(
    db: sqlite_utils.Database,
    member: dict,
    *,
    actor: dict,
    plan: referrals.FollowupPlan,
    screening_id: str | None,
    problem_area: str | None,
    problem_area_2: str | None,
    formulation: str,
    goals: str,
    medication_assessment: str | None,
    group_consent: bool | None,
    today: date,
) -> dict:
    """Save the pre-group session's record in one transaction; return it.

    A changed problem area goes into the history; "yes" to a medication
    assessment opens one routine referral (once); consent to the group is
    recorded in ``consents`` when it changes.
    """
    area, area2 = _plan(problem_area, problem_area_2)
    formulation = _text(formulation, "formulation", limit=MAX_SHORT)
    goals = _text(goals, "goals")
    medication = _choice(medication_assessment, MEDICATION_CHOICES, "medication_assessment")
    if screening_id:
        _check_own_screening(db, member, screening_id)
    now = utcnow()
    with write(db):
        current = cycles.member_row(db, member["id"])
        before = row(db, "select * from pregroup_records where member_id = ?", (member["id"],))
        referral_id = _medication_referral(db, member, before, medication, actor=actor, plan=plan, today=today)
        values = {
            "site_id": member["site_id"],
            "member_id": member["id"],
            "screening_id": screening_id or None,
            "formulation": formulation,
            "medication_assessment": medication,
            "medication_referral_id": referral_id,
            "group_consent": None if group_consent is None else int(group_consent),
            "recorded_by": actor["id"],
        }
        extra = {"problem_area": area, "problem_area_2": area2, "goals": goals}
        record = audit.replace(db, "pregroup_records", before, values, user=actor, now=now, extra=extra)
        formulation_changed = before is None or before["formulation"] != formulation
        _update_plan(db, member, current, (area, area2), goals, formulation, formulation_changed, actor, now)
        _record_group_consent(db, member, before, group_consent, actor, now)
    return record


def _medication_referral(
    db: sqlite_utils.Database,
    member: dict,
    before: dict | None,
    medication: str | None,
    *,
    actor: dict,
    plan: referrals.FollowupPlan,
    today: date,
) -> str | None:
    """Return the pre-group record's medication referral, opening it at the first "yes"."""
    referral_id = before["medication_referral_id"] if before else None
    if medication == "yes" and referral_id is None:
        reason = "medication assessment asked at the pre-group session"
        trigger = {"kind": "medication_assessment", "reason": reason}
        referral_id = _refer(db, member, reason=reason, trigger=trigger, actor=actor, plan=plan, today=today)
    return referral_id


def _record_group_consent(
    db: sqlite_utils.Database, member: dict, before: dict | None, given: bool | None, actor: dict, now: str
) -> None:
    """Record consent to the group in ``consents`` when the pre-group answer is new or changed."""
    if given is not None and (before is None or before["group_consent"] != int(given)):
        participant = {"id": member["participant_id"], "site_id": member["site_id"]}
        participants.add_consent(db, participant, "group", given, "participant", actor, now)


def _check_own_screening(db: sqlite_utils.Database, member: dict, screening_id: str) -> None:
    """Refuse a symptom review (screening) of another participant."""
    if (
        row(
            db,
            "select 1 as x from screenings where id = ? and participant_id = ?",
            (screening_id, member["participant_id"]),
        )
        is None
    ):
        raise ClinicalError(N_("That symptom review belongs to someone else."), field="screening_id")


def _refer(
    db: sqlite_utils.Database,
    member: dict,
    *,
    reason: str,
    trigger: dict,
    actor: dict,
    plan: referrals.FollowupPlan,
    today: date,
) -> str:
    """Open a routine referral of the member (a medication assessment, or elsewhere after the cycle)."""
    referral = referrals.create(
        db,
        participant=participants.participant_row(db, member["participant_id"]),
        reason=reason,
        triggers=[trigger],
        urgency="routine",
        actor=actor,
        plan=plan,
        start=today,
    )
    return referral["id"]


def _update_plan(
    db: sqlite_utils.Database,
    member: dict,
    current: dict,
    areas: tuple[str | None, str | None],
    goals: str,
    formulation: str,
    formulation_changed: bool,
    actor: dict,
    now: str,
) -> None:
    """Save the member's problem areas and goals if they changed; a change of area or formulation
    goes into the problem-area history."""
    area, area2 = areas
    area_changed = (area, area2) != (current["problem_area"], current["problem_area_2"])
    if area_changed or goals != current["goals"]:
        db.execute(
            "update members set problem_area = ?, problem_area_2 = ?, goals = ?, updated_at = ? where id = ?",
            (area, area2, goals, now, member["id"]),
        )
    if area is not None and (area_changed or formulation_changed):
        _add_history(db, member, area, area2, formulation, "pre-group session", actor, now)


def _plan(problem_area: str | None, problem_area_2: str | None) -> tuple[str | None, str | None]:
    try:
        return cycles.check_plan(problem_area, problem_area_2)
    except cycles.CycleError as exc:
        raise ClinicalError(exc.message, field="problem_area", **exc.params) from exc


def add_person(
    db: sqlite_utils.Database,
    member: dict,
    *,
    actor: dict,
    name: str,
    relationship: str,
    closeness: str | None,
    quality: str | None,
    recent_change: str,
) -> dict:
    """Add someone important in the member's life to the interpersonal inventory."""
    now = utcnow()
    person = {
        "id": new_id(),
        "site_id": member["site_id"],
        "member_id": member["id"],
        "name": _text(name, "person_name", required=True, limit=MAX_SHORT),
        "relationship": _text(relationship, "relationship", limit=MAX_SHORT),
        "closeness": _choice(closeness, CLOSENESS, "closeness"),
        "quality": _choice(quality, QUALITIES, "quality"),
        "recent_change": _text(recent_change, "recent_change", limit=MAX_SHORT),
        "created_by": actor["id"],
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        audit.insert(db, "inventory_people", person, user=actor)
    return person


def add_event(
    db: sqlite_utils.Database, member: dict, *, actor: dict, happened: str, event: str, mood: str | None
) -> dict:
    """Add a life event and the change of mood that went with it to the member's timeline."""
    happened = _text(happened, "happened", required=True, limit=80)
    try:  # "2025-06" or "2025-06-14" sorts by date; "after the harvest" keeps its place at the end
        sort_key = (
            date.fromisoformat(happened).isoformat()
            if len(happened) == 10
            else date.fromisoformat(happened + "-01").isoformat()[:7]
        )
    except ValueError:
        sort_key = ""
    now = utcnow()
    entry = {
        "id": new_id(),
        "site_id": member["site_id"],
        "member_id": member["id"],
        "happened": happened,
        "sort_key": sort_key,
        "event": _text(event, "event", required=True, limit=MAX_SHORT),
        "mood": _choice(mood, MOODS, "mood"),
        "created_by": actor["id"],
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        audit.insert(db, "timeline_events", entry, user=actor)
    return entry


def remove_entry(db: sqlite_utils.Database, member: dict, table: str, entry_id: str, *, actor: dict) -> None:
    """Remove an inventory person or a timeline event of this member (kept in the audit log)."""
    if table not in ("inventory_people", "timeline_events"):
        raise ValueError(table)
    with write(db):
        before = row(db, f"select * from {table} where id = ? and member_id = ?", (entry_id, member["id"]))  # noqa: S608
        if before is None:
            raise ClinicalError(N_("This entry does not exist any more."))
        db.execute(f"delete from {table} where id = ?", (entry_id,))  # noqa: S608
        audit.log(
            db, user=actor, action="delete", table=table, record_id=entry_id, site_id=member["site_id"], before=before
        )


# --- during the cycle ------------------------------------------------------------------


def revise_problem_area(
    db: sqlite_utils.Database,
    member: dict,
    *,
    actor: dict,
    problem_area: str | None,
    problem_area_2: str | None,
    reason: str,
    formulation: str = "",
    session_id: str | None = None,
) -> dict:
    """Change the member's focal problem area(s), keeping the earlier choice in the history."""
    area, area2 = _plan(problem_area, problem_area_2)
    if area is None:
        raise ClinicalError(N_("Choose the problem area."), field="problem_area")
    reason = _text(reason, "reason", required=True, limit=MAX_SHORT)
    formulation = _text(formulation, "formulation", limit=MAX_SHORT)
    if session_id:
        _session_of(db, member, session_id)
    now = utcnow()
    with write(db):
        current = cycles.member_row(db, member["id"])
        if (area, area2) == (current["problem_area"], current["problem_area_2"]) and not formulation:
            raise ClinicalError(N_("This is already the member's problem area."), field="problem_area")
        if not formulation:
            last = row(
                db,
                "select formulation from problem_area_history where member_id = ?"
                " order by created_at desc, rowid desc limit 1",
                (member["id"],),
            )
            formulation = last["formulation"] if last else ""
        db.execute(
            "update members set problem_area = ?, problem_area_2 = ?, updated_at = ? where id = ?",
            (area, area2, now, member["id"]),
        )
        entry = _add_history(db, member, area, area2, formulation, reason, actor, now, session_id or None)
        audit.log(
            db,
            user=actor,
            action="revise_problem_area",
            table="members",
            record_id=member["id"],
            site_id=member["site_id"],
            before={"problem_area": current["problem_area"], "problem_area_2": current["problem_area_2"]},
            after={"problem_area": area, "problem_area_2": area2, "reason": reason},
        )
    return entry


def _cycle_of(db: sqlite_utils.Database, member: dict) -> dict:
    """Return the member's cycle (with its site's code and name, as cycles.get_cycle gives it)."""
    return errors.required(cycles.get_cycle(db, member["cycle_id"]), "cycle " + member["cycle_id"])


def _session_of(db, member: dict, session_id: str) -> dict:
    session = row(db, "select * from sessions where id = ? and cycle_id = ?", (session_id, member["cycle_id"]))
    if session is None:
        raise ClinicalError(N_("Choose a session of the member's cycle."), field="session_id")
    return session


def record_goal_progress(
    db: sqlite_utils.Database, member: dict, *, actor: dict, session_id: str, progress: str, note: str, today: date
) -> dict:
    """Note the member's progress on their goals at one session (a second note replaces the first)."""
    session = _session_of(db, member, session_id)
    if session["status"] == "cancelled":
        raise ClinicalError(N_("That session was cancelled."), field="session_id")
    if session["scheduled_date"] > today.isoformat():
        raise ClinicalError(N_("That session has not happened yet."), field="session_id")
    progress = _chosen(progress, PROGRESS, "progress")
    note = _text(note, "note", limit=MAX_SHORT)
    now = utcnow()
    with write(db):
        before = row(
            db, "select * from goal_progress where member_id = ? and session_id = ?", (member["id"], session_id)
        )
        values = {
            "site_id": member["site_id"],
            "member_id": member["id"],
            "session_id": session_id,
            "progress": progress,
            "note": note,
            "recorded_by": actor["id"],
        }
        entry = audit.replace(db, "goal_progress", before, values, user=actor, now=now)
    return entry


# --- termination ----------------------------------------------------------------------


def save_relapse_plan(
    db: sqlite_utils.Database, member: dict, *, actor: dict, warning_signs: str, people: str, actions: str
) -> dict:
    """Save the member's relapse-prevention plan: early warning signs, people to turn to, what to do."""
    answers = {
        "warning_signs": _text(warning_signs, "warning_signs", required=True),
        "people": _text(people, "people", required=True),
        "actions": _text(actions, "actions", required=True),
    }
    now = utcnow()
    with write(db):
        before = row(db, "select * from relapse_plans where member_id = ?", (member["id"],))
        values = {"site_id": member["site_id"], "member_id": member["id"], **answers, "recorded_by": actor["id"]}
        plan = audit.replace(db, "relapse_plans", before, values, user=actor, now=now)
    return plan


def _extension_dates(db, cycle: dict, count: int) -> tuple[dict, list[date]]:
    """Return the last regular session and the weekly dates of ``count`` sessions after it."""
    regular = [s for s in cycles.sessions(db, cycle["id"]) if s["kind"] == "group" and s["status"] != "cancelled"]
    last = max(regular, key=lambda s: s["scheduled_date"])
    taken = {
        date.fromisoformat(s["scheduled_date"]) for s in cycles.sessions(db, cycle["id"]) if s["status"] != "cancelled"
    }
    blackout = cycles.holiday_dates(db, cycle["site_id"])
    day, found = date.fromisoformat(last["scheduled_date"]), list[date]()
    while len(found) < count:
        day += timedelta(weeks=1)
        try:
            scheduling.check_makeup_date(sorted(taken), day, blackout)
        except scheduling.ScheduleError:
            continue
        found.append(day)
        taken.add(day)
    return last, found


def _extend(db, member: dict, count: int, actor: dict) -> int:
    """Make sure the cycle has ``count`` extra sessions after its last one; return how many were added."""
    cycle = _cycle_of(db, member)
    if cycle["status"] in ("closed", "closed_early"):
        raise ClinicalError(
            N_("The cycle is closed: extra sessions can only be added before it closes."), field="decision"
        )
    last = max(
        (s for s in cycles.sessions(db, cycle["id"]) if s["kind"] == "group" and s["status"] != "cancelled"),
        key=lambda s: s["scheduled_date"],
    )
    existing = [
        s
        for s in cycles.sessions(db, cycle["id"])
        if s["kind"] == "makeup"
        and s["makeup_for"] == last["id"]
        and s["scheduled_date"] > last["scheduled_date"]
        and s["status"] != "cancelled"
    ]
    missing = max(count - len(existing), 0)
    if missing:
        _last, days = _extension_dates(db, cycle, missing)
        for day in days:
            cycles.add_makeup(db, last["id"], day, cycle["start_time"], reason="extra session (extend)", actor=actor)
    return missing


def _maintenance(db, member: dict, protocol: Protocol, actor: dict) -> int:
    """Schedule the protocol's monthly maintenance sessions after the cycle (once per cycle)."""
    cycle = _cycle_of(db, member)
    monthly = protocol.maintenance_monthly_sessions
    if monthly <= 0:
        raise ClinicalError(
            N_(
                "The protocol %(protocol)s has no maintenance sessions; choose another decision "
                "or add maintenance to the protocol file."
            ),
            field="decision",
            protocol=protocol.id,
        )
    if cycle["status"] not in ("closed", "closed_early"):
        raise ClinicalError(
            N_("Maintenance sessions come after the cycle: close the cycle first, then record this decision."),
            field="decision",
        )
    all_sessions = cycles.sessions(db, cycle["id"])
    if any(s["kind"] == "maintenance" for s in all_sessions):
        return 0
    held = [s for s in all_sessions if s["kind"] in ("group", "makeup") and s["status"] == "held"]
    last = (
        max(held, key=lambda s: s["scheduled_date"]) if held else max(all_sessions, key=lambda s: s["scheduled_date"])
    )
    blackout = cycles.holiday_dates(db, cycle["site_id"])
    day, now = date.fromisoformat(last["scheduled_date"]), utcnow()
    for _n in range(monthly):
        day += timedelta(weeks=4)
        while day in blackout:
            day += timedelta(weeks=1)
        session = cycles.session_record(
            cycle,
            number=last["number"],
            kind="maintenance",
            phase="maintenance",
            day=day,
            minutes=last["minutes"],
            stamp=now,
        )
        audit.insert(db, "sessions", session, user=actor)
    return monthly


def decide_outcome(
    db: sqlite_utils.Database,
    member: dict,
    *,
    actor: dict,
    decision: str,
    note: str,
    protocols: dict[str, Protocol],
    plan: referrals.FollowupPlan,
    extra_sessions: int = 0,
    today: date,
) -> dict:
    """Record what happens after the cycle for this member, and do what it takes.

    ``extend`` adds ``extra_sessions`` weekly sessions after the last one (the
    cycle must still be open); ``maintenance`` schedules the protocol's monthly
    maintenance sessions after the cycle (once per cycle; the cycle must be
    closed); ``refer`` opens a routine referral (once).
    """
    decision = _chosen(decision, DECISIONS, "decision")
    note = _text(note, "note")
    if decision == "extend" and not 1 <= extra_sessions <= MAX_EXTRA_SESSIONS:
        raise ClinicalError(N_("Choose from 1 to %(n)d extra sessions."), field="extra_sessions", n=MAX_EXTRA_SESSIONS)
    if decision == "refer" and not note:
        raise ClinicalError(N_("Say where the member is referred and why."), field="note")
    cycle = _cycle_of(db, member)
    protocol = cycles.protocol_of(cycle, protocols)
    now = utcnow()
    with write(db):
        before = row(db, "select * from outcome_decisions where member_id = ?", (member["id"],))
        referral_id = before["referral_id"] if before else None
        added = 0
        if decision == "extend":
            added = _extend(db, member, extra_sessions, actor)
        elif decision == "maintenance":
            added = _maintenance(db, member, protocol, actor)
        elif decision == "refer" and referral_id is None:
            reason = f"referred elsewhere at the end of the cycle: {note}"
            trigger = {"kind": "outcome_referral", "reason": note}
            referral_id = _refer(db, member, reason=reason, trigger=trigger, actor=actor, plan=plan, today=today)
        values = {
            "site_id": member["site_id"],
            "member_id": member["id"],
            "decision": decision,
            "note": note,
            "extra_sessions": extra_sessions
            if decision == "extend"
            else (protocol.maintenance_monthly_sessions if decision == "maintenance" else 0),
            "referral_id": referral_id,
            "decided_by": actor["id"],
        }
        extra = {"sessions_added": added}
        outcome = audit.replace(db, "outcome_decisions", before, values, user=actor, now=now, extra=extra)
    return {**outcome, "sessions_added": added}

"""Safety referrals: created on a risk answer or an exclusion, acknowledged, followed up, closed.

A referral moves forward only: open -> referred -> followed_up -> closed (a step
may be skipped, never undone). It closes only with an outcome (``OUTCOMES``) and
after at least one follow-up contact was recorded, and it is never deleted. An
urgent one (a risk answer at its worst, a plan, the facilitator's judgement, or
raised by hand) left unacknowledged past its day, or with a follow-up overdue, is
on the supervisor's concern list (``concerns``). Follow-up contacts are planned when it is made:
weekly for ``FollowupPlan.weekly`` weeks, then every ``later_interval_weeks``
(after WHO mhGAP: about weekly for two months, then every 2-4 weeks). Plain
Python, no Flask.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlite_utils

from ..base import clock, fields
from ..base.errors import N_, DomainError, required
from ..store.db import in_clock_order, marks, new_id, row, rows, utcnow, write
from . import audit

STATUSES = ("open", "referred", "followed_up", "closed")
URGENCIES = ("urgent", "routine")
# How a referral ended, as programmes count it; "other" needs a note saying what.
OUTCOMES = ("seen", "admitted", "declined", "unreachable", "moved", "died", "other")
UNREACHABLE_TRIES = 3  # contacts tried before "could not be reached" (REFERRAL_UNREACHABLE_TRIES)
# Closing takes a referral off every list: a supervisor's decision, not a facilitator's.
CLOSING_ROLES = ("coordinator", "supervisor", "admin")
MAX_NOTE = fields.limit("referrals", "note")
MAX_REFERRED_TO = fields.limit("referrals", "referred_to")


class ReferralError(DomainError):
    """A referral could not be created or changed; the message says why."""


@dataclass(frozen=True)
class FollowupPlan:
    weekly: int = 8
    later_interval_weeks: int = 3
    later_count: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.weekly <= 52:
            raise ValueError("REFERRAL_WEEKLY_FOLLOWUPS must be from 0 to 52")
        if not 2 <= self.later_interval_weeks <= 4:
            raise ValueError("REFERRAL_LATER_INTERVAL_WEEKS must be 2, 3 or 4")
        if not 0 <= self.later_count <= 52 or self.weekly + self.later_count == 0:
            raise ValueError("REFERRAL_LATER_FOLLOWUPS must be from 0 to 52, and some follow-up must be planned")

    @classmethod
    def from_config(cls, config) -> FollowupPlan:
        return cls(
            config["REFERRAL_WEEKLY_FOLLOWUPS"],
            config["REFERRAL_LATER_INTERVAL_WEEKS"],
            config["REFERRAL_LATER_FOLLOWUPS"],
        )

    def dates(self, start: date) -> list[date]:
        """Return the planned follow-up dates after ``start``."""
        weekly = [start + timedelta(weeks=n) for n in range(1, self.weekly + 1)]
        last = weekly[-1] if weekly else start
        later = [last + timedelta(weeks=self.later_interval_weeks * n) for n in range(1, self.later_count + 1)]
        return weekly + later


_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{1,30}$")


def safety_contacts(value: object) -> list[dict]:
    """Check the SAFETY_CONTACTS setting (a list of {name, phone}); return it, or raise ValueError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("SAFETY_CONTACTS must be a list of {name, phone}")
    contacts = []
    for position, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or set(entry) - {"name", "phone"}:
            raise ValueError(f"SAFETY_CONTACTS entry {position} must have only a name and a phone")
        name, phone = entry.get("name"), entry.get("phone")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValueError(f"SAFETY_CONTACTS entry {position}: the name must be text of 1 to 100 characters")
        if not isinstance(phone, str) or not _PHONE.match(phone.strip()):
            raise ValueError(
                f"SAFETY_CONTACTS entry {position} ({name}): {phone!r} is not a phone number "
                "(digits, spaces, +, -, parentheses)"
            )
        contacts.append({"name": name.strip(), "phone": phone.strip()})
    return contacts


def create(
    db: sqlite_utils.Database,
    *,
    participant: dict,
    reason: str,
    triggers: list[dict],
    urgency: str,
    actor: dict | None,
    plan: FollowupPlan,
    start: date | None = None,
    screening_id: str | None = None,
    note: str | None = None,
    session_id: str | None = None,
) -> dict:
    """Create an open referral with its planned follow-ups; return it.

    Call it inside the transaction that saves what raised it, so that neither
    is ever saved without the other. ``note`` (optional) goes on the referral and
    its first event.
    """
    reason, note = _check_new(urgency, reason, note)
    start = start or clock.today()
    now = utcnow()
    referral = {
        "id": new_id(),
        "site_id": participant["site_id"],
        "participant_id": participant["id"],
        "screening_id": screening_id,
        **({"session_id": session_id} if session_id else {}),
        "reason": reason,
        "triggers_json": json.dumps(triggers, ensure_ascii=False),
        "urgency": urgency,
        "status": "open",
        **({"note": note} if note else {}),
        "created_by": actor["id"] if actor else None,
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        audit.insert(db, "referrals", referral, user=actor)
        _event(db, referral, "open", note, actor, now)
        for due in plan.dates(start):
            _plan_followup(db, referral, due, now)
    return referral


def _check_new(urgency: str, reason: str, note: str | None) -> tuple[str, str | None]:
    """Return a new referral's reason and note, trimmed; refuse an unknown urgency, no reason, or too long."""
    if urgency not in URGENCIES:
        raise ReferralError(N_("Choose how urgent the referral is."), field="urgency")
    reason = (reason or "").strip()
    if not reason:
        raise ReferralError(N_("Say why the person is referred."), field="reason")
    if len(reason) > MAX_NOTE:
        raise ReferralError(N_("The reason is too long."), field="reason")
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise ReferralError(N_("The note is too long."), field="note")
    return reason, note


def _event(db, referral: dict, status: str, note: str | None, actor: dict | None, now: str) -> None:
    db.table("referral_events").insert(
        {
            "id": new_id(),
            "site_id": referral["site_id"],
            "referral_id": referral["id"],
            "status": status,
            "note": note,
            "by_user": actor["id"] if actor else None,
            "created_at": now,
            "updated_at": now,
        }
    )


def _plan_followup(db, referral: dict, due: date, now: str) -> None:
    db.table("referral_followups").insert(
        {
            "id": new_id(),
            "site_id": referral["site_id"],
            "referral_id": referral["id"],
            "due_on": due.isoformat(),
            "created_at": now,
            "updated_at": now,
        }
    )


_SELECT = (
    "select r.*, p.code as participant_code, p.name as participant_name, p.site_id as participant_site,"
    " a.display_name as acknowledged_by_name, c.display_name as created_by_name,"
    " (select min(f.due_on) from referral_followups f where f.referral_id = r.id and f.done_on is null)"
    " as next_due_on"
    " from referrals r join participants p on p.id = r.participant_id"
    " left join users a on a.id = r.acknowledged_by left join users c on c.id = r.created_by"
)


def get(db: sqlite_utils.Database, referral_id: str, site_ids: list[str]) -> dict | None:
    """Return the referral if it belongs to one of ``site_ids``, else None."""
    found = row(db, f"{_SELECT} where r.id = ? and r.site_id in ({marks(site_ids)})", (referral_id, *site_ids))
    return None if found is None else _decode(found)


def _decode(referral: dict) -> dict:
    referral["triggers"] = json.loads(referral["triggers_json"])
    return referral


def _current(db: sqlite_utils.Database, referral: dict) -> dict:
    """Read the referral again inside the write: another laptop's change may have come in since the page."""
    return required(row(db, "select * from referrals where id = ?", (referral["id"],)), "referral " + referral["id"])


def for_participant(db: sqlite_utils.Database, participant_id: str) -> list[dict]:
    return [
        _decode(r)
        for r in rows(db, f"{_SELECT} where r.participant_id = ? order by r.created_at desc", (participant_id,))
    ]


def for_screening(db: sqlite_utils.Database, screening_id: str) -> dict | None:
    found = row(db, f"{_SELECT} where r.screening_id = ?", (screening_id,))
    return None if found is None else _decode(found)


def listing(db: sqlite_utils.Database, site_ids: list[str], *, include_closed: bool = False) -> list[dict]:
    """Return referrals, unacknowledged and urgent first, then by the next follow-up due."""
    where = "" if include_closed else " and r.status != 'closed'"
    found = rows(
        db,
        f"{_SELECT} where r.site_id in ({marks(site_ids)}){where}"
        " order by r.acknowledged_at is not null, r.status = 'closed', r.urgency != 'urgent',"
        " next_due_on is null, next_due_on, r.created_at",
        site_ids,
    )
    return [_decode(r) for r in found]


def home_summary(db: sqlite_utils.Database, site_ids: list[str], today: date | None = None) -> dict:
    """Return what the home page shows first: unacknowledged alerts, open referrals, overdue follow-ups."""
    today_text = (today or clock.today()).isoformat()
    open_referrals = listing(db, site_ids)
    for referral in open_referrals:
        referral["overdue"] = referral["next_due_on"] is not None and referral["next_due_on"] < today_text
    overdue = rows(
        db,
        # From the open referrals (a closed one may keep follow-ups never done: thousands per site).
        "select f.*, p.code as participant_code, p.name as participant_name, r.urgency as urgency"
        " from referrals r cross join referral_followups f on f.referral_id = r.id"  # r first: its index
        " join participants p on p.id = r.participant_id"
        f" where r.site_id in ({marks(site_ids)}) and r.status in ('open', 'referred', 'followed_up')"
        " and f.done_on is null and f.due_on < ? order by f.due_on",
        (*site_ids, today_text),
    )
    return {
        "unacknowledged": [r for r in open_referrals if r["acknowledged_at"] is None],
        "open": open_referrals,
        "overdue": overdue,
    }


def acknowledge(db: sqlite_utils.Database, referral: dict, actor: dict) -> dict:
    """Record that ``actor`` has seen the alert and its steps; a second call changes nothing."""
    with write(db):
        current = _current(db, referral)
        if current["acknowledged_at"] is not None:
            return current
        now = utcnow()
        db.execute(
            "update referrals set acknowledged_by = ?, acknowledged_at = ?, updated_at = ? where id = ?",
            (actor["id"], now, now, referral["id"]),
        )
        audit.log(
            db,
            user=actor,
            action="acknowledge",
            table="referrals",
            record_id=referral["id"],
            site_id=referral["site_id"],
            before={"acknowledged_at": None},
            after={"acknowledged_by": actor["id"], "acknowledged_at": now},
        )
    return {**current, "acknowledged_by": actor["id"], "acknowledged_at": now}


def set_status(
    db: sqlite_utils.Database,
    referral: dict,
    status: str,
    actor: dict,
    *,
    note: str | None = None,
    referred_to: str | None = None,
    outcome: str | None = None,
    unreachable_tries: int = UNREACHABLE_TRIES,
) -> dict:
    """Move a referral forward (open -> referred -> followed_up -> closed) and record the event.

    Closing needs a coordinator, supervisor or admin, at least one recorded follow-up
    contact and an ``outcome`` (one of OUTCOMES; "other" with a note, "unreachable"
    after ``unreachable_tries`` recorded contacts).
    """
    if status not in STATUSES:
        raise ReferralError(N_("Unknown referral status %(status)s."), field="status", status=status)
    note = (note or "").strip() or None
    referred_to = (referred_to or "").strip() or None
    if (note and len(note) > MAX_NOTE) or (referred_to and len(referred_to) > MAX_REFERRED_TO):
        raise ReferralError(N_("The note is too long."), field="note")
    with write(db):
        current = _current(db, referral)
        if current["acknowledged_at"] is None:
            raise ReferralError(N_("Acknowledge the safety alert before changing the referral."))
        if STATUSES.index(status) <= STATUSES.index(current["status"]):
            raise ReferralError(
                N_("A referral moves forward only: it is already %(status)s."), field="status", status=current["status"]
            )
        if status == "closed":
            if actor["role"] not in CLOSING_ROLES:
                raise ReferralError(N_("Only a coordinator or supervisor can close a referral."), field="status")
            _check_outcome(db, current, outcome, note, unreachable_tries)
        elif outcome:
            raise ReferralError(N_("An outcome is recorded only when the referral is closed."), field="outcome")
        if status == "referred" and not (referred_to or current["referred_to"]):
            raise ReferralError(N_("Say where or to whom the person was referred."), field="referred_to")
        now = utcnow()
        changes = _status_changes(status, now, referred_to=referred_to, note=note, outcome=outcome)
        changed = _change(db, current, changes, status, note, actor, now, action="set_status", field="status")
    return changed


def _change(
    db, current: dict, changes: dict, event: str, note: str | None, actor: dict, now: str, *, action: str, field: str
) -> dict:
    """Apply ``changes`` to the referral, add the ``event`` to its story and log the ``field``'s
    old value; return the referral as it is now. Call it inside the write that read ``current``."""
    db.table("referrals").update(current["id"], changes)
    _event(db, current, event, note, actor, now)
    audit.log(
        db,
        user=actor,
        action=action,
        table="referrals",
        record_id=current["id"],
        site_id=current["site_id"],
        before={field: current[field]},
        after=changes,
    )
    return {**current, **changes}


def _status_changes(
    status: str, now: str, *, referred_to: str | None, note: str | None, outcome: str | None
) -> dict[str, Any]:
    """Return the columns a status change sets: the given referral place and note, the outcome on closing."""
    changes: dict[str, Any] = {"status": status, "updated_at": now}
    if referred_to:
        changes["referred_to"] = referred_to
    if note:
        changes["note"] = note
    if status == "closed":
        changes["closed_at"] = now
        changes["outcome"] = outcome
    return changes


def _check_outcome(db, referral: dict, outcome: str | None, note: str | None, unreachable_tries: int) -> None:
    if outcome not in OUTCOMES:
        raise ReferralError(N_("Choose the outcome of the referral before closing it."), field="outcome")
    contacts = db.execute(
        "select count(*) from referral_followups where referral_id = ? and done_on is not null", (referral["id"],)
    ).fetchone()[0]
    if contacts == 0:
        raise ReferralError(N_("Record at least one follow-up contact before closing the referral."), field="outcome")
    if outcome == "other" and not note:
        raise ReferralError(N_("Write a note saying what the outcome was."), field="note")
    if outcome == "unreachable" and contacts < unreachable_tries:
        raise ReferralError(
            N_(
                "Try to reach the person at least %(n)d times (recorded as follow-ups) before "
                "closing as not reachable; %(done)d recorded so far."
            ),
            field="outcome",
            n=unreachable_tries,
            done=contacts,
        )


def raise_urgency(db: sqlite_utils.Database, referral: dict, actor: dict, *, note: str | None = None) -> dict:
    """Make a routine referral urgent (the facilitator's or supervisor's judgement); record who and why."""
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise ReferralError(N_("The note is too long."), field="note")
    with write(db):
        current = _current(db, referral)
        if current["status"] == "closed":
            raise ReferralError(N_("This referral is closed."))
        if current["urgency"] == "urgent":
            raise ReferralError(N_("This referral is already urgent."), field="urgency")
        now = utcnow()
        changes = {"urgency": "urgent", "escalated": 1, "updated_at": now}
        changed = _change(
            db, current, changes, "urgency_raised", note, actor, now, action="raise_urgency", field="urgency"
        )
    return changed


def history(db: sqlite_utils.Database, referral: dict) -> list[dict]:
    """Return the referral's whole story, oldest first: the alert, acknowledgement, urgency raised,
    status changes, every follow-up contact and the outcome, each with who and when."""
    found = [
        {"at": e["created_at"], "kind": "event", "status": e["status"], "by": e["by_name"], "note": e["note"]}
        for e in events(db, referral["id"])
    ]
    if referral.get("acknowledged_at"):
        found.append(
            {
                "at": referral["acknowledged_at"],
                "kind": "acknowledged",
                "status": None,
                "by": referral.get("acknowledged_by_name"),
                "note": None,
            }
        )
    for f in followups(db, referral["id"]):
        if f["done_on"]:
            found.append(
                {
                    "at": f["updated_at"],
                    "kind": "followup",
                    "status": None,
                    "by": f["done_by_name"],
                    "note": f["note"],
                    "done_on": f["done_on"],
                }
            )
    for entry in found:
        if entry["kind"] == "event" and entry["status"] == "closed":
            entry["outcome"] = referral.get("outcome")
    found.sort(key=lambda entry: entry["at"])
    return found


def concerns(db: sqlite_utils.Database, site_ids: list[str], today: date | None = None) -> list[dict]:
    """Return the urgent referrals a supervisor must see now: not acknowledged by the end of the day
    they were raised, or with a follow-up overdue (urgent by answer, by observation or by hand)."""
    today_text = (today or clock.today()).isoformat()
    found = rows(
        db,
        f"{_SELECT} where r.site_id in ({marks(site_ids)}) and r.status != 'closed' and r.urgency = 'urgent'"
        # Its day: the screening's date, else the day it was made (as indicators.RAISED_ON).
        " and ((r.acknowledged_at is null and coalesce((select s.administered_on from screenings s"
        "       where s.id = r.screening_id), substr(r.created_at, 1, 10)) < ?)"
        "      or exists (select 1 from referral_followups f where f.referral_id = r.id and f.done_on is null"
        "                 and f.due_on < ?))"
        " order by r.created_at",
        (*site_ids, today_text, today_text),
    )
    for referral in found:
        _decode(referral)
        referral["unacknowledged"] = referral["acknowledged_at"] is None
        referral["overdue"] = referral["next_due_on"] is not None and referral["next_due_on"] < today_text
    return found


def followups(db: sqlite_utils.Database, referral_id: str) -> list[dict]:
    return rows(
        db,
        "select f.*, u.display_name as done_by_name from referral_followups f"
        " left join users u on u.id = f.done_by where f.referral_id = ? order by f.due_on",
        (referral_id,),
    )


def events(db: sqlite_utils.Database, referral_id: str) -> list[dict]:
    join, order = in_clock_order("referral_events", "e")
    return rows(
        db,
        "select e.*, u.display_name as by_name from referral_events e"
        f" left join users u on u.id = e.by_user{join} where e.referral_id = ? order by {order}",
        (referral_id,),
    )


def _plan_one_more_if_last(db: sqlite_utils.Database, referral: dict, plan: FollowupPlan, now: str) -> None:
    """With no follow-up left to do, plan one more an interval after the latest contact
    (not after a date planned earlier)."""
    pending = db.execute(
        "select count(*) from referral_followups where referral_id = ? and done_on is null", (referral["id"],)
    ).fetchone()[0]
    if pending == 0:
        last = db.execute(
            "select max(done_on) from referral_followups where referral_id = ?", (referral["id"],)
        ).fetchone()[0]
        _plan_followup(db, referral, date.fromisoformat(last) + timedelta(weeks=plan.later_interval_weeks), now)


def record_followup(
    db: sqlite_utils.Database,
    referral: dict,
    followup_id: str,
    actor: dict,
    *,
    note: str | None,
    done_on: date,
    plan: FollowupPlan,
) -> dict:
    """Record a follow-up contact; plan one more when it was the last and the referral is open.

    A contact made before its due date moves the follow-ups still to come as early, so they
    keep their spacing from the contact that really happened.
    """
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise ReferralError(N_("The note is too long."), field="note")
    if done_on > clock.today():
        raise ReferralError(N_("The date of the contact cannot be in the future."), field="done_on")
    with write(db):
        current = _current(db, referral)
        if current["status"] == "closed":
            raise ReferralError(N_("This referral is closed."))
        followup = row(
            db, "select * from referral_followups where id = ? and referral_id = ?", (followup_id, referral["id"])
        )
        if followup is None:
            raise ReferralError(N_("No such follow-up."))
        if followup["done_on"] is not None:
            raise ReferralError(N_("This follow-up was already recorded."))
        now = utcnow()
        changes = {"done_on": done_on.isoformat(), "done_by": actor["id"], "note": note, "updated_at": now}
        db.table("referral_followups").update(followup_id, changes)
        early = (date.fromisoformat(followup["due_on"]) - done_on).days
        if early > 0:
            # Contact made before its date: the plan moves on from the real contact (the next one a week
            # after it, not a week after the planned date), so no longer gap opens between two contacts.
            db.execute(
                "update referral_followups set due_on = date(due_on, ?), updated_at = ?"
                " where referral_id = ? and done_on is null and due_on > ?",
                (f"-{early} days", now, referral["id"], followup["due_on"]),
            )
        _plan_one_more_if_last(db, current, plan, now)
        audit.log(
            db,
            user=actor,
            action="followup",
            table="referral_followups",
            record_id=followup_id,
            site_id=current["site_id"],
            before=followup,
            after={**followup, **changes},
        )
    return {**followup, **changes}

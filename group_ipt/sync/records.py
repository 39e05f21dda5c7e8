"""The main resources for the JSON API, within one device's site.

Reads return the table's rows. Writes never touch rows directly: each one calls the
domain function the app's pages call, so the same rules hold whichever way data comes
in. The server makes programme codes, scores, eligibility and safety referrals; a
client cannot send them. What the domain does not allow through the API (deleting a
participant, editing a screening, writing cycles or single attendance rows) is refused
with 405 and the reason (``REFUSED``). A device acts as itself: the audit log names it
(``device:<name>``), and it has no role, so it can do what a facilitator can.

Sync push (``engine.apply_batch``) is a different path: it replicates records a laptop
already checked with these same functions.

Plain Python, no Flask: the view passes the loaded forms and settings as ``Rules``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import NoReturn

from .. import clock, cycles, participants, referrals, screening, sessions
from ..db import row, rows
from ..instruments import Instrument
from ..intake import Intake
from . import tracking

# API name -> table. Each is a synced table (id, site_id, created_at, updated_at).
RESOURCES = {
    "participants": "participants",
    "screenings": "screenings",
    "referrals": "referrals",
    "cycles": "cycles",
    "sessions": "sessions",
    "attendance": "attendance",
}
MANAGED = ("id", "site_id", "created_at", "updated_at")
MAX_PAGE = 500

# What each resource accepts besides GET: collection POST creates, item PATCH changes.
WRITABLE = {"participants": ("POST", "PATCH"), "screenings": ("POST",), "referrals": ("POST", "PATCH")}

SCREENINGS_ARE_FACTS = "Screenings are facts: record a new screening to correct one."
CYCLES_IN_APP = "Create and change cycles in the app; laptops send them by sync."
WHOLE_SHEET = (
    "Attendance is saved a whole sheet at a time: POST /api/v1/sessions/{id}/attendance with the session's version."
)
REFUSED: dict[tuple[str, str], str] = {
    ("participants", "DELETE"): "Participants are never deleted through the API. A coordinator records that "
    "someone left (their status) in the app.",
    ("screenings", "PATCH"): SCREENINGS_ARE_FACTS,
    ("screenings", "DELETE"): SCREENINGS_ARE_FACTS,
    ("referrals", "DELETE"): "Referrals are never deleted: move one forward with PATCH (acknowledge, status, "
    "follow-up); a coordinator or supervisor closes it in the app.",
    **{
        (resource, method): CYCLES_IN_APP
        for resource in ("cycles", "sessions")
        for method in ("POST", "PATCH", "DELETE")
    },
    **{("attendance", method): WHOLE_SHEET for method in ("POST", "PATCH", "DELETE")},
}
STATUS_BY_DEVICE = (
    "A device cannot change a participant's status: screenings and cycles change it, and a "
    "coordinator or supervisor changes it by hand in the app."
)
REFERRAL_CHANGES = (
    'Send one change at a time: {"acknowledge": true}; {"status": ..., "note": ..., '
    '"referred_to": ...}; or {"followup_id": ..., "done_on": "YYYY-MM-DD", "note": ...}.'
)

# The bodies each write accepts (field -> JSON type), and which are required.
PARTICIPANT_NEW = {
    "name": "string",
    "sex": "string",
    "age": "integer|string",
    "birth_year": "integer|string",
    "village": "string",
    "phone": "string|null",
    "language": "string|null",
    "consents": "array",
    "consent_given_by": "string|null",
}
PARTICIPANT_NEW_REQUIRED = ("name", "sex", "village", "consents")
PARTICIPANT_CHANGE = {"name": "string", "village": "string", "phone": "string|null", "language": "string|null"}
SCREENING_NEW = {
    "participant_id": "string",
    "instrument_id": "string",
    "answers": "object",
    "submission_key": "string",
    "occasion": "string",
    "administered_on": "date",
    "risk_observed": "boolean",
    "exclusions": "array",
    "cycle_id": "string|null",
    "session_id": "string|null",
    "note": "string|null",
    "language": "string|null",
}
SCREENING_NEW_REQUIRED = ("participant_id", "instrument_id", "answers", "submission_key")
REFERRAL_NEW = {"participant_id": "string", "reason": "string", "urgency": "string", "note": "string|null"}
REFERRAL_NEW_REQUIRED = ("participant_id", "reason", "urgency")
REFERRAL_ACTIONS = {
    "acknowledge": ("acknowledge",),
    "status": ("status", "note", "referred_to"),
    "followup_id": ("followup_id", "done_on", "note"),
}
SHEET_SAVE = {"version": "integer", "attendance": "object", "checks": "object", "note": "string", "plans": "object"}
SHEET_SAVE_REQUIRED = ("version", "attendance")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RecordError(ValueError):
    """A record could not be read or written; ``status`` is the HTTP status to answer with.

    ``field`` names the field at fault, ``allow`` the methods a 405 allows.
    """

    def __init__(self, message: str, status: int = 400, *, field: str | None = None, allow: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.field = field
        self.allow = allow


@dataclass(frozen=True)
class Rules:
    """What the domain functions need besides the database: the loaded forms and settings."""

    instruments: dict[str, Instrument]
    intake: Intake
    protocols: dict
    plan: referrals.FollowupPlan
    cutoffs: dict = field(default_factory=dict)


def columns(db, resource: str) -> list[dict]:
    """Return the table's columns: name, type, required (not null without a default)."""
    table = _table(resource)
    out = []
    for _cid, name, ctype, notnull, default, pk in db.execute(f'pragma table_info("{table}")').fetchall():
        out.append(
            {
                "name": name,
                "type": ctype.lower(),
                "required": bool(notnull) and default is None and not pk,
                "pk": bool(pk),
            }
        )
    return out


def _table(resource: str) -> str:
    if resource not in RESOURCES:
        raise RecordError(f"Unknown resource {resource!r}; choose one of: {', '.join(RESOURCES)}.", 404)
    return RESOURCES[resource]


def allowed_methods(resource: str, *, item: bool) -> list[str]:
    """The methods a resource's collection (or one record, ``item``) answers."""
    write = "PATCH" if item else "POST"
    return ["GET", write] if write in WRITABLE.get(resource, ()) else ["GET"]


def refuse(resource: str, method: str) -> NoReturn:
    """Raise the 405 for a write the API does not allow on ``resource``, with the reason."""
    _table(resource)
    raise RecordError(REFUSED[(resource, method)], 405, allow=allowed_methods(resource, item=method != "POST"))


# ---- reading --------------------------------------------------------------------------------


def list_records(
    db, resource: str, site_id: str, *, after: str | None = None, limit: int = 100, updated_since: str | None = None
) -> dict:
    table = _table(resource)
    if not 1 <= limit <= MAX_PAGE:
        raise RecordError(f"'limit' must be between 1 and {MAX_PAGE}.")
    sql, params = f'select * from "{table}" where site_id = ?', [site_id]
    if after:
        sql += " and id > ?"
        params.append(after)
    if updated_since:
        sql += " and updated_at >= ?"
        params.append(updated_since)
    found = rows(db, sql + " order by id limit ?", [*params, limit])
    return {"items": found, "next_after": found[-1]["id"] if len(found) == limit else None}


def get_record(db, resource: str, site_id: str, record_id: str) -> dict:
    found = row(db, f'select * from "{_table(resource)}" where id = ? and site_id = ?', (record_id, site_id))
    if found is None:  # another site's record answers exactly as a missing one
        raise RecordError(f"No {resource} record {record_id!r}.", 404)
    return found


# ---- checking a body ------------------------------------------------------------------------


def _fields(db, resource: str, data: object, accepted: dict, *, creating: bool, required=()) -> dict:
    """Return ``data`` if it is an object of accepted fields with every required one, else raise."""
    if not isinstance(data, dict):
        raise RecordError("The body must be a JSON object of fields.")
    names = {c["name"] for c in columns(db, resource)}
    unknown = sorted(k for k in data if k not in accepted and k not in names)
    if unknown:
        raise RecordError(
            f"Unknown field(s) for {resource}: {', '.join(unknown)}. Send only: {', '.join(accepted)}.",
            field=unknown[0],
        )
    refused = sorted(k for k in data if k not in accepted)
    if refused:
        if creating or set(refused) <= set(MANAGED):
            raise RecordError(f"These fields are set by the server: {', '.join(refused)}.", field=refused[0])
        raise RecordError(f"These fields cannot be changed through the API: {', '.join(refused)}.", field=refused[0])
    missing = [k for k in required if data.get(k) is None]
    if missing:
        raise RecordError(f"Missing required field(s) for {resource}: {', '.join(missing)}.", field=missing[0])
    return data


def _text(data: dict, key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"'{key}' must be text.", field=key)
    return value


def _number_or_text(data: dict, key: str) -> int | str | None:
    value = data.get(key)
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise RecordError(f"'{key}' must be a whole number.", field=key)


def _whole(data: dict, key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"'{key}' must be a whole number.", field=key)
    return value


def _flag(data: dict, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise RecordError(f"'{key}' must be true or false.", field=key)
    return value


def _text_list(data: dict, key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"'{key}' must be a list of text.", field=key)
    return value


def _object(data: dict, key: str) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"'{key}' must be a JSON object.", field=key)
    return value


def _day(data: dict, key: str) -> date | None:
    value = _text(data, key)
    if value is None:
        return None
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise RecordError(f"'{key}' must be a date written YYYY-MM-DD.", field=key) from None


def _actor(device: dict) -> dict:
    """The device as the actor of a change: no user id, no role (a facilitator's rights)."""
    return {"id": None, "username": f"device:{device['name']}", "role": "device"}


def _participant(db, device: dict, participant_id: str) -> dict:
    found = participants.get(db, participant_id, [device["site_id"]])
    if found is None:
        raise RecordError(f"No participants record {participant_id!r}.", 404, field="participant_id")
    return found


# ---- participants ---------------------------------------------------------------------------


def create_participant(db, device: dict, data: object) -> dict:
    """Register a person (participants.register): a new programme code, consents, duplicate flags."""
    data = _fields(db, "participants", data, PARTICIPANT_NEW, creating=True, required=PARTICIPANT_NEW_REQUIRED)
    fields = {k: _text(data, k) for k in ("name", "sex", "village", "phone", "language")}
    fields.update({k: _number_or_text(data, k) for k in ("age", "birth_year")})
    site = row(db, "select * from sites where id = ?", (device["site_id"],))
    registration = participants.register(
        db,
        site=site,
        actor=_actor(device),
        consents=_text_list(data, "consents"),
        consent_given_by=_text(data, "consent_given_by") or "",
        **fields,
    )
    return _with_duplicates(db, device, registration)


def update_participant(db, device: dict, participant_id: str, data: object) -> dict:
    """Change a participant's name, village, phone or language (participants.update_details)."""
    data = _fields(
        db, "participants", data, {**PARTICIPANT_CHANGE, "status": "string", "reason": "string"}, creating=False
    )
    get_record(db, "participants", device["site_id"], participant_id)
    if "status" in data or "reason" in data:
        raise RecordError(STATUS_BY_DEVICE, 403, field="status")
    changes = {k: _text(data, k) for k in data}
    registration = participants.update_details(db, participant_id, changes, _actor(device))
    return _with_duplicates(db, device, registration)


def _with_duplicates(db, device: dict, registration: participants.Registration) -> dict:
    out = get_record(db, "participants", device["site_id"], registration.participant["id"])
    out["possible_duplicates"] = [{"id": p["id"], "code": p["code"]} for p in registration.duplicates]
    return out


# ---- screenings -----------------------------------------------------------------------------


def create_screening(db, device: dict, data: object, rules: Rules) -> tuple[dict, bool]:
    """Score and save a screening (screening.save_screening), with its safety referral on any risk.

    Return the saved screening and whether it was created now (False: the submission key
    was already saved, and that screening is returned).
    """
    data = _fields(db, "screenings", data, SCREENING_NEW, creating=True, required=SCREENING_NEW_REQUIRED)
    participant = _participant(db, device, _text(data, "participant_id"))
    instrument_id = _text(data, "instrument_id")
    instrument = rules.instruments.get(instrument_id)
    if instrument is None:
        raise RecordError(
            f"No instrument {instrument_id!r}; choose one of: {', '.join(sorted(rules.instruments))}.",
            field="instrument_id",
        )
    answers = _object(data, "answers")
    for item, value in answers.items():
        if value is not None and not isinstance(value, str) and (not isinstance(value, int) or isinstance(value, bool)):
            raise RecordError(f"The answer to {item} must be a whole number, text or null.", field=item)
    outcome = screening.save_screening(
        db,
        participant=participant,
        instrument=instrument,
        raw_answers=answers,
        submission_key=_text(data, "submission_key"),
        actor=_actor(device),
        intake=rules.intake,
        plan=rules.plan,
        occasion=_text(data, "occasion", "screening"),
        administered_on=_day(data, "administered_on"),
        risk_observed=_flag(data, "risk_observed"),
        exclusions=_text_list(data, "exclusions"),
        cutoff=(rules.cutoffs or {}).get(instrument.id),
        language=_text(data, "language"),
        note=_text(data, "note"),
        cycle_id=_text(data, "cycle_id"),
        session_id=_text(data, "session_id"),
    )
    out = get_record(db, "screenings", device["site_id"], outcome.screening["id"])
    referral = outcome.referral
    out["referral_id"] = referral["id"] if referral else None
    out["referral_urgency"] = referral["urgency"] if referral else None
    steps = rules.intake.safety_steps.get(referral["urgency"]) if referral and rules.intake else None
    out["safety_steps"] = {"title": steps.title, "steps": list(steps.steps)} if steps else None
    return out, outcome.created


# ---- referrals ------------------------------------------------------------------------------


def create_referral(db, device: dict, data: object, rules: Rules) -> dict:
    """Refer a person by hand (a risk seen outside a screening): referrals.create."""
    data = _fields(db, "referrals", data, REFERRAL_NEW, creating=True, required=REFERRAL_NEW_REQUIRED)
    participant = _participant(db, device, _text(data, "participant_id"))
    reason = (_text(data, "reason") or "").strip()
    referral = referrals.create(
        db,
        participant=participant,
        reason=reason,
        triggers=[{"kind": "manual", "reason": reason}],
        urgency=_text(data, "urgency"),
        actor=_actor(device),
        plan=rules.plan,
        note=_text(data, "note"),
    )
    return get_record(db, "referrals", device["site_id"], referral["id"])


def update_referral(db, device: dict, referral_id: str, data: object, rules: Rules) -> dict:
    """Move a referral forward as the referral page does: acknowledge, a new status, or a follow-up."""
    accepted = {
        "acknowledge": "boolean",
        "status": "string",
        "note": "string|null",
        "referred_to": "string|null",
        "followup_id": "string",
        "done_on": "date",
    }
    data = _fields(db, "referrals", data, accepted, creating=False)
    referral = referrals.get(db, referral_id, [device["site_id"]])
    if referral is None:
        raise RecordError(f"No referrals record {referral_id!r}.", 404)
    actions = [a for a in REFERRAL_ACTIONS if a in data]
    if len(actions) != 1:
        raise RecordError(REFERRAL_CHANGES)
    action = actions[0]
    extra = sorted(set(data) - set(REFERRAL_ACTIONS[action]))
    if extra:
        raise RecordError(f"{', '.join(extra)} cannot go with '{action}'. {REFERRAL_CHANGES}", field=extra[0])
    actor = _actor(device)
    if action == "acknowledge":
        if _flag(data, "acknowledge") is not True:
            raise RecordError('An acknowledgement cannot be undone; send "acknowledge": true.', field="acknowledge")
        referrals.acknowledge(db, referral, actor)
    elif action == "status":
        referrals.set_status(
            db,
            referral,
            _text(data, "status") or "",
            actor,
            note=_text(data, "note"),
            referred_to=_text(data, "referred_to"),
        )
    else:
        done_on = _day(data, "done_on")
        if done_on is None:
            raise RecordError("Missing required field(s) for referrals: done_on.", field="done_on")
        referrals.record_followup(
            db,
            referral,
            _text(data, "followup_id") or "",
            actor,
            note=_text(data, "note"),
            done_on=done_on,
            plan=rules.plan,
        )
    return get_record(db, "referrals", device["site_id"], referral_id)


# ---- a session's attendance sheet -----------------------------------------------------------


def _session(db, device: dict, session_id: str) -> dict:
    found = cycles.get_session(db, session_id, [device["site_id"]])
    if found is None:
        raise RecordError(f"No sessions record {session_id!r}.", 404)
    return found


def attendance_sheet(db, device: dict, session_id: str) -> dict:
    """Return what a session's sheet shows: its version, who belongs on it, what is saved."""
    session = _session(db, device, session_id)
    saved = sessions.saved_entry(db, session_id)
    return {
        "session": session,
        "version": session["version"],
        "members": [
            {
                "member_id": m["id"],
                "participant_id": m["participant_id"],
                "code": m["participant_code"],
                "name": m["name"],
                "status": m["status"],
            }
            for m in sessions.expected_members(db, session)
        ],
        "attendance": saved.attendance,
        "checks": {m: {"trend": trend, "rating": rating} for m, (trend, rating) in saved.checks.items()},
        "note": saved.note,
    }


def record_attendance(db, device: dict, session_id: str, data: object, rules: Rules) -> dict:
    """Save a session's whole sheet in one transaction (sessions.record_session) and return it.

    ``version`` is the session's version the sheet was made from: a newer one raises
    StaleSession. Absent ``note`` or ``checks`` keep what is saved (checks only for members
    still marked present or late); sent ones replace it.
    """
    data = _fields(db, "sessions", data, SHEET_SAVE, creating=False, required=SHEET_SAVE_REQUIRED)
    session = _session(db, device, session_id)
    version = _whole(data, "version")
    attendance = _object(data, "attendance")
    for member_id, status in attendance.items():
        if not isinstance(status, str):
            raise RecordError(
                f"The attendance of {member_id} must be text: {', '.join(sessions.ATTENDANCE)}.", field="attendance"
            )
    saved = sessions.saved_entry(db, session_id)
    if "checks" in data:
        checks = {}
        for member_id, check in _object(data, "checks").items():
            if not isinstance(check, dict) or set(check) - {"trend", "rating"}:
                raise RecordError(
                    'A symptom check is {"trend": better|same|worse|null, "rating": 0-10|null}.', field="checks"
                )
            trend, rating = check.get("trend"), check.get("rating")
            if (trend is not None and not isinstance(trend, str)) or (
                rating is not None and (not isinstance(rating, int) or isinstance(rating, bool))
            ):
                raise RecordError(
                    'A symptom check is {"trend": better|same|worse|null, "rating": 0-10|null}.', field="checks"
                )
            checks[member_id] = (trend, rating)
    else:
        checks = {m: c for m, c in saved.checks.items() if attendance.get(m) in ("present", "late")}
    plans = {}
    for member_id, plan in _object(data, "plans").items():
        if (
            not isinstance(plan, dict)
            or set(plan) - {"problem_area", "problem_area_2", "goals"}
            or not all(v is None or isinstance(v, str) for v in plan.values())
        ):
            raise RecordError('A plan is {"problem_area": ..., "problem_area_2": ..., "goals": "..."}.', field="plans")
        plans[member_id] = (plan.get("problem_area"), plan.get("problem_area_2"), plan.get("goals") or "")
    note = _text(data, "note") if "note" in data else saved.note
    entry = sessions.SessionEntry(attendance, checks, note or "", None, plans)
    sessions.record_session(
        db,
        session["id"],
        entry,
        expected_version=version,
        protocols=rules.protocols,
        actor=_actor(device),
        today=clock.today(),
    )
    return attendance_sheet(db, device, session_id)


def resource_tables_are_synced(db) -> list[str]:
    """Resources whose table does not exist (yet) in this database."""
    tables = tracking.synced_tables(db)
    return [r for r, t in RESOURCES.items() if t not in tables]

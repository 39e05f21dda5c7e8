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

from dataclasses import dataclass, field
from datetime import date
from typing import NoReturn

from jsonschema import ValidationError

from ..base import clock
from ..core import cycles, participants, referrals, screening, sessions
from ..formfiles.instruments import Instrument
from ..formfiles.intake import Intake
from ..store import tracking
from ..store.db import one, row, rows, write
from . import schemas

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

# The three changes of a referral, by the field that names each, in the order of the
# ReferralChange schema's ``oneOf`` (sync/schemas.py).
REFERRAL_ACTIONS = ("acknowledge", "status", "followup_id")


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


@dataclass
class Body:
    """A write body checked against the schema the API publishes (``sync/schemas.py``).

    Its structure (types, required and unknown fields, dates) is checked at once. Its value rules
    (an urgency of the list, an age in range, a name not blank) are the domain's too: the domain
    function answers them in its own words, and ``confirm`` refuses, before the write commits,
    whatever the domain let through that the schema does not allow.
    """

    data: dict
    pending: list[ValidationError]

    def confirm(self) -> None:
        if self.pending:
            message, field_name = schemas.value_message(self.pending[0])
            raise RecordError(message, field=field_name)


def _checked(
    db, resource: str, name: str, data: object, rules: Rules, *, creating: bool, also=(), branch: int | None = None
) -> Body:
    """Check ``data`` against the published schema ``name``; raise the first structural fault.

    ``also`` are fields accepted beyond the schema, for a clearer refusal further on.
    """
    instruments = tuple(sorted(rules.instruments))
    schema = schemas.schema_of(name, instruments, branch)
    if branch is None:
        _known_fields(db, resource, data, [*schema["properties"], *also], creating=creating)
    assert isinstance(data, dict)
    missing = [k for k in schema.get("required", ()) if data.get(k) is None]
    if missing:
        raise RecordError(f"Missing required field(s) for {resource}: {', '.join(missing)}.", field=missing[0])
    found = schemas.errors(name, {k: v for k, v in data.items() if k not in also}, instruments, branch)
    for error in found:
        if schemas.is_structure(error):
            message, field_name = schemas.structure_message(error)
            raise RecordError(message, field=field_name)
    return Body(data, found)


def _known_fields(db, resource: str, data: object, accepted: list[str], *, creating: bool) -> None:
    """Refuse a body that is not an object, or that holds a field the write does not take."""
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


def _day(value: str | None) -> date | None:
    """A date the schema's ``format: date`` already checked (YYYY-MM-DD)."""
    return None if value is None else date.fromisoformat(value)


def _actor(device: dict) -> dict:
    """The device as the actor of a change: no user id, no role (a facilitator's rights)."""
    return {"id": None, "username": f"device:{device['name']}", "role": "device"}


def _participant(db, device: dict, participant_id: str) -> dict:
    found = participants.get(db, participant_id, [device["site_id"]])
    if found is None:
        raise RecordError(f"No participants record {participant_id!r}.", 404, field="participant_id")
    return found


# ---- participants ---------------------------------------------------------------------------


def create_participant(db, device: dict, data: object, rules: Rules) -> dict:
    """Register a person (participants.register): a new programme code, consents, duplicate flags."""
    body = _checked(db, "participants", "ParticipantNew", data, rules, creating=True)
    data = body.data
    site = one(db, "select * from sites where id = ?", (device["site_id"],))
    with write(db):
        registration = participants.register(
            db,
            site=site,
            actor=_actor(device),
            consents=data["consents"],
            consent_given_by=data.get("consent_given_by") or "",
            **{k: data.get(k) for k in ("name", "sex", "village", "phone", "language", "age", "birth_year")},
        )
        body.confirm()
    return _with_duplicates(db, device, registration)


def update_participant(db, device: dict, participant_id: str, data: object, rules: Rules) -> dict:
    """Change a participant's name, village, phone or language (participants.update_details)."""
    body = _checked(db, "participants", "ParticipantChange", data, rules, creating=False, also=("status", "reason"))
    get_record(db, "participants", device["site_id"], participant_id)
    if "status" in body.data or "reason" in body.data:
        raise RecordError(STATUS_BY_DEVICE, 403, field="status")
    with write(db):
        registration = participants.update_details(db, participant_id, dict(body.data), _actor(device))
        body.confirm()
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
    body = _checked(db, "screenings", "ScreeningNew", data, rules, creating=True)
    data = body.data
    participant = _participant(db, device, data["participant_id"])
    instrument = rules.instruments.get(data["instrument_id"])
    if instrument is None:
        raise RecordError(
            f"No instrument {data['instrument_id']!r}; choose one of: {', '.join(sorted(rules.instruments))}.",
            field="instrument_id",
        )
    with write(db):
        outcome = screening.save_screening(
            db,
            participant=participant,
            instrument=instrument,
            raw_answers=data["answers"],
            submission_key=data["submission_key"],
            actor=_actor(device),
            intake=rules.intake,
            plan=rules.plan,
            occasion=data.get("occasion", "screening"),
            administered_on=_day(data.get("administered_on")),
            risk_observed=data.get("risk_observed", False),
            exclusions=data.get("exclusions") or [],
            cutoff=(rules.cutoffs or {}).get(instrument.id),
            language=data.get("language"),
            note=data.get("note"),
            cycle_id=data.get("cycle_id"),
            session_id=data.get("session_id"),
        )
        body.confirm()
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
    body = _checked(db, "referrals", "ReferralNew", data, rules, creating=True)
    data = body.data
    participant = _participant(db, device, data["participant_id"])
    reason = data["reason"].strip()
    with write(db):
        referral = referrals.create(
            db,
            participant=participant,
            reason=reason,
            triggers=[{"kind": "manual", "reason": reason}],
            urgency=data["urgency"],
            actor=_actor(device),
            plan=rules.plan,
            note=data.get("note"),
        )
        body.confirm()
    return get_record(db, "referrals", device["site_id"], referral["id"])


def update_referral(db, device: dict, referral_id: str, data: object, rules: Rules) -> dict:
    """Move a referral forward as the referral page does: acknowledge, a new status, or a follow-up."""
    instruments = tuple(sorted(rules.instruments))
    branches = schemas.schema_of("ReferralChange", instruments)["oneOf"]
    every = list(dict.fromkeys(name for branch in branches for name in branch["properties"]))
    _known_fields(db, "referrals", data, every, creating=False)
    assert isinstance(data, dict)
    referral = referrals.get(db, referral_id, [device["site_id"]])
    if referral is None:
        raise RecordError(f"No referrals record {referral_id!r}.", 404)
    actions = [a for a in REFERRAL_ACTIONS if a in data]
    if len(actions) != 1:
        raise RecordError(REFERRAL_CHANGES)
    action = actions[0]
    branch = list(REFERRAL_ACTIONS).index(action)
    extra = sorted(set(data) - set(branches[branch]["properties"]))
    if extra:
        raise RecordError(f"{', '.join(extra)} cannot go with '{action}'. {REFERRAL_CHANGES}", field=extra[0])
    body = _checked(db, "referrals", "ReferralChange", data, rules, creating=False, branch=branch)
    actor = _actor(device)
    with write(db):
        if action == "acknowledge":
            if data["acknowledge"] is not True:
                raise RecordError('An acknowledgement cannot be undone; send "acknowledge": true.', field="acknowledge")
            referrals.acknowledge(db, referral, actor)
        elif action == "status":
            referrals.set_status(
                db, referral, data["status"], actor, note=data.get("note"), referred_to=data.get("referred_to")
            )
        else:
            referrals.record_followup(
                db,
                referral,
                data["followup_id"],
                actor,
                note=data.get("note"),
                done_on=date.fromisoformat(data["done_on"]),
                plan=rules.plan,
            )
        body.confirm()
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
    body = _checked(db, "sessions", "AttendanceSave", data, rules, creating=False)
    data = body.data
    session = _session(db, device, session_id)
    attendance = data["attendance"]
    saved = sessions.saved_entry(db, session_id)
    if "checks" in data:
        checks = {m: (c.get("trend"), c.get("rating")) for m, c in (data["checks"] or {}).items()}
    else:
        checks = {m: c for m, c in saved.checks.items() if attendance.get(m) in ("present", "late")}
    plans = {
        m: (p.get("problem_area"), p.get("problem_area_2"), p.get("goals") or "")
        for m, p in (data.get("plans") or {}).items()
    }
    note = data.get("note", saved.note)
    entry = sessions.SessionEntry(attendance, checks, note or "", None, plans)
    with write(db):
        sessions.record_session(
            db,
            session["id"],
            entry,
            expected_version=data["version"],
            protocols=rules.protocols,
            actor=_actor(device),
            today=clock.today(),
        )
        body.confirm()
    return attendance_sheet(db, device, session_id)


def resource_tables_are_synced(db) -> list[str]:
    """Resources whose table does not exist (yet) in this database."""
    tables = tracking.synced_tables(db)
    return [r for r, t in RESOURCES.items() if t not in tables]

"""The JSON Schema of every write body of the API: one source for the document and the checks.

The OpenAPI document (/api/v1/openapi.json) publishes these schemas, and ``sync/records.py``
validates each request body against the same schema with ``jsonschema`` before it calls the
domain function: what the document promises is what the server enforces. Field types, required
fields and unknown fields are answered here with the field named; value rules the domain also
states (a name not blank, an age in range, an urgency of the list) are answered with the
domain's own words, and the schema still holds for anything the domain would let through
(``records`` checks both inside one transaction).
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from ..base import clock, fields
from ..core import participants, referrals, screening, sessions

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
SHEET_SAVE = {"version": "integer", "attendance": "object", "checks": "object", "note": "string", "plans": "object"}
SHEET_SAVE_REQUIRED = ("version", "attendance")


# The JSON types of the write bodies' fields.
BODY_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "string|null": {"type": ["string", "null"]},
    "integer": {"type": "integer"},
    "integer|string": {"type": ["integer", "string"]},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "array": {"type": "array", "items": {"type": "string"}},
    "object": {"type": "object"},
}


def _body(fields: dict, required=(), **details: Any) -> dict:
    """A write body's schema: the fields' JSON types, plus descriptions or enums per field."""
    properties = {}
    for name, kind in fields.items():
        extra = details.get(name, {})
        properties[name] = {**BODY_TYPES[kind], **({"description": extra} if isinstance(extra, str) else extra)}
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


def write_schemas(instruments: list[str] | None) -> dict:
    """The write bodies' schemas by name, as the OpenAPI document publishes them (``components.schemas``)."""
    return {
        "ParticipantNew": _participant_new(),
        "ParticipantChange": _participant_change(),
        "ParticipantSaved": _participant_saved(),
        "ScreeningNew": _screening_new(instruments),
        "ScreeningSaved": _screening_saved(),
        "ReferralNew": _referral_new(),
        "ReferralChange": _referral_change(),
        "AttendanceSave": _attendance_save(),
        "AttendanceSheet": _attendance_sheet(),
    }


# The parts several bodies share.
NOT_BLANK = {"minLength": 1, "description": "not blank"}
NOTE = {"type": ["string", "null"], "maxLength": referrals.MAX_NOTE}
SYMPTOM_CHECK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "trend": {"type": ["string", "null"], "enum": [*sessions.TRENDS, None]},
        "rating": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
    },
}
PLAN = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "problem_area": {"type": ["string", "null"]},
        "problem_area_2": {"type": ["string", "null"]},
        "goals": {"type": ["string", "null"]},
    },
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _saved(resource: str, properties: dict) -> dict:
    """An answer: the resource's record and what the write adds to it."""
    return {"allOf": [_ref(resource), {"type": "object", "properties": properties}]}


def _participant_text(field: str) -> dict:
    return {**NOT_BLANK, "maxLength": fields.limit("participants", field)}


def _participant_new() -> dict:
    # Bounds apply to numbers only: a number must be in range, text (e.g. "34") is checked by the server.
    year = clock.today().year
    schema = _body(
        PARTICIPANT_NEW,
        PARTICIPANT_NEW_REQUIRED,
        name=_participant_text("name"),
        village=_participant_text("village"),
        language={"maxLength": fields.limit("participants", "language")},
        phone={"maxLength": fields.limit("participants", "phone")},
        sex={"enum": list(participants.SEXES)},
        age={
            "type": ["integer", "string", "null"],
            "minimum": participants.MIN_AGE,
            "maximum": participants.MAX_AGE,
            "description": "in years, an estimate is fine; give age or birth_year, not both",
        },
        birth_year={
            "type": ["integer", "string", "null"],
            "minimum": year - participants.MAX_AGE,
            "maximum": year - participants.MIN_AGE,
        },
        consents={
            "items": {"type": "string", "enum": list(participants.CONSENT_PURPOSES)},
            "contains": {"const": "screening"},
            "description": "every purpose the person agreed to; 'screening' is required",
        },
        consent_given_by="who gave consent (a guardian's name); blank: the person",
    )
    schema["anyOf"] = [{"required": ["age"]}, {"required": ["birth_year"]}]
    return schema


def _participant_change() -> dict:
    return {
        **_body(PARTICIPANT_CHANGE, name=_participant_text("name"), village=_participant_text("village")),
        "description": "Only these fields; sex, birth year, code and status are refused.",
    }


def _participant_saved() -> dict:
    return _saved(
        "participants",
        {
            "possible_duplicates": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "string"}, "code": {"type": "string"}}},
                "description": "flagged for a coordinator's review; nothing is merged",
            }
        },
    )


def _screening_new(instruments: list[str] | None) -> dict:
    return _body(
        SCREENING_NEW,
        SCREENING_NEW_REQUIRED,
        instrument_id={"enum": instruments} if instruments else "an instrument of forms/instruments",
        answers={
            "additionalProperties": {"type": ["integer", "string", "null"]},
            "description": "question id -> the option's value; null or absent: not answered",
        },
        submission_key={
            "pattern": "^[A-Za-z0-9_-]{16,64}$",
            "description": "a new random key per screening; the same key again returns the "
            "saved screening (200) and saves nothing",
        },
        occasion={"enum": list(screening.OCCASIONS), "default": "screening"},
        administered_on={"type": ["string", "null"], "description": "default: today; not in the future"},
        risk_observed="the facilitator saw a risk: an urgent referral",
        exclusions={
            "type": ["array", "null"],
            "items": {"type": "string"},
            "description": "codes of forms/intake.yaml: a referral",
        },
        cycle_id="with session_id: the cycle measure this answers (the person must be a member)",
    )


def _screening_saved() -> dict:
    return {
        **_saved(
            "screenings",
            {
                "referral_id": {"type": ["string", "null"], "description": "the safety referral, when one was made"},
                "referral_urgency": {"type": ["string", "null"], "enum": [*referrals.URGENCIES, None]},
                "safety_steps": {
                    "type": ["object", "null"],
                    "description": "what to do now (forms/intake.yaml)",
                    "properties": {
                        "title": {"type": "string"},
                        "steps": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        ),
        "description": "total is the score; band, eligible (1, 0 or null) and risk (1 or 0) are the server's.",
    }


def _referral_new() -> dict:
    return _body(
        REFERRAL_NEW,
        REFERRAL_NEW_REQUIRED,
        reason=NOT_BLANK,
        urgency={"enum": list(referrals.URGENCIES)},
        note=NOTE,
    )


def _referral_change() -> dict:
    """One change a body: an acknowledgement, a status, or a follow-up contact."""
    return {
        "oneOf": [
            _body(
                {"acknowledge": "boolean"},
                ["acknowledge"],
                acknowledge={"const": True, "description": "the alert and its steps were seen"},
            ),
            _body(
                {"status": "string", "note": "string|null", "referred_to": "string|null"},
                ["status"],
                status={
                    "enum": [s for s in referrals.STATUSES if s not in ("open", "closed")],
                    "description": "forward only, after acknowledging; 'referred' needs referred_to",
                },
                note=NOTE,
            ),
            _body(
                {"followup_id": "string", "done_on": "date", "note": "string|null"},
                ["followup_id", "done_on"],
                note=NOTE,
            ),
        ]
    }


def _attendance_save() -> dict:
    return _body(
        SHEET_SAVE,
        SHEET_SAVE_REQUIRED,
        version="the session's version the sheet was made from (GET .../attendance)",
        attendance={
            "additionalProperties": {"enum": list(sessions.ATTENDANCE)},
            "description": "member id -> status, for everyone on the sheet (a make-up: who came)",
        },
        checks={
            "type": ["object", "null"],
            "additionalProperties": SYMPTOM_CHECK,
            "description": "member id -> symptom check (present or late only); absent: keep the saved; null: none",
        },
        note={"type": ["string", "null"], "description": "absent: keep the saved note; null: none"},
        plans={
            "type": ["object", "null"],
            "additionalProperties": PLAN,
            "description": "pre-group session: member id -> plan",
        },
    )


def _attendance_sheet() -> dict:
    member = {
        "type": "object",
        "properties": {
            "member_id": {"type": "string"},
            "participant_id": {"type": "string"},
            "code": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "properties": {
            "session": _ref("sessions"),
            "version": {"type": "integer"},
            "members": {"type": "array", "items": member},
            "attendance": {"type": "object", "additionalProperties": {"type": "string"}},
            "checks": {"type": "object", "additionalProperties": SYMPTOM_CHECK},
            "note": {"type": "string"},
        },
    }


# ---- checking a body against its schema ---------------------------------------------------------

# The write bodies requests are checked against (the others in write_schemas describe answers).
BODIES = ("ParticipantNew", "ParticipantChange", "ScreeningNew", "ReferralNew", "ReferralChange", "AttendanceSave")
# What a body's structure breaks: answered here, naming the field. Other keywords (enum, minimum,
# minLength, pattern...) are value rules the domain states in its own words (see ``records``).
STRUCTURE = frozenset({"type", "format", "required", "additionalProperties"})
# How a structural fault inside one of these fields is told (``{key}``: the entry at fault).
NESTED = {
    "answers": "The answer to {key} must be a whole number, text or null.",
    "attendance": "The attendance of {key} must be text: " + ", ".join(sessions.ATTENDANCE) + ".",
    "checks": 'A symptom check is {"trend": better|same|worse|null, "rating": 0-10|null}.',
    "plans": 'A plan is {"problem_area": ..., "problem_area_2": ..., "goals": "..."}.',
}

# How a wrong type is told, the first kind the field allows deciding.
TYPE_WORDS = {
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list of text",
    "object": "a JSON object",
}


@functools.lru_cache(maxsize=8)
def _validators(instruments: tuple[str, ...], year: int) -> dict[str, Draft202012Validator]:
    """One validator per body, for this server's instruments and this year (birth years move)."""
    found = write_schemas(list(instruments) or None)
    checker = Draft202012Validator.FORMAT_CHECKER
    return {name: Draft202012Validator(found[name], format_checker=checker) for name in BODIES}


def schema_of(name: str, instruments: tuple[str, ...], branch: int | None = None) -> dict:
    """The published schema of body ``name`` (``branch``: one of a ``oneOf``'s bodies)."""
    schema = _validators(instruments, clock.today().year)[name].schema
    return schema["oneOf"][branch] if branch is not None else schema


def errors(name: str, body: dict, instruments: tuple[str, ...], branch: int | None = None) -> list[ValidationError]:
    """Every way ``body`` breaks the schema, in the order of the schema's fields."""
    validator = _validators(instruments, clock.today().year)[name]
    if branch is not None:
        validator = validator.evolve(schema=validator.schema["oneOf"][branch])
    order = list(validator.schema.get("properties", {}))
    found = list(validator.iter_errors(body))
    return sorted(found, key=lambda e: order.index(field_of(e)) if field_of(e) in order else len(order))


def field_of(error: ValidationError) -> str | None:
    return str(error.path[0]) if error.path else None


def is_structure(error: ValidationError) -> bool:
    # An attendance status is an enum of text: a number there is a wrong type, not a wrong value.
    if error.validator == "enum" and len(error.path) == 2 and error.path[0] == "attendance":
        return not isinstance(error.instance, str)
    return error.validator in STRUCTURE


def structure_message(error: ValidationError) -> tuple[str, str | None]:
    """A structural fault as (message, field) a developer can act on."""
    name = field_of(error)
    if name in NESTED and len(error.path) > 1:
        key = str(error.path[1])
        return NESTED[name].replace("{key}", key), key if name == "answers" else name
    if error.validator == "format":
        return f"'{name}' must be a date written YYYY-MM-DD.", name
    if len(error.path) > 1:  # an item of a list of text (consents, exclusions)
        return f"'{name}' must be a list of text.", name
    expected = error.validator_value if error.validator == "type" else "string"
    kinds = set(expected if isinstance(expected, list) else [expected])
    words = next((w for kind, w in TYPE_WORDS.items() if kind in kinds), "text")
    return f"'{name}' must be {words}.", name


def value_message(error: ValidationError) -> tuple[str, str | None]:
    """A value rule the domain let through, told from the schema (a safety belt: the domain's
    own checks answer first, in the person's words)."""
    name = field_of(error)
    if error.validator == "enum":
        return f"'{name}' must be one of: {', '.join(str(v) for v in error.validator_value if v is not None)}.", name
    if error.validator == "minLength":
        return f"'{name}' must not be blank.", name
    if error.validator == "maxLength":
        return f"'{name}' must be at most {error.validator_value} characters long.", name
    return f"'{name or 'body'}' does not fit the API's schema: {error.message}.", name

"""Participants: registration with a programme code, consent, status history, duplicates.

Plain functions on the database, no Flask. Every query a user triggers takes the
``site_ids`` that user may see; a participant of another site is ``None``, exactly
as one that does not exist.

Programme codes look like ``KMP-4827-H``: the site code, four digits and a check
letter computed from the digits, so that a mistyped digit or two swapped digits
are caught when someone types a code from a paper form.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlite_utils

from ..base import clock, fields
from ..base.errors import N_, DomainError, required
from ..store.db import code_block, in_clock_order, marks, new_id, row, rows, utcnow, write
from . import audit

SEXES = ("female", "male", "other")
STATUSES = ("registered", "screened", "eligible", "not_eligible", "referred", "enrolled", "completed", "dropped_out")
# Statuses a screening may change; once in a cycle, the cycle decides.
PRE_ENROLMENT = frozenset({"registered", "screened", "eligible", "not_eligible", "referred"})
CONSENT_PURPOSES = ("screening", "group", "data_sharing")
MAX_NAME = fields.limit("participants", "name")
MAX_VILLAGE = fields.limit("participants", "village")
MAX_LANGUAGE = fields.limit("participants", "language")
MAX_GIVEN_BY = fields.limit("consents", "given_by")
MIN_AGE, MAX_AGE = 10, 110
# Two records are possible duplicates when name and village match and the birth
# years are this close (ages are often estimates).
AGE_BAND_YEARS = 5
CODE_ATTEMPTS = 200

# 23 letters: no I or O (read as 1 and 0), no Z (read as 2). The modulus is prime
# and larger than any digit difference, so any single wrong digit and any swap of
# two neighbouring digits changes the letter.
CHECK_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXY"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,24}$")


class ParticipantError(DomainError):
    """A participant could not be registered or changed; the message says why."""


class EnrolmentBlocked(ParticipantError):
    """The participant must be referred, not enrolled (an exclusion at intake)."""


def check_letter(digits: str) -> str:
    """Return the check letter of four digits."""
    total = sum(weight * int(d) for weight, d in enumerate(digits, start=1))
    return CHECK_LETTERS[total % len(CHECK_LETTERS)]


def make_code(site_code: str, digits: str) -> str:
    return f"{site_code}-{digits}-{check_letter(digits)}"


def parse_code(text: str) -> tuple[str, str, str] | None:
    """Return (site code, digits, letter) of something shaped like a code, else None.

    Spaces, dashes and case are forgiven: ``kmp 4827h`` reads as ``KMP-4827-H``.
    """
    compact = re.sub(r"[\s-]+", "", text.strip().upper())
    match = re.match(r"^([A-Z0-9]{2,8}?)(\d{4})([A-Z])$", compact)
    return match.groups() if match else None  # type: ignore[return-value]


def code_is_valid(code: str) -> bool:
    parts = parse_code(code)
    return parts is not None and check_letter(parts[1]) == parts[2]


def generate_code(
    db: sqlite_utils.Database, site_id: str, site_code: str, randbelow=secrets.randbelow, *, block: int | None = -1
) -> str:
    """Return a code not yet used at this site, trying random digits until one is free.

    A laptop that syncs makes codes from its own block (``code_block``: the first digit), so
    two laptops of a site never make the same code offline; a full block falls back to any
    free code (a clash is then renamed at the centre). ``block`` -1: this database's own.
    """
    block = code_block(db) if block == -1 else block
    for attempt in range(CODE_ATTEMPTS * 2):
        digits = (
            f"{block}{randbelow(1000):03d}"
            if block is not None and attempt < CODE_ATTEMPTS
            else f"{randbelow(10000):04d}"
        )
        code = make_code(site_code, digits)
        if not row(db, "select 1 as x from participants where site_id = ? and code = ?", (site_id, code)):
            return code
    raise ParticipantError(N_("No free programme code is left for this site. Ask an administrator."))


def name_key(text: str) -> str:
    """Return the form of a name used to search and compare: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class Registration:
    participant: dict
    duplicates: list[dict] = field(default_factory=list)  # possible duplicates, flagged for review


def validate(
    *,
    name: str | None,
    sex: str | None,
    age: str | int | None,
    birth_year: str | int | None,
    village: str | None,
    phone: str | None,
    language: str | None,
    today: date,
) -> dict:
    """Check what the registration form sent; return clean values or raise ParticipantError."""
    name = _clean_name(name)
    if sex not in SEXES:
        raise ParticipantError(N_("Choose the person's sex."), field="sex")
    age_text = str(age).strip() if age not in (None, "") else ""
    year_text = str(birth_year).strip() if birth_year not in (None, "") else ""
    if age_text and year_text:
        raise ParticipantError(N_("Give the age or the birth year, not both."), field="age")
    if not age_text and not year_text:
        raise ParticipantError(N_("Give the person's age (an estimate is fine) or birth year."), field="age")
    if age_text:
        if not age_text.isdecimal() or not MIN_AGE <= int(age_text) <= MAX_AGE:
            raise ParticipantError(
                N_("The age must be a whole number from %(low)d to %(high)d."), field="age", low=MIN_AGE, high=MAX_AGE
            )
        year, estimate = today.year - int(age_text), True
    else:
        low, high = today.year - MAX_AGE, today.year - MIN_AGE
        if not year_text.isdecimal() or not low <= int(year_text) <= high:
            raise ParticipantError(
                N_("The birth year must be a year from %(low)d to %(high)d."), field="birth_year", low=low, high=high
            )
        year, estimate = int(year_text), False
    village = _clean_village(village)
    phone = _clean_phone(phone)
    language = _clean_language(language)
    return {
        "name": name,
        "sex": sex,
        "birth_year": year,
        "age_is_estimate": int(estimate),
        "village": village,
        "phone": phone,
        "language": language,
    }


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ParticipantError(N_("Enter the person's name."), field="name")
    if len(name) > MAX_NAME:
        raise ParticipantError(N_("A name has at most %(n)d characters."), field="name", n=MAX_NAME)
    if _CONTROL.search(name):
        raise ParticipantError(N_("The name contains characters that cannot be shown."), field="name")
    return name


def _clean_village(village: str | None) -> str:
    village = (village or "").strip()
    if not village:
        raise ParticipantError(N_("Enter the village or area where the person lives."), field="village")
    if len(village) > MAX_VILLAGE or _CONTROL.search(village):
        raise ParticipantError(
            N_("The village or area is too long or contains characters that cannot be shown."), field="village"
        )
    return village


def _clean_phone(phone: str | None) -> str | None:
    phone = (phone or "").strip() or None
    if phone is not None and not _PHONE.match(phone):
        raise ParticipantError(N_("A phone number has digits, spaces, + ( ) or - only."), field="phone")
    return phone


def _clean_language(language: str | None) -> str | None:
    language = (language or "").strip() or None
    if language is not None and (len(language) > MAX_LANGUAGE or _CONTROL.search(language)):
        raise ParticipantError(N_("The language name is too long."), field="language")
    return language


# What update_details may change after registration, each with the registration's check.
# The code, sex and birth year are not changed there; the status changes through set_status.
EDITABLE_FIELDS = {"name": _clean_name, "village": _clean_village, "phone": _clean_phone, "language": _clean_language}


def register(
    db: sqlite_utils.Database,
    *,
    site: dict,
    actor: dict,
    consents: list[str],
    consent_given_by: str = "",
    today: date | None = None,
    consent_text=None,
    consent_version: int | str | None = None,
    consent_language: str | None = None,
    randbelow=secrets.randbelow,
    **fields,
) -> Registration:
    """Register a person at ``site`` with a new programme code; flag possible duplicates.

    ``fields`` are the form's name, sex, age or birth_year, village, phone and
    language. Consent to screening is required; ``consents`` lists every purpose
    the person agreed to, given by ``consent_given_by`` (blank: the person).
    With ``consent_text`` (``consent.ConsentText``), the ``consent_version`` the page
    showed must still be the text's version and ``consent_language`` one of its
    languages; both are kept on each consent record.
    """
    today = today or clock.today()
    clean = validate(  # each field by name: **fields may hold more than the form's person fields
        name=fields.get("name"),
        sex=fields.get("sex"),
        age=fields.get("age"),
        birth_year=fields.get("birth_year"),
        village=fields.get("village"),
        phone=fields.get("phone"),
        language=fields.get("language"),
        today=today,
    )
    _check_consents(consents)
    given_by = _given_by(consent_given_by)
    reading = consent_reading(consent_text, consent_version, consent_language)
    now = utcnow()
    with write(db):
        participant = {
            "id": new_id(),
            "site_id": site["id"],
            "code": generate_code(db, site["id"], site["code"], randbelow),
            **clean,
            "name_key": name_key(clean["name"]),
            "status": "registered",
            "created_by": actor["id"],
            "created_at": now,
            "updated_at": now,
        }
        audit.insert(db, "participants", participant, user=actor)
        _add_status(db, participant, "registered", None, actor, now)
        for purpose in CONSENT_PURPOSES:
            add_consent(db, participant, purpose, purpose in consents, given_by, actor, now, reading)
        duplicates = possible_duplicates(db, participant)
        _flag_duplicates(db, participant, duplicates, actor, now)
    return Registration(participant, duplicates)


def _check_consents(consents: list[str]) -> None:
    """Refuse an unknown consent purpose, or a registration without consent to screening."""
    unknown = [p for p in consents if p not in CONSENT_PURPOSES]
    if unknown:
        raise ParticipantError(N_("Unknown consent purpose %(purpose)s."), field="consent", purpose=unknown[0])
    if "screening" not in consents:
        raise ParticipantError(N_("The person must agree to screening before you register them."), field="consent")


def update_details(db: sqlite_utils.Database, participant_id: str, changes: dict, actor: dict | None) -> Registration:
    """Change a participant's name, village, phone or language with the registration's checks.

    Only the fields given are checked and changed (a name kept off the central server stays
    blank there). The change and its audit entry are one write; a new name or village that
    matches someone else is flagged as a possible duplicate, as at registration. Return the
    participant and the newly flagged duplicates.
    """
    not_editable = sorted(set(changes) - set(EDITABLE_FIELDS))
    if not_editable:
        raise ValueError(f"update_details cannot change {', '.join(not_editable)}")
    clean: dict[str, Any] = {key: EDITABLE_FIELDS[key](value) for key, value in changes.items()}
    if "name" in clean:
        clean["name_key"] = name_key(clean["name"])
    with write(db):
        before = row(db, "select * from participants where id = ?", (participant_id,))
        if before is None:
            raise ParticipantError(N_("No such participant."))
        changed = {k: v for k, v in clean.items() if before[k] != v}
        if not changed:
            return Registration(before)
        now = utcnow()
        db.table("participants").update(participant_id, {**changed, "updated_at": now})
        after = {**before, **changed, "updated_at": now}
        audit.log(
            db,
            user=actor,
            action="update",
            table="participants",
            record_id=participant_id,
            site_id=before["site_id"],
            before={k: before[k] for k in changed},
            after=changed,
        )
        duplicates = []
        if {"name", "village"} & set(changed) and after["name_key"]:  # a blanked name matches nobody
            flagged = _flagged_with(db, participant_id)
            duplicates = [p for p in possible_duplicates(db, after) if p["id"] not in flagged]
            _flag_duplicates(db, after, duplicates, actor, now)
    return Registration(after, duplicates)


def _flagged_with(db: sqlite_utils.Database, participant_id: str) -> set[str]:
    """Return the participants already flagged as possible duplicates of this one (either way round)."""
    return {
        r["other"]
        for r in db.query(
            "select other_participant_id as other from duplicate_flags where participant_id = ?"
            " union select participant_id from duplicate_flags where other_participant_id = ?",
            (participant_id, participant_id),
        )
    }


def _flag_duplicates(
    db: sqlite_utils.Database, participant: dict, others: list[dict], actor: dict | None, now: str
) -> None:
    """Flag each of ``others`` as a possible duplicate of ``participant``, for a person to review."""
    for other in others:
        flag = {
            "id": new_id(),
            "site_id": participant["site_id"],
            "participant_id": participant["id"],
            "other_participant_id": other["id"],
            "reason": "same name, village and age band",
            "status": "open",
            "created_at": now,
            "updated_at": now,
        }
        audit.insert(db, "duplicate_flags", flag, user=actor, action="flag_duplicate")


def _given_by(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_GIVEN_BY or _CONTROL.search(text):
        raise ParticipantError(N_("The name of the person who gave consent is too long."), field="consent_given_by")
    return text or "participant"


def _add_status(db, participant: dict, status: str, reason: str | None, actor: dict | None, now: str) -> dict:
    entry = {
        "id": new_id(),
        "site_id": participant["site_id"],
        "participant_id": participant["id"],
        "status": status,
        "reason": reason,
        "changed_by": actor["id"] if actor else None,
        "created_at": now,
        "updated_at": now,
    }
    db.table("participant_status_history").insert(entry)
    return entry


def consent_reading(consent_text, version: int | str | None, language: str | None) -> tuple[int, str] | None:
    """Check which consent text was read (the version the page showed, the language); None without a text."""
    if consent_text is None:
        return None
    if str(version or "").strip() != str(consent_text.version):
        raise ParticipantError(
            N_(
                "The consent text has changed since this page was opened (it is now version "
                "%(version)s). Read the new text to the person, then save again."
            ),
            field="consent",
            version=consent_text.version,
        )
    if language is None or language not in consent_text.languages:
        raise ParticipantError(N_("Choose the language the consent text was read in."), field="consent_language")
    return consent_text.version, language


def add_consent(
    db,
    participant: dict,
    purpose: str,
    given: bool,
    given_by: str,
    actor: dict,
    now: str,
    reading: tuple[int, str] | None = None,
) -> dict:
    consent = {
        "id": new_id(),
        "site_id": participant["site_id"],
        "participant_id": participant["id"],
        "purpose": purpose,
        "given": int(given),
        "given_by": given_by,
        "recorded_by": actor["id"],
        "created_at": now,
        "updated_at": now,
    }
    if reading is not None:
        consent["text_version"], consent["text_language"] = reading
    return audit.insert(db, "consents", consent, user=actor, action="consent")


def possible_duplicates(db: sqlite_utils.Database, participant: dict) -> list[dict]:
    """Return other participants of the same site with the same name, village and age band."""
    candidates = rows(
        db,
        "select * from participants where site_id = ? and name_key = ? and id != ?",
        (participant["site_id"], participant["name_key"], participant["id"]),
    )
    village = name_key(participant["village"])
    return [
        p
        for p in candidates
        if name_key(p["village"]) == village
        and abs((p["birth_year"] or 0) - (participant["birth_year"] or 0)) <= AGE_BAND_YEARS
    ]


def participant_row(db: sqlite_utils.Database, participant_id: str) -> dict:
    """Return a participant a member, screening or referral points to; RecordMissing if gone."""
    return required(
        row(db, "select * from participants where id = ?", (participant_id,)), "participant " + participant_id
    )


def get(db: sqlite_utils.Database, participant_id: str, site_ids: list[str]) -> dict | None:
    """Return the participant if it belongs to one of ``site_ids``, else None."""
    return row(
        db,
        "select p.*, s.code as site_code, s.name as site_name from participants p join sites s on s.id = p.site_id"
        f" where p.id = ? and p.site_id in ({marks(site_ids)})",
        (participant_id, *site_ids),
    )


@dataclass
class SearchResult:
    participants: list[dict]
    code_typo: bool = False  # the query looks like a code whose check letter is wrong


def search(db: sqlite_utils.Database, site_ids: list[str], query: str = "", limit: int = 100) -> SearchResult:
    """Find participants by programme code (forgiving spaces and case) or part of the name."""
    base = (
        "select p.*, s.code as site_code from participants p join sites s on s.id = p.site_id"
        f" where p.site_id in ({marks(site_ids)})"
    )
    query = (query or "").strip()
    if not query:
        found = rows(db, f"{base} order by p.created_at desc limit ?", (*site_ids, limit))
        return SearchResult(found)
    parts = parse_code(query)
    if parts is not None:
        code = f"{parts[0]}-{parts[1]}-{parts[2]}"
        found = rows(db, f"{base} and p.code = ?", (*site_ids, code))
        return SearchResult(found, code_typo=not found and check_letter(parts[1]) != parts[2])
    found = rows(
        db,
        f"{base} and (p.name_key like ? escape '\\' or p.code like ? escape '\\') order by p.name_key limit ?",
        (*site_ids, _like(name_key(query)), _like(query.upper()), limit),
    )
    return SearchResult(found)


def set_status(
    db: sqlite_utils.Database, participant_id: str, status: str, reason: str | None, actor: dict | None
) -> dict:
    """Change a participant's status, keeping the history and the audit log; return the participant.

    The cycles code calls this with ``enrolled``, ``completed`` and ``dropped_out``.
    Raise EnrolmentBlocked when the person must be referred instead (an exclusion
    recorded at their latest intake screening).
    """
    if status not in STATUSES:
        raise ParticipantError(N_("Unknown status %(status)s."), field="status", status=status)
    with write(db):
        before = row(db, "select * from participants where id = ?", (participant_id,))
        if before is None:
            raise ParticipantError(N_("No such participant."))
        if status == "enrolled":
            blockers = enrolment_blockers(db, participant_id)
            if blockers:
                raise EnrolmentBlocked(
                    N_(
                        "%(code)s cannot join a group: an exclusion was recorded at screening (%(reasons)s). "
                        "Refer the person instead."
                    ),
                    code=before["code"],
                    reasons=", ".join(blockers),
                )
        if before["status"] == status:
            return before
        now = utcnow()
        db.execute("update participants set status = ?, updated_at = ? where id = ?", (status, now, participant_id))
        after = {**before, "status": status, "updated_at": now}
        _add_status(db, before, status, reason, actor, now)
        audit.log(
            db,
            user=actor,
            action="set_status",
            table="participants",
            record_id=participant_id,
            site_id=before["site_id"],
            before={"status": before["status"]},
            after={"status": status, "reason": reason},
        )
    return after


def enrolment_blockers(db: sqlite_utils.Database, participant_id: str) -> list[str]:
    """Return the exclusion codes that stop enrolment (from the latest intake screening), or []."""
    latest = row(
        db,
        "select exclusions_json from screenings where participant_id = ? and occasion = 'screening'"
        " order by administered_on desc, created_at desc limit 1",
        (participant_id,),
    )
    return json.loads(latest["exclusions_json"]) if latest else []


def status_history(db: sqlite_utils.Database, participant_id: str) -> list[dict]:
    join, order = in_clock_order("participant_status_history", "h")
    return rows(
        db,
        "select h.*, u.display_name as changed_by_name from participant_status_history h"
        f" left join users u on u.id = h.changed_by{join} where h.participant_id = ? order by {order}",
        (participant_id,),
    )


def record_consent(
    db: sqlite_utils.Database,
    participant: dict,
    purpose: str,
    given: bool,
    given_by: str,
    actor: dict,
    *,
    consent_text=None,
    consent_version: int | str | None = None,
    consent_language: str | None = None,
) -> dict:
    """Record that consent for ``purpose`` was given or withdrawn (the newest record counts).

    ``consent_text``, ``consent_version`` and ``consent_language``: as for :func:`register`.
    """
    if purpose not in CONSENT_PURPOSES:
        raise ParticipantError(N_("Unknown consent purpose %(purpose)s."), field="purpose", purpose=purpose)
    who = _given_by(given_by)
    reading = consent_reading(consent_text, consent_version, consent_language)
    with write(db):
        return add_consent(db, participant, purpose, given, who, actor, utcnow(), reading)


def consents(db: sqlite_utils.Database, participant_id: str) -> list[dict]:
    """Return every consent record of a participant, newest first, with who recorded it."""
    return rows(
        db,
        "select c.*, u.display_name as recorded_by_name from consents c left join users u on u.id = c.recorded_by"
        " where c.participant_id = ? order by c.created_at desc, c.rowid desc",
        (participant_id,),
    )


def current_consents(db: sqlite_utils.Database, participant_id: str) -> dict[str, dict]:
    """Return the newest consent record per purpose."""
    latest: dict[str, dict] = {}
    for consent in consents(db, participant_id):
        latest.setdefault(consent["purpose"], consent)
    return latest


def duplicate_flags(
    db: sqlite_utils.Database, site_ids: list[str], *, participant_id: str | None = None, status: str | None = "open"
) -> list[dict]:
    """Return duplicate flags (open ones by default) with both participants' code and name."""
    sql = (
        "select f.*, a.code as code, a.name as name, b.code as other_code, b.name as other_name,"
        " b.village as other_village, b.birth_year as other_birth_year from duplicate_flags f"
        " join participants a on a.id = f.participant_id join participants b on b.id = f.other_participant_id"
        f" where f.site_id in ({marks(site_ids)})"
    )
    params: list = [*site_ids]
    if status:
        sql += " and f.status = ?"
        params.append(status)
    if participant_id:
        sql += " and (f.participant_id = ? or f.other_participant_id = ?)"
        params += [participant_id, participant_id]
    return rows(db, sql + " order by f.created_at", params)


def review_duplicate(db: sqlite_utils.Database, flag_id: str, site_ids: list[str], decision: str, actor: dict) -> dict:
    """Record a reviewer's decision on a duplicate flag; records are never merged here."""
    if decision not in ("not_duplicate", "duplicate"):
        raise ParticipantError(N_("Choose whether the two records are the same person."), field="decision")
    with write(db):
        before = row(
            db, f"select * from duplicate_flags where id = ? and site_id in ({marks(site_ids)})", (flag_id, *site_ids)
        )
        if before is None:
            raise ParticipantError(N_("No such duplicate flag."))
        now = utcnow()
        db.execute(
            "update duplicate_flags set status = ?, reviewed_by = ?, reviewed_at = ?, updated_at = ? where id = ?",
            (decision, actor["id"], now, now, flag_id),
        )
        after = {**before, "status": decision, "reviewed_by": actor["id"], "reviewed_at": now, "updated_at": now}
        audit.log(
            db,
            user=actor,
            action="review_duplicate",
            table="duplicate_flags",
            record_id=flag_id,
            site_id=before["site_id"],
            before=before,
            after=after,
        )
    return after

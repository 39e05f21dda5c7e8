"""Save a screening: score it on the server, and raise a referral on any risk, in one transaction.

The rules that must never bend:

- The server scores. Risk comes from the answers (an instrument's risk items, such
  as PHQ-9 question 9 above 0), the facilitator's "risk observed" tick and the
  exclusions asked at intake (forms/intake.yaml); nothing the browser says about
  risk is trusted.
- A screening with a risk or an exclusion is saved together with its referral or
  not at all (one transaction).
- A missing answer stays missing: the instrument either prorates and says so, or
  gives no total.
- Each form shown carries a submission key; sending it twice saves once.

Plain Python, no Flask.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import date

import sqlite_utils

from . import audit, clock, participants, referrals
from .db import new_id, row, rows, utcnow, write
from .errors import N_, DomainError
from .instruments import Instrument, InvalidAnswer, ScoreResult
from .intake import Intake

OCCASIONS = ("screening", "baseline", "mid", "end", "followup", "session")
_SUBMISSION_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
EARLIEST_DATE = date(2000, 1, 1)


class ScreeningError(DomainError):
    """The answers cannot be saved; the message says which and why."""


class TamperedForm(ScreeningError):
    """A hidden field does not match what the server sent (an edited or mixed-up form)."""


@dataclass
class Outcome:
    screening: dict
    result: ScoreResult | None  # None when ``created`` is False (an earlier save was found)
    referral: dict | None
    created: bool


def new_submission_key() -> str:
    return secrets.token_urlsafe(18)


def urgency_for(instrument: Instrument, answers: dict[str, int | None], result: ScoreResult,
                risk_observed: bool, exclusions: list[str], intake: Intake) -> str:
    """Return 'urgent' for imminent risk, risk seen by the facilitator or a risk answer at its worst."""
    if risk_observed or any(intake.exclusion(code).urgency == "urgent" for code in exclusions):
        return "urgent"
    for item_id in result.risk_items:
        item = instrument.item(item_id)
        if answers[item_id] == max(item.values):
            return "urgent"
    return "routine"


def risk_triggers(instrument: Instrument, answers: dict[str, int | None], result: ScoreResult,
                  risk_observed: bool, exclusions: list[str]) -> list[dict]:
    """Return what raised the alert, as data the pages translate and describe."""
    triggers: list[dict] = [
        {"kind": "risk_item", "instrument": instrument.id, "item": item_id, "value": answers[item_id]}
        for item_id in result.risk_items
    ]
    if risk_observed:
        triggers.append({"kind": "risk_observed"})
    triggers += [{"kind": "exclusion", "code": code} for code in exclusions]
    return triggers


def _reason(instrument: Instrument, triggers: list[dict]) -> str:
    """Return a plain English summary for the referrals table (the pages use the triggers)."""
    parts = []
    for trigger in triggers:
        if trigger["kind"] == "risk_item":
            position = [item.id for item in instrument.items].index(trigger["item"]) + 1
            parts.append(f"{instrument.id} question {position} ({trigger['item']}) answered {trigger['value']}")
        elif trigger["kind"] == "risk_observed":
            parts.append("risk observed by the facilitator")
        else:
            parts.append(f"exclusion at intake: {trigger['code']}")
    return "; ".join(parts)


def save_screening(
    db: sqlite_utils.Database,
    *,
    participant: dict,
    instrument: Instrument,
    raw_answers: dict[str, str | int | None],
    submission_key: str,
    actor: dict,
    intake: Intake,
    plan: referrals.FollowupPlan,
    occasion: str = "screening",
    administered_on: date | None = None,
    risk_observed: bool = False,
    exclusions: list[str] = (),
    cutoff: int | None = None,
    language: str | None = None,
    note: str | None = None,
    cycle_id: str | None = None,
    session_id: str | None = None,
) -> Outcome:
    """Score and save one screening; with any risk or exclusion, its referral too.

    A ``submission_key`` already saved for this participant and instrument returns
    that screening (``created`` False) and saves nothing. Raise TamperedForm for a
    key used for someone or something else, ScreeningError for bad answers.
    """
    if not _SUBMISSION_KEY.fullmatch(submission_key or ""):
        raise TamperedForm(N_("This form has no valid submission key. Reload the page and answer again."))
    earlier = row(db, "select * from screenings where submission_key = ?", (submission_key,))
    if earlier is not None:
        return _resubmitted(db, earlier, participant, instrument)
    if occasion not in OCCASIONS:
        raise ScreeningError(N_("Unknown occasion %(occasion)s."), field="occasion", occasion=occasion)
    administered_on = administered_on or clock.today()
    if administered_on > clock.today():
        raise ScreeningError(N_("The date of the screening cannot be in the future."), field="administered_on")
    if administered_on < EARLIEST_DATE:
        raise ScreeningError(N_("The date of the screening is too far in the past."), field="administered_on")
    exclusions = list(dict.fromkeys(exclusions))
    unknown = [code for code in exclusions if intake.exclusion(code) is None]
    if unknown:
        raise TamperedForm(N_("Unknown exclusion %(code)s."), field="exclusions", code=unknown[0])
    cycle_id, session_id = cycle_id or None, session_id or None
    _check_cycle(db, participant, cycle_id, session_id)
    note = (note or "").strip() or None
    if note and len(note) > referrals.MAX_NOTE:
        raise ScreeningError(N_("The note is too long."), field="note")
    try:
        answers = instrument.validate_answers(raw_answers)
        result = instrument.score(answers, cutoff)
    except InvalidAnswer as exc:
        raise ScreeningError(N_("Question %(item)s: %(problem)s."), field=exc.item, item=exc.item,
                             problem=exc.message) from exc

    risk = bool(result.risk_items) or risk_observed
    eligible = None if result.eligible is None else int(result.eligible)
    if exclusions:
        eligible = 0  # referred, not enrolled, whatever the score
    now = utcnow()
    screening = {
        "id": new_id(),
        "site_id": participant["site_id"],
        "participant_id": participant["id"],
        "instrument_id": instrument.id,
        "instrument_version": instrument.version,
        "occasion": occasion,
        "cycle_id": cycle_id,
        "session_id": session_id,
        "answers_json": json.dumps(answers),
        "total": result.total,
        "raw_total": result.raw_total,
        "band": result.band.label if result.band else None,
        "eligible": eligible,
        "cutoff": result.cutoff,
        "missing_json": json.dumps(result.missing),
        "prorated": int(result.prorated),
        "risk": int(risk),
        "risk_items_json": json.dumps(result.risk_items),
        "risk_observed": int(risk_observed),
        "exclusions_json": json.dumps(exclusions),
        "administered_on": administered_on.isoformat(),
        "administered_by": actor["id"],
        "language": language,
        "submission_key": submission_key,
        "note": note,
        "created_at": now,
        "updated_at": now,
    }
    referral = None
    try:
        with write(db):
            db["screenings"].insert(screening)
            audit.log(db, user=actor, action="create", table="screenings", record_id=screening["id"],
                      site_id=screening["site_id"], after=screening)
            if risk or exclusions:
                triggers = risk_triggers(instrument, answers, result, risk_observed, exclusions)
                referral = referrals.create(
                    db, participant=participant, reason=_reason(instrument, triggers), triggers=triggers,
                    urgency=urgency_for(instrument, answers, result, risk_observed, exclusions, intake),
                    actor=actor, plan=plan, start=administered_on, screening_id=screening["id"],
                )
            status = _status_after(screening, exclusions)
            current = row(db, "select status from participants where id = ?", (participant["id"],))["status"]
            if current in participants.PRE_ENROLMENT and status != current:
                participants.set_status(db, participant["id"], status, f"{instrument.id} screening", actor)
    except sqlite3.IntegrityError:
        # The same form sent twice at the same moment: the other request saved it.
        earlier = row(db, "select * from screenings where submission_key = ?", (submission_key,))
        if earlier is None:
            raise
        return _resubmitted(db, earlier, participant, instrument)
    return Outcome(screening, result, referral, True)


def _check_cycle(db, participant: dict, cycle_id: str | None, session_id: str | None) -> None:
    """Refuse a cycle or session the participant is not a member of (an edited or mixed-up form)."""
    if session_id is not None and cycle_id is None:
        raise TamperedForm(N_("A session was given without its cycle."))
    if cycle_id is None:
        return
    if row(db, "select 1 as x from members where cycle_id = ? and participant_id = ? and site_id = ?",
           (cycle_id, participant["id"], participant["site_id"])) is None:
        raise TamperedForm(N_("This person is not a member of that cycle."))
    if session_id is not None and row(db, "select 1 as x from sessions where id = ? and cycle_id = ?",
                                      (session_id, cycle_id)) is None:
        raise TamperedForm(N_("That session is not part of the cycle."))


def _resubmitted(db, earlier: dict, participant: dict, instrument: Instrument) -> Outcome:
    if earlier["participant_id"] != participant["id"] or earlier["instrument_id"] != instrument.id:
        raise TamperedForm(N_("This form was already used for another screening. Reload the page."))
    return Outcome(earlier, None, referrals.for_screening(db, earlier["id"]), False)


def _status_after(screening: dict, exclusions: list[str]) -> str:
    if exclusions:
        return "referred"
    return {1: "eligible", 0: "not_eligible"}.get(screening["eligible"], "screened")


def get(db: sqlite_utils.Database, screening_id: str, site_ids: list[str]) -> dict | None:
    """Return a screening with its decoded JSON fields if it belongs to one of ``site_ids``."""
    placeholders = ",".join("?" for _ in site_ids) or "''"
    found = row(db, "select s.*, u.display_name as administered_by_name from screenings s"
                    f" left join users u on u.id = s.administered_by where s.id = ? and s.site_id in ({placeholders})",
                (screening_id, *site_ids))
    return _decode(found) if found else None


def _decode(screening: dict) -> dict:
    for name in ("answers", "missing", "risk_items", "exclusions"):
        screening[name] = json.loads(screening[f"{name}_json"])
    return screening


def history(db: sqlite_utils.Database, participant_id: str) -> list[dict]:
    """Return a participant's screenings, oldest first."""
    return [_decode(s) for s in rows(
        db, "select s.*, u.display_name as administered_by_name from screenings s"
            " left join users u on u.id = s.administered_by where s.participant_id = ?"
            " order by s.administered_on, s.created_at", (participant_id,))]

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
- A risk question left blank is itself a safety matter: the screening gets no total
  and no eligibility, and an open risk check (``risk_checks``) stays with the safety
  alerts until the question is asked (``answer_risk_check``: a new screening with the
  earlier answers and the risk answer) or someone records why it cannot be
  (``acknowledge_risk_check``).
- Each form shown carries a submission key; sending it twice saves once.

Plain Python, no Flask.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlite_utils

from ..base import clock
from ..base.errors import N_, DomainError, required
from ..formfiles.instruments import Instrument, InvalidAnswer, ScoreResult
from ..formfiles.intake import Intake
from ..store.db import marks, new_id, row, rows, utcnow, write
from . import audit, participants, referrals

OCCASIONS = ("screening", "baseline", "mid", "end", "followup", "session")
_SUBMISSION_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
EARLIEST_DATE = date(2000, 1, 1)


class ScreeningError(DomainError):
    """The answers cannot be saved; the message says which and why."""


class RiskCheckError(ScreeningError):
    """A risk check cannot be answered or acknowledged; the message says why."""


class TamperedForm(ScreeningError):
    """A hidden field does not match what the server sent (an edited or mixed-up form)."""


@dataclass
class Outcome:
    screening: dict
    result: ScoreResult | None  # None when ``created`` is False (an earlier save was found)
    referral: dict | None
    created: bool
    risk_check: dict | None = None  # the open check when a risk question was left blank


def new_submission_key() -> str:
    return secrets.token_urlsafe(18)


def urgency_for(
    instrument: Instrument,
    answers: dict[str, int | None],
    result: ScoreResult,
    risk_observed: bool,
    exclusions: list[str],
    intake: Intake,
) -> str:
    """Return 'urgent' for imminent risk, risk seen by the facilitator or an urgent risk answer.

    Which answers are urgent is the instrument's rule (PHQ-9 question 9 of 2 or 3;
    an item without one: its highest answer), so ``result.urgent_items`` says it.
    """
    urgent = {e.code for e in intake.exclusions if e.urgency == "urgent"}
    if risk_observed or any(code in urgent for code in exclusions):
        return "urgent"
    return "urgent" if result.urgent_items else "routine"


def risk_triggers(
    instrument: Instrument,
    answers: dict[str, int | None],
    result: ScoreResult,
    risk_observed: bool,
    exclusions: list[str],
) -> list[dict]:
    """Return what raised the alert, as data the pages translate and describe."""
    triggers: list[dict] = [
        {"kind": "risk_item", "instrument": instrument.id, "item": item_id, "value": answers[item_id]}
        for item_id in result.risk_items
    ]
    if risk_observed:
        triggers.append({"kind": "risk_observed"})
    triggers += [{"kind": "exclusion", "code": code} for code in exclusions]
    return triggers


def referral_reason(instrument: Instrument, triggers: list[dict]) -> str:
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


# Long only in its signature (every field of the form, keyword-only) and the calls that pass them on:
# the body is the steps, check the form, score, build the row, store it and act on it.
# Over 60 lines only by its keyword-only signature (what a page and the API pass) and the calls
# that hand those values on; each step is a function of its own (_checked_date, _scored, _store...).
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
    exclusions: Sequence[str] = (),
    cutoff: int | None = None,
    language: str | None = None,
    note: str | None = None,
    cycle_id: str | None = None,
    session_id: str | None = None,
    risk_check_id: str | None = None,
) -> Outcome:
    """Score and save one screening; with any risk or exclusion, its referral too.

    A risk question left blank opens a risk check in the same transaction.
    ``risk_check_id`` names the open check this screening answers ("ask it now"):
    its risk questions must be answered, and the check is closed with it.

    A ``submission_key`` already saved for this participant and instrument returns
    that screening (``created`` False) and saves nothing. Raise TamperedForm for a
    key used for someone or something else, ScreeningError for bad answers.
    """
    if not _SUBMISSION_KEY.fullmatch(submission_key or ""):
        raise TamperedForm(N_("This form has no valid submission key. Reload the page and answer again."))
    earlier = row(db, "select * from screenings where submission_key = ?", (submission_key,))
    if earlier is not None:
        return _resubmitted(db, earlier, participant, instrument)
    administered_on = _checked_date(occasion, administered_on)
    exclusions = _known_exclusions(exclusions, intake)
    cycle_id, session_id = cycle_id or None, session_id or None
    _check_cycle(db, participant, cycle_id, session_id)
    note = (note or "").strip() or None
    if note and len(note) > referrals.MAX_NOTE:
        raise ScreeningError(N_("The note is too long."), field="note")
    answers, result = _scored(instrument, raw_answers, cutoff)
    if risk_check_id is not None and result.risk_unanswered:
        raise ScreeningError(
            N_("Answer the safety question: that is what this form is for."), field=result.risk_unanswered[0]
        )
    now = utcnow()
    screening = _screening_record(
        participant,
        instrument,
        answers,
        result,
        occasion=occasion,
        cycle_id=cycle_id,
        session_id=session_id,
        risk_observed=risk_observed,
        exclusions=exclusions,
        administered_on=administered_on,
        actor=actor,
        language=language,
        submission_key=submission_key,
        note=note,
        now=now,
    )
    try:
        with write(db):
            referral, risk_check = _store(
                db,
                screening,
                participant,
                instrument,
                answers,
                result,
                intake=intake,
                plan=plan,
                actor=actor,
                exclusions=exclusions,
                risk_observed=risk_observed,
                risk_check_id=risk_check_id,
            )
    except sqlite3.IntegrityError:
        # The same form sent twice at the same moment: the other request saved it.
        earlier = row(db, "select * from screenings where submission_key = ?", (submission_key,))
        if earlier is None:
            raise
        return _resubmitted(db, earlier, participant, instrument)
    return Outcome(screening, result, referral, True, risk_check)


def _checked_date(occasion: str, administered_on: date | None) -> date:
    """Check the occasion and return the screening's date (today when not given): not future, not too old."""
    if occasion not in OCCASIONS:
        raise ScreeningError(N_("Unknown occasion %(occasion)s."), field="occasion", occasion=occasion)
    administered_on = administered_on or clock.today()
    if administered_on > clock.today():
        raise ScreeningError(N_("The date of the screening cannot be in the future."), field="administered_on")
    if administered_on < EARLIEST_DATE:
        raise ScreeningError(N_("The date of the screening is too far in the past."), field="administered_on")
    return administered_on


def _known_exclusions(exclusions: Sequence[str], intake: Intake) -> list[str]:
    """Return the exclusion codes once each; an unknown one means the form was tampered with."""
    found = list(dict.fromkeys(exclusions))
    unknown = [code for code in found if intake.exclusion(code) is None]
    if unknown:
        raise TamperedForm(N_("Unknown exclusion %(code)s."), field="exclusions", code=unknown[0])
    return found


def _scored(
    instrument: Instrument, raw_answers: dict[str, str | int | None], cutoff: int | None
) -> tuple[dict[str, int | None], ScoreResult]:
    """Parse and score the answers; a bad answer is a ScreeningError on its question."""
    try:
        answers = instrument.validate_answers(raw_answers)
        return answers, instrument.score(answers, cutoff)
    except InvalidAnswer as exc:
        raise ScreeningError(
            N_("Question %(item)s: %(problem)s."), field=exc.item, item=exc.item, problem=exc.message
        ) from exc


def _screening_record(
    participant: dict,
    instrument: Instrument,
    answers: dict[str, int | None],
    result: ScoreResult,
    *,
    occasion: str,
    cycle_id: str | None,
    session_id: str | None,
    risk_observed: bool,
    exclusions: list[str],
    administered_on: date,
    actor: dict,
    language: str | None,
    submission_key: str,
    note: str | None,
    now: str,
) -> dict:
    """Return the screenings row: the answers, the score and what it means, who and when."""
    eligible = None if result.eligible is None else int(result.eligible)
    if exclusions:
        eligible = 0  # referred, not enrolled, whatever the score
    return {
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
        "risk": int(bool(result.risk_items) or risk_observed),
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


def _store(
    db: sqlite_utils.Database,
    screening: dict,
    participant: dict,
    instrument: Instrument,
    answers: dict[str, int | None],
    result: ScoreResult,
    *,
    intake: Intake,
    plan: referrals.FollowupPlan,
    actor: dict,
    exclusions: list[str],
    risk_observed: bool,
    risk_check_id: str | None,
) -> tuple[dict | None, dict | None]:
    """Save the screening (inside the caller's write) and do what it asks: close the risk check it answers,
    refer a risk or exclusion, open a risk check for a blank risk question, move the participant's status
    on. Return (referral, risk check)."""
    now = screening["created_at"]
    db.table("screenings").insert(screening)
    if risk_check_id is not None:
        _close_check_answered(db, risk_check_id, participant, instrument, screening["id"], actor, now)
    audit.log(
        db,
        user=actor,
        action="create",
        table="screenings",
        record_id=screening["id"],
        site_id=screening["site_id"],
        after=screening,
    )
    referral = risk_check = None
    if screening["risk"] or exclusions:
        triggers = risk_triggers(instrument, answers, result, risk_observed, exclusions)
        referral = referrals.create(
            db,
            participant=participant,
            reason=referral_reason(instrument, triggers),
            triggers=triggers,
            urgency=urgency_for(instrument, answers, result, risk_observed, exclusions, intake),
            actor=actor,
            plan=plan,
            start=date.fromisoformat(screening["administered_on"]),
            screening_id=screening["id"],
        )
    if result.risk_unanswered:
        risk_check = _open_check(db, screening, result.risk_unanswered, actor, now)
    status = _status_after(screening, exclusions)
    current = participants.participant_row(db, participant["id"])["status"]
    if current in participants.PRE_ENROLMENT and status != current:
        participants.set_status(db, participant["id"], status, f"{instrument.id} screening", actor)
    return referral, risk_check


def _open_check(db, screening: dict, items: list[str], actor: dict, now: str) -> dict:
    check = {
        "id": new_id(),
        "site_id": screening["site_id"],
        "participant_id": screening["participant_id"],
        "screening_id": screening["id"],
        "instrument_id": screening["instrument_id"],
        "items_json": json.dumps(items),
        "status": "open",
        "created_at": now,
        "updated_at": now,
    }
    return audit.insert(db, "risk_checks", check, user=actor)


def _close_check_answered(
    db, check_id: str, participant: dict, instrument: Instrument, screening_id: str, actor: dict, now: str
) -> None:
    check = row(db, "select * from risk_checks where id = ?", (check_id,))
    if check is None or check["participant_id"] != participant["id"] or check["instrument_id"] != instrument.id:
        raise TamperedForm(N_("This form answers a safety question of another person or questionnaire."))
    if check["status"] != "open":
        raise RiskCheckError(N_("This safety question was already dealt with."))
    changes = {
        "status": "answered",
        "answer_screening_id": screening_id,
        "resolved_by": actor["id"],
        "resolved_at": now,
        "updated_at": now,
    }
    db.table("risk_checks").update(check_id, changes)
    audit.log(
        db,
        user=actor,
        action="answer",
        table="risk_checks",
        record_id=check_id,
        site_id=check["site_id"],
        before={"status": "open"},
        after=changes,
    )


def get_risk_check(db: sqlite_utils.Database, check_id: str, site_ids: list[str]) -> dict | None:
    """Return a risk check of one of ``site_ids`` with its screening's answers, else None."""
    found = row(
        db,
        "select k.*, s.answers_json, s.occasion, s.administered_on, s.cycle_id, s.session_id,"
        " p.code as participant_code, p.name as participant_name, u.display_name as resolved_by_name"
        " from risk_checks k join screenings s on s.id = k.screening_id"
        " join participants p on p.id = k.participant_id left join users u on u.id = k.resolved_by"
        f" where k.id = ? and k.site_id in ({marks(site_ids)})",
        (check_id, *site_ids),
    )
    if found is not None:
        found["items"] = json.loads(found["items_json"])
        found["answers"] = json.loads(found["answers_json"])
    return found


def risk_check_for(db: sqlite_utils.Database, screening_id: str) -> dict | None:
    found = row(
        db,
        "select k.*, u.display_name as resolved_by_name from risk_checks k"
        " left join users u on u.id = k.resolved_by where k.screening_id = ?",
        (screening_id,),
    )
    if found is not None:
        found["items"] = json.loads(found["items_json"])
    return found


def open_risk_checks(db: sqlite_utils.Database, site_ids: list[str]) -> list[dict]:
    """Return the screenings whose risk question is still unanswered, oldest first."""
    return rows(
        db,
        "select k.*, p.code as participant_code, p.name as participant_name, s.administered_on"
        " from risk_checks k join participants p on p.id = k.participant_id"
        " join screenings s on s.id = k.screening_id"
        f" where k.site_id in ({marks(site_ids)}) and k.status = 'open'"
        " order by k.created_at",
        site_ids,
    )


def answer_risk_check(
    db: sqlite_utils.Database,
    check: dict,
    risk_answers: dict[str, str | int | None],
    *,
    instrument: Instrument,
    participant: dict,
    submission_key: str,
    actor: dict,
    intake: Intake,
    plan: referrals.FollowupPlan,
    cutoff: int | None = None,
    language: str | None = None,
    administered_on: date | None = None,
) -> Outcome:
    """Ask the risk question now: save a new screening with the earlier answers and the risk answer.

    The earlier screening is a fact and stays as it was; the new one is scored in
    full (total, eligibility, a referral on a risk answer) and closes the check.
    """
    unknown = [item_id for item_id in risk_answers if item_id not in check["items"]]
    if unknown:
        raise TamperedForm(N_("Only the safety question can be answered here."))
    earlier = check.get("answers")
    if earlier is None:
        screening = required(
            row(db, "select answers_json from screenings where id = ?", (check["screening_id"],)),
            "screening " + check["screening_id"],
        )
        earlier = json.loads(screening["answers_json"])
    raw = {**{k: v for k, v in earlier.items() if v is not None}, **risk_answers}
    occasion = check.get("occasion") or "screening"
    return save_screening(
        db,
        participant=participant,
        instrument=instrument,
        raw_answers=raw,
        submission_key=submission_key,
        actor=actor,
        intake=intake,
        plan=plan,
        occasion=occasion,
        administered_on=administered_on,
        cutoff=cutoff,
        language=language,
        note="Safety question asked after the screening of " + str(check.get("administered_on") or ""),
        cycle_id=check.get("cycle_id"),
        session_id=check.get("session_id"),
        risk_check_id=check["id"],
    )


def acknowledge_risk_check(db: sqlite_utils.Database, check: dict, actor: dict, *, reason: str | None) -> dict:
    """Record why the risk question cannot be asked now; the check leaves the alerts with who, when and why."""
    reason = (reason or "").strip()
    if not reason:
        raise RiskCheckError(N_("Write why the safety question could not be asked."), field="reason")
    if len(reason) > referrals.MAX_NOTE:
        raise RiskCheckError(N_("The reason is too long."), field="reason")
    with write(db):
        current = row(db, "select * from risk_checks where id = ?", (check["id"],))
        if current is None or current["status"] != "open":
            raise RiskCheckError(N_("This safety question was already dealt with."))
        now = utcnow()
        changes = {
            "status": "acknowledged",
            "reason": reason,
            "resolved_by": actor["id"],
            "resolved_at": now,
            "updated_at": now,
        }
        db.table("risk_checks").update(check["id"], changes)
        audit.log(
            db,
            user=actor,
            action="acknowledge",
            table="risk_checks",
            record_id=check["id"],
            site_id=current["site_id"],
            before={"status": "open"},
            after=changes,
        )
    return {**current, **changes}


def _check_cycle(db, participant: dict, cycle_id: str | None, session_id: str | None) -> None:
    """Refuse a cycle or session the participant is not a member of (an edited or mixed-up form)."""
    if session_id is not None and cycle_id is None:
        raise TamperedForm(N_("A session was given without its cycle."))
    if cycle_id is None:
        return
    if (
        row(
            db,
            "select 1 as x from members where cycle_id = ? and participant_id = ? and site_id = ?",
            (cycle_id, participant["id"], participant["site_id"]),
        )
        is None
    ):
        raise TamperedForm(N_("This person is not a member of that cycle."))
    if (
        session_id is not None
        and row(db, "select 1 as x from sessions where id = ? and cycle_id = ?", (session_id, cycle_id)) is None
    ):
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
    found = row(
        db,
        "select s.*, u.display_name as administered_by_name from screenings s"
        f" left join users u on u.id = s.administered_by where s.id = ? and s.site_id in ({marks(site_ids)})",
        (screening_id, *site_ids),
    )
    return _decode(found) if found else None


def _decode(screening: dict) -> dict:
    for name in ("answers", "missing", "risk_items", "exclusions"):
        screening[name] = json.loads(screening[f"{name}_json"])
    return screening


def history(db: sqlite_utils.Database, participant_id: str) -> list[dict]:
    """Return a participant's screenings, oldest first."""
    return [
        _decode(s)
        for s in rows(
            db,
            "select s.*, u.display_name as administered_by_name from screenings s"
            " left join users u on u.id = s.administered_by where s.participant_id = ?"
            " order by s.administered_on, s.created_at",
            (participant_id,),
        )
    ]

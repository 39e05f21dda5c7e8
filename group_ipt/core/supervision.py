"""Supervision: who supervises whom, ratings of observed sessions, weekly logs, and the supervisor's list.

- A coordinator assigns facilitators to a supervisor, per site
  (``supervisor_facilitators``); a supervisor sees those facilitators only.
- A supervisor rates an observed session with a rating form from
  ``forms/ratings/`` (:mod:`group_ipt.formfiles.ratings`): a rating with any item left blank
  is saved as *incomplete* and flagged, never scored as 0.
- The overview gives, per facilitator: adherence over time, the held sessions
  not yet rated, incomplete ratings, low adherence against the threshold, the
  facilitator's own fidelity checklists beside the ratings, and the members of
  concern: an open risk referral, PHQ-9 up by ``worsening_points`` or more from
  baseline, or repeated absence (:func:`group_ipt.core.followup.followups_needed`).

Plain Python, no Flask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import sqlite_utils

from ..base.errors import N_, DomainError
from ..formfiles.protocols import Protocol
from ..formfiles.ratings import RatingForm
from ..store.db import marks, new_id, row, rows, utcnow, write
from . import audit, followup
from .clinical import can_see_record

RATING_ROLES = ("supervisor", "admin")
MAX_TEXT = 4000
# The instrument whose rise from baseline puts a member on the list.
WORSENING_INSTRUMENT = "phq9"
# Referral triggers that mean a safety risk (a medication or end-of-cycle referral does not).
RISK_TRIGGERS = ("risk_item", "risk_observed", "exclusion", "session_risk")


class SupervisionError(DomainError):
    """A supervision change that cannot be made; the message says why."""


# --- assignments ---------------------------------------------------------------------


def assign(db: sqlite_utils.Database, *, supervisor_id: str, facilitator_id: str, site_id: str, actor: dict) -> dict:
    """Assign a facilitator to a supervisor at a site; assigning twice changes nothing."""
    supervisor = row(
        db,
        "select u.* from users u join user_sites s on s.user_id = u.id where u.id = ?"
        " and s.site_id = ? and u.role = 'supervisor' and u.active = 1",
        (supervisor_id, site_id),
    )
    if supervisor is None:
        raise SupervisionError(N_("Choose a supervisor who works at this site."), field="supervisor_id")
    facilitator = row(
        db,
        "select u.* from users u join user_sites s on s.user_id = u.id where u.id = ?"
        " and s.site_id = ? and u.active = 1 and u.role != 'admin'",
        (facilitator_id, site_id),
    )
    if facilitator is None or facilitator_id == supervisor_id:
        raise SupervisionError(N_("Choose a facilitator who works at this site."), field="facilitator_id")
    existing = row(
        db,
        "select * from supervisor_facilitators where supervisor_id = ? and facilitator_id = ? and site_id = ?",
        (supervisor_id, facilitator_id, site_id),
    )
    if existing:
        return existing
    now = utcnow()
    entry = {
        "id": new_id(),
        "site_id": site_id,
        "supervisor_id": supervisor_id,
        "facilitator_id": facilitator_id,
        "created_by": actor["id"],
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        audit.insert(db, "supervisor_facilitators", entry, user=actor)
    return entry


def unassign(db: sqlite_utils.Database, assignment_id: str, site_ids: list[str], *, actor: dict) -> None:
    with write(db):
        entry = row(
            db,
            f"select * from supervisor_facilitators where id = ? and site_id in ({marks(site_ids)})",
            (assignment_id, *site_ids),
        )
        if entry is None:
            raise SupervisionError(N_("This assignment does not exist any more."))
        db.execute("delete from supervisor_facilitators where id = ?", (assignment_id,))
        audit.log(
            db,
            user=actor,
            action="delete",
            table="supervisor_facilitators",
            record_id=assignment_id,
            site_id=entry["site_id"],
            before=entry,
        )


def assignments(db: sqlite_utils.Database, site_ids: list[str]) -> list[dict]:
    return rows(
        db,
        "select a.*, s.display_name as supervisor_name, f.display_name as facilitator_name, t.code as site_code"
        " from supervisor_facilitators a join users s on s.id = a.supervisor_id"
        " join users f on f.id = a.facilitator_id join sites t on t.id = a.site_id"
        f" where a.site_id in ({marks(site_ids)}) order by s.display_name, f.display_name",
        site_ids,
    )


def people_of_sites(db: sqlite_utils.Database, site_ids: list[str], roles: tuple[str, ...]) -> list[dict]:
    return rows(
        db,
        "select distinct u.id, u.display_name, u.username, u.role, us.site_id from users u"
        f" join user_sites us on us.user_id = u.id where us.site_id in ({marks(site_ids)}) and u.active = 1"
        f" and u.role in ({marks(roles)}) order by u.display_name",
        (*site_ids, *roles),
    )


def supervised(db: sqlite_utils.Database, viewer: dict, site_ids: list[str]) -> list[dict]:
    """Return the facilitators ``viewer`` oversees: assigned ones for a supervisor, everyone
    who leads a cycle at their sites for a coordinator or admin."""
    if viewer["role"] == "supervisor":
        return rows(
            db,
            "select distinct u.id, u.display_name, u.username from supervisor_facilitators a"
            f" join users u on u.id = a.facilitator_id where a.supervisor_id = ? and a.site_id in ({marks(site_ids)})"
            " order by u.display_name",
            (viewer["id"], *site_ids),
        )
    return rows(
        db,
        "select distinct u.id, u.display_name, u.username from cycle_facilitators f join users u on u.id = f.user_id"
        f" where f.site_id in ({marks(site_ids)}) order by u.display_name",
        site_ids,
    )


def oversees(db: sqlite_utils.Database, viewer: dict, facilitator_id: str, site_ids: list[str]) -> bool:
    return any(f["id"] == facilitator_id for f in supervised(db, viewer, site_ids))


def supervision_sites(db: sqlite_utils.Database, viewer: dict, facilitator_id: str, site_ids: list[str]) -> list[str]:
    """Return the sites at which ``viewer`` oversees the facilitator."""
    if viewer["role"] != "supervisor":
        return site_ids
    return [
        r["site_id"]
        for r in db.query(
            f"select site_id from supervisor_facilitators where supervisor_id = ? and facilitator_id = ?"
            f" and site_id in ({marks(site_ids)})",
            (viewer["id"], facilitator_id, *site_ids),
        )
    ]


# --- ratings ----------------------------------------------------------------------------


def can_rate(db: sqlite_utils.Database, user: dict, session: dict) -> bool:
    """A supervisor rates the sessions of the facilitators assigned to them; an admin any."""
    if user["role"] == "admin":
        return True
    if user["role"] != "supervisor":
        return False
    return (
        row(
            db,
            "select 1 as x from cycle_facilitators f join supervisor_facilitators a"
            " on a.facilitator_id = f.user_id and a.site_id = f.site_id"
            " where f.cycle_id = ? and a.supervisor_id = ?",
            (session["cycle_id"], user["id"]),
        )
        is not None
    )


def get_rating(db: sqlite_utils.Database, session_id: str, supervisor_id: str) -> dict | None:
    found = row(
        db, "select * from session_ratings where session_id = ? and supervisor_id = ?", (session_id, supervisor_id)
    )
    return _decode(found) if found else None


def _decode(rating: dict) -> dict:
    rating["answers"] = json.loads(rating["answers_json"])
    rating["missing"] = json.loads(rating["missing_json"])
    rating["sections"] = json.loads(rating["sections_json"])
    return rating


def _check_rating(
    session: dict, form: RatingForm, raw_answers: dict, observed_on: date, note: str, today: date, phase: str | None
) -> tuple[dict, str]:
    """Return a rating's parsed answers and trimmed note; refuse a cancelled session, a future date,
    an answer off the scale or a note too long."""
    if session["status"] == "cancelled":
        raise SupervisionError(N_("This session was cancelled; it cannot be rated."))
    if observed_on > today:
        raise SupervisionError(N_("The date of the observation cannot be in the future."), field="observed_on")
    try:
        answers = form.parse(raw_answers, phase)
    except ValueError as exc:
        raise SupervisionError(N_("An answer is not on the rating scale: %(detail)s."), detail=str(exc)) from exc
    note = (note or "").strip()
    if len(note) > MAX_TEXT:
        raise SupervisionError(N_("The note is too long."), field="note")
    return answers, note


def save_rating(
    db: sqlite_utils.Database,
    session: dict,
    form: RatingForm,
    raw_answers: dict,
    *,
    actor: dict,
    observed_on: date,
    note: str,
    today: date,
    phase: str | None = None,
) -> dict:
    """Save a supervisor's rating of an observed session (one per supervisor and session; a new save replaces).

    Blank items are kept as missing: the rating is then incomplete, with no score. ``phase``
    (the session's) leaves out the items of other phases; "not applicable" answers are
    left out of the score.
    """
    answers, note = _check_rating(session, form, raw_answers, observed_on, note, today, phase)
    result = form.score(answers, phase)
    now = utcnow()
    with write(db):
        before = row(
            db, "select * from session_ratings where session_id = ? and supervisor_id = ?", (session["id"], actor["id"])
        )
        values = {
            "site_id": session["site_id"],
            "session_id": session["id"],
            "supervisor_id": actor["id"],
            "form_id": form.id,
            "form_version": form.version,
            "answers_json": json.dumps(answers, sort_keys=True),
            "missing_json": json.dumps(result.missing),
            "complete": int(result.complete),
            "score": result.score,
            "percent": result.percent,
            "sections_json": json.dumps(result.sections, sort_keys=True),
            "observed_on": observed_on.isoformat(),
            "note": note,
        }
        rating = audit.replace(db, "session_ratings", before, values, user=actor, now=now)
    return _decode(dict(rating))


# --- supervision logs -------------------------------------------------------------------


def add_log(
    db: sqlite_utils.Database,
    *,
    supervisor: dict,
    facilitator_id: str,
    site_id: str,
    held_on: date,
    cycle_ids: list[str],
    cases: str,
    actions: str,
    today: date,
) -> dict:
    """Record a weekly supervision meeting with a facilitator."""
    if held_on > today:
        raise SupervisionError(N_("The date of the meeting cannot be in the future."), field="held_on")
    cases, actions = (cases or "").strip(), (actions or "").strip()
    if len(cases) > MAX_TEXT or len(actions) > MAX_TEXT:
        raise SupervisionError(N_("The text is too long."), field="cases")
    if not (cases or actions or cycle_ids):
        raise SupervisionError(N_("Write what was discussed: cycles, cases of concern or actions."), field="cases")
    known = {
        r["cycle_id"] for r in db.query("select cycle_id from cycle_facilitators where user_id = ?", (facilitator_id,))
    }
    if set(cycle_ids) - known:
        raise SupervisionError(N_("A chosen cycle is not led by this facilitator."), field="cycle_ids")
    now = utcnow()
    entry = {
        "id": new_id(),
        "site_id": site_id,
        "facilitator_id": facilitator_id,
        "supervisor_id": supervisor["id"],
        "held_on": held_on.isoformat(),
        "cycles_json": json.dumps(sorted(set(cycle_ids))),
        "cases": cases,
        "actions": actions,
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        audit.insert(db, "supervision_logs", entry, user=supervisor)
    return entry


def logs(db: sqlite_utils.Database, facilitator_id: str, site_ids: list[str]) -> list[dict]:
    found = rows(
        db,
        "select l.*, u.display_name as supervisor_name from supervision_logs l"
        " join users u on u.id = l.supervisor_id"
        f" where l.facilitator_id = ? and l.site_id in ({marks(site_ids)})"
        " order by l.held_on desc, l.created_at desc",
        (facilitator_id, *site_ids),
    )
    for entry in found:
        ids = json.loads(entry["cycles_json"])
        entry["cycle_codes"] = [
            r["code"] for r in db.query(f"select code from cycles where id in ({marks(ids)}) order by code", ids)
        ]
    return found


# --- members of concern ---------------------------------------------------------------


def worsening(db: sqlite_utils.Database, member: dict, points: int) -> dict | None:
    """Return the baseline and latest PHQ-9 totals when the latest is ``points`` or more above baseline.

    Baseline: the PHQ-9 given at this cycle's pre-group session ("baseline"), else
    the last one given on or before enrolment, else the first one. Only totals
    count: a screening without a total (too many missing answers) is skipped.
    """
    given = rows(
        db,
        "select id, total, occasion, cycle_id, administered_on from screenings"
        " where participant_id = ? and instrument_id = ? and total is not null"
        " order by administered_on, created_at",
        (member["participant_id"], WORSENING_INSTRUMENT),
    )
    if len(given) < 2:
        return None
    baseline = next((s for s in given if s["occasion"] == "baseline" and s["cycle_id"] == member["cycle_id"]), None)
    if baseline is None:
        before = [s for s in given if s["administered_on"] <= member["enrolled_on"]]
        baseline = before[-1] if before else given[0]
    later = [s for s in given if s["administered_on"] >= baseline["administered_on"] and s["id"] != baseline["id"]]
    if not later:
        return None
    latest = later[-1]
    rise = latest["total"] - baseline["total"]
    if rise < points:
        return None
    return {
        "baseline": baseline["total"],
        "latest": latest["total"],
        "rise": rise,
        "baseline_on": baseline["administered_on"],
        "latest_on": latest["administered_on"],
    }


def _risk_referrals(db, participant_id: str) -> list[dict]:
    found = rows(
        db,
        "select id, urgency, status, triggers_json, created_at from referrals"
        " where participant_id = ? and status != 'closed'",
        (participant_id,),
    )
    return [r for r in found if any(t.get("kind") in RISK_TRIGGERS for t in json.loads(r["triggers_json"]))]


def members_of_concern(
    db: sqlite_utils.Database,
    facilitator_id: str,
    site_ids: list[str],
    protocols: dict[str, Protocol],
    *,
    today: date,
    due_days: int,
    worsening_points: int,
) -> list[dict]:
    """Return the facilitator's members to discuss, each with its reasons (risk, worsening, absence).

    Active members of the facilitator's open cycles count for all three; a member
    of a closed cycle stays on the list while a risk referral is open.
    """
    members = rows(
        db,
        "select m.*, p.name, p.code as participant_code, c.code as cycle_code, c.status as cycle_status"
        " from members m join participants p on p.id = m.participant_id join cycles c on c.id = m.cycle_id"
        f" where m.site_id in ({marks(site_ids)})"
        " and m.cycle_id in (select cycle_id from cycle_facilitators where user_id = ?)"
        " order by p.name collate nocase",
        (*site_ids, facilitator_id),
    )
    absences = {
        f["member"]["id"]: f["need"]
        for f in followup.followups_needed(
            db, site_ids, protocols, today=today, due_days=due_days, user_id=facilitator_id
        )
    }
    found = []
    for member in members:
        reasons: list[dict] = []
        risks = _risk_referrals(db, member["participant_id"])
        if risks:
            reasons.append(
                {"kind": "risk", "urgent": any(r["urgency"] == "urgent" for r in risks), "referral_id": risks[0]["id"]}
            )
        current = member["status"] == "active" and member["cycle_status"] in ("planned", "active")
        if current:
            worse = worsening(db, member, worsening_points)
            if worse:
                reasons.append({"kind": "worsening", **worse})
            if member["id"] in absences:
                need = absences[member["id"]]
                reasons.append({"kind": "absence", "streak": need.streak, "since": need.since, "overdue": need.overdue})
        if reasons:
            found.append({"member": member, "reasons": reasons})
    return found


# --- the overview -----------------------------------------------------------------------


@dataclass
class FacilitatorSummary:
    facilitator: dict
    ratings: list[dict] = field(default_factory=list)  # oldest first, with the session and self-fidelity
    unrated: list[dict] = field(default_factory=list)  # held sessions without any rating
    concerns: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    threshold: float = 0.0

    @property
    def complete_ratings(self) -> list[dict]:
        return [r for r in self.ratings if r["complete"]]

    @property
    def latest_percent(self) -> float | None:
        done = self.complete_ratings
        return done[-1]["percent"] if done else None

    @property
    def low_adherence(self) -> bool:
        """The latest complete rating is below the threshold."""
        latest = self.latest_percent
        return latest is not None and latest < self.threshold

    @property
    def incomplete(self) -> list[dict]:
        return [r for r in self.ratings if not r["complete"]]


def self_fidelity(answers_json: str | None, protocol: Protocol | None) -> float | None:
    """Return the share (0-100) of the protocol's checklist a facilitator ticked for a session."""
    if answers_json is None or protocol is None or not protocol.fidelity_checklist:
        return None
    answers = json.loads(answers_json)
    ticked = sum(1 for item in protocol.fidelity_checklist if answers.get(item.id))
    return round(100 * ticked / len(protocol.fidelity_checklist), 1)


def facilitator_summary(
    db: sqlite_utils.Database,
    facilitator: dict,
    site_ids: list[str],
    protocols: dict[str, Protocol],
    *,
    threshold: float,
    today: date,
    due_days: int,
    worsening_points: int,
) -> FacilitatorSummary:
    """Gather everything the supervisor's page shows for one facilitator."""
    cycle_ids = [
        r["cycle_id"]
        for r in db.query(
            f"select cycle_id from cycle_facilitators where user_id = ? and site_id in ({marks(site_ids)})",
            (facilitator["id"], *site_ids),
        )
    ]
    held = rows(
        db,
        "select x.*, c.code as cycle_code, c.protocol_id, c.id as cycle_id,"
        " (select answers_json from fidelity_checklists k where k.session_id = x.id and k.user_id = ?) as fidelity"
        f" from sessions x join cycles c on c.id = x.cycle_id where x.cycle_id in ({marks(cycle_ids)})"
        " and x.status = 'held' and x.kind != 'pre-group' order by x.scheduled_date, x.created_at",
        (facilitator["id"], *cycle_ids),
    )
    by_session: dict[str, list[dict]] = {}
    for r in rows(
        db,
        "select r.*, u.display_name as supervisor_name from session_ratings r"
        f" join users u on u.id = r.supervisor_id where r.session_id in ({marks([s['id'] for s in held])})"
        " order by r.observed_on, r.created_at",
        [s["id"] for s in held],
    ):
        by_session.setdefault(r["session_id"], []).append(_decode(r))
    summary = FacilitatorSummary(facilitator, threshold=threshold)
    for session in held:
        mine = self_fidelity(session["fidelity"], protocols.get(session["protocol_id"]))
        found = by_session.get(session["id"], [])
        if not found:
            summary.unrated.append({**session, "self_fidelity": mine})
        for rating in found:
            summary.ratings.append(
                {
                    **rating,
                    "session": session,
                    "self_fidelity": mine,
                    "low": rating["complete"] and rating["percent"] < threshold,
                }
            )
    summary.ratings.sort(key=lambda r: (r["observed_on"], r["created_at"]))
    summary.concerns = members_of_concern(
        db, facilitator["id"], site_ids, protocols, today=today, due_days=due_days, worsening_points=worsening_points
    )
    summary.logs = logs(db, facilitator["id"], site_ids)
    return summary


def overview(
    db: sqlite_utils.Database,
    viewer: dict,
    site_ids: list[str],
    protocols: dict[str, Protocol],
    *,
    threshold: float,
    today: date,
    due_days: int,
    worsening_points: int,
) -> list[FacilitatorSummary]:
    """Return one summary per facilitator the viewer oversees, the ones needing attention first."""
    summaries = []
    for facilitator in supervised(db, viewer, site_ids):
        sites = supervision_sites(db, viewer, facilitator["id"], site_ids)
        summaries.append(
            facilitator_summary(
                db,
                facilitator,
                sites,
                protocols,
                threshold=threshold,
                today=today,
                due_days=due_days,
                worsening_points=worsening_points,
            )
        )
    summaries.sort(key=lambda s: (not s.low_adherence, not s.concerns, not s.incomplete, s.facilitator["display_name"]))
    return summaries


def concern_visible(db: sqlite_utils.Database, viewer: dict, member: dict) -> bool:
    """Members on the list link to their record only for those who may see it."""
    return can_see_record(db, viewer, member)

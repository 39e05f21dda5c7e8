"""Gather the plain data of each printable document from the database and the forms.

Plain functions on a ``sqlite_utils.Database`` and the loaded forms (no Flask):
the web view and the CLI command call one of them, then the document's
``render``. Everything a user triggers is limited to ``site_ids``: a cycle of
another site raises :class:`NotFound`, exactly as a cycle that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time
from typing import Any

import sqlite_utils

from ..base import clock
from ..core import cycles, outcomes
from ..formfiles.instruments import Instrument
from ..formfiles.protocols import Protocol
from ..store.db import marks
from . import PdfLanguage
from .cycle_report import CycleReport, MemberSummary, SessionSummary
from .roster import Roster, RosterMember, RosterSession
from .screening_form import ScreeningForm
from .script_booklet import Booklet

__all__ = [
    "NotFound",
    "booklet_data",
    "cycle_report_data",
    "outcome_instrument",
    "roster_data",
    "screening_form_data",
]

# Sessions that the whole group attends, and so have a column on the roster.
GROUP_KINDS = ("group", "makeup", "maintenance")
ON_ROSTER = ("active", "completed")  # members who left are not asked to sign in
LEFT = ("dropped_out", "withdrawn")
PRESENT = ("present", "late")


class NotFound(LookupError):
    """No such cycle, protocol, session or instrument (or not one of the user's sites)."""


def _cycle(db: sqlite_utils.Database, cycle_id: str, site_ids: Sequence[str] | None) -> dict:
    cycle = cycles.get_cycle(db, cycle_id, list(site_ids) if site_ids is not None else None)
    if cycle is None:
        raise NotFound(f"no cycle {cycle_id!r}")
    return cycle


def _group_sessions(db: sqlite_utils.Database, cycle_id: str) -> list[dict]:
    return [s for s in cycles.sessions(db, cycle_id) if s["kind"] in GROUP_KINDS]


def _facilitator_names(db: sqlite_utils.Database, cycle_id: str) -> tuple[str, ...]:
    return tuple(f["display_name"] or f["username"] for f in cycles.facilitators(db, cycle_id))


def _attendance(db: sqlite_utils.Database, cycle_id: str) -> dict[tuple[str, str], str]:
    """Return {(member id, session id): status} for a whole cycle."""
    found = db.query(
        "select a.member_id, a.session_id, a.status from attendance a join sessions s on s.id = a.session_id"
        " where s.cycle_id = ?",
        (cycle_id,),
    )
    return {(r["member_id"], r["session_id"]): r["status"] for r in found}


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def roster_data(
    db: sqlite_utils.Database,
    cycle_id: str,
    *,
    site_ids: Sequence[str] | None,
    programme: str,
    privacy: bool = False,
) -> Roster:
    """Return the roster of a cycle: its group sessions (not cancelled) and its current members.

    ``site_ids`` limits the search to the user's sites (None: every site, for
    the command line). Attendance is keyed by session id, so a make-up
    session has its own column.
    """
    cycle = _cycle(db, cycle_id, site_ids)
    sessions = [s for s in _group_sessions(db, cycle["id"]) if s["status"] != "cancelled"]
    attendance = _attendance(db, cycle["id"])
    members = [m for m in cycles.members(db, cycle["id"]) if m["status"] in ON_ROSTER]
    start = cycle.get("start_time")
    return Roster(
        programme=programme,
        site=cycle["site_name"],
        cycle=_cycle_label(cycle),
        sessions=[
            RosterSession(s["number"], _date(s["scheduled_date"]), key=s["id"], makeup=s["kind"] == "makeup")
            for s in sessions
        ],
        members=[
            RosterMember(
                code=m["participant_code"],
                name=m["name"],
                sex=m["sex"] or "",
                problem_areas=tuple(a for a in (m["problem_area"], m["problem_area_2"]) if a),
                attendance={
                    s["id"]: status for s in sessions if (status := attendance.get((m["id"], s["id"]))) is not None
                },
            )
            for m in members
        ],
        facilitators=_facilitator_names(db, cycle["id"]),
        venue=cycle["venue"],
        weekday=cycle["weekday"],
        time=time.fromisoformat(start) if start else None,
        privacy=privacy,
    )


def _cycle_label(cycle: dict) -> str:
    return f"{cycle['code']} {cycle['name']}".strip() if cycle.get("name") else cycle["code"]


def outcome_instrument(protocol: Protocol, instruments: dict[str, Instrument]) -> Instrument | None:
    """Return the instrument a cycle's symptom change is measured with: the PHQ-9 when the protocol uses it,
    else the first scored instrument the protocol gives, else None."""
    due = [i for plan in protocol.sessions for i in plan.instruments_due]
    if "phq9" in due and "phq9" in instruments:
        return instruments["phq9"]
    for instrument_id in due:
        instrument = instruments.get(instrument_id)
        if instrument is not None and instrument.scoring.method != "none":
            return instrument
    return None


def cycle_report_data(
    db: sqlite_utils.Database,
    cycle_id: str,
    *,
    site_ids: Sequence[str] | None,
    programme: str,
    protocols: dict[str, Protocol],
    instruments: dict[str, Instrument],
    lang: PdfLanguage,
    privacy: bool = False,
    grace_days: int = 14,
    today: date | None = None,
) -> CycleReport:
    """Return the report of a cycle: attendance per session and member, completion, scores, open referrals.

    Baseline and last score are :mod:`group_ipt.core.outcomes`' rule, the indicators' own
    (``grace_days`` is MEASURE_GRACE_DAYS).
    """
    _ = lang.translate
    cycle = _cycle(db, cycle_id, site_ids)
    protocol = protocols.get(cycle["protocol_id"])
    if protocol is None:
        raise NotFound(f"the protocol {cycle['protocol_id']!r} of cycle {cycle['code']} is missing")
    sessions = _group_sessions(db, cycle["id"])
    attendance = _attendance(db, cycle["id"])
    members = [m for m in cycles.members(db, cycle["id"]) if m["status"] != "transferred"]

    summaries = _session_summaries(sessions, attendance)
    instrument = outcome_instrument(protocol, instruments)
    scores = outcomes.cycle_scores(
        db, cycle, members, protocol, instrument=instrument, grace_days=grace_days, today=today or clock.today()
    )
    member_rows = _member_summaries(members, sessions, attendance, scores, protocol)
    return CycleReport(
        programme=programme,
        site=cycle["site_name"],
        cycle=_cycle_label(cycle),
        protocol=_(protocol.name),
        sessions=summaries,
        members=member_rows,
        group_sessions=len(protocol.group_sessions),
        instrument=_(instrument.name) if instrument else "—",
        facilitators=_facilitator_names(db, cycle["id"]),
        status=_stage(cycle, db, lang),
        open_referrals=_open_referrals(db, [m["participant_id"] for m in members]),
        remission_below=outcomes.remission_below(instrument),
        privacy=privacy,
    )


def _session_summaries(sessions: list[dict], attendance: dict[tuple[str, str], str]) -> list[SessionSummary]:
    """Return each group session's date, status and how many came, were absent or excused."""
    summaries = []
    for s in sessions:
        statuses = [status for (_member_id, session_id), status in attendance.items() if session_id == s["id"]]
        summaries.append(
            SessionSummary(
                number=s["number"],
                date=_date(s["scheduled_date"]),
                status=s["status"],
                present=sum(1 for status in statuses if status in PRESENT),
                absent=statuses.count("absent"),
                excused=statuses.count("excused"),
                makeup=s["kind"] == "makeup",
            )
        )
    return summaries


def _member_summaries(
    members: list[dict],
    sessions: list[dict],
    attendance: dict[tuple[str, str], str],
    scores: dict[str, outcomes.MemberScores],
    protocol: Protocol,
) -> list[MemberSummary]:
    """Return each member's sessions attended, completion, leaving, and first and last score."""
    rows = []
    for m in members:
        # A session number attended twice (a session and its make-up) counts once.
        attended = len({s["number"] for s in sessions if attendance.get((m["id"], s["id"])) in PRESENT})
        member_scores = scores[m["id"]]
        rows.append(
            MemberSummary(
                code=m["participant_code"],
                name=m["name"],
                attended=attended,
                completed=m["status"] == "completed" or protocol.is_completed(attended),
                dropped_out=m["status"] in LEFT,
                baseline=member_scores.baseline_total,
                last=member_scores.last_total,
            )
        )
    return rows


def _open_referrals(db: sqlite_utils.Database, participant_ids: list[str]) -> int:
    """Return how many referrals of these participants are not closed."""
    [count] = db.execute(
        f"select count(*) from referrals where status != 'closed' and participant_id in ({marks(participant_ids)})",
        participant_ids,
    ).fetchone()
    return count


def _stage(cycle: dict, db: sqlite_utils.Database, lang: PdfLanguage) -> str:
    message = cycles.stage(cycle, cycles.sessions(db, cycle["id"]))
    if isinstance(message.msgid, tuple):  # a text that depends on params["count"]
        return lang.translate_plural(*message.msgid, message.params["count"], **message.params)
    return lang.translate(message.msgid, **message.params)


def screening_form_data(
    instruments: dict[str, Instrument], instrument_id: str, *, programme: str, site: str = "", cutoff: int | None = None
) -> ScreeningForm:
    """Return the paper form of an instrument (NotFound for an unknown id)."""
    instrument = instruments.get(instrument_id)
    if instrument is None:
        raise NotFound(f"no instrument {instrument_id!r}")
    return ScreeningForm(instrument, programme, site, cutoff)


def booklet_data(
    forms: Any,
    protocol_id: str,
    *,
    programme: str,
    lang: PdfLanguage,
    session: int | None = None,
    site: str = "",
    safety_contacts: Sequence[dict] = (),
) -> Booklet:
    """Return the script booklet of a protocol (every session) or of one session, translated and filled in.

    ``forms`` is the app's loaded forms (instruments, protocols, scripts).
    """
    from ..formfiles import scripts

    protocol = forms.protocols.get(protocol_id)
    if protocol is None:
        raise NotFound(f"no protocol {protocol_id!r}")
    numbers = [plan.number for plan in protocol.sessions] if session is None else [session]
    texts = []
    for number in numbers:
        try:
            script = forms.scripts.script_for(protocol_id, number)
            context = scripts.session_context(protocol, number)
        except (scripts.ScriptNotFound, KeyError) as exc:
            raise NotFound(f"no script for session {number} of {protocol_id!r}") from exc
        texts.append(scripts.placeholders_filled(script, context, lang.gettext))
    return Booklet(
        programme,
        lang.translate(protocol.name),
        texts,
        site=site,
        safety_contacts=[(c["name"], c["phone"]) for c in safety_contacts],
    )

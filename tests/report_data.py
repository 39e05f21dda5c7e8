"""A small hand-built programme with known indicator values (tests/test_indicators.py says which).

Site KMP, protocol short-6 (pre-group + 6 group sessions, completed = at least 75%, so 5 of 6):

- Cycle A (KMP-C001, women, Amina), Mondays from 2 March 2026, closed normally on 14 April.
  Agnes 6/6, Betty 5/6 (session 3 at a make-up, absent at 5), Carol 5/6 (excused at 5, no end
  score), Dora 2/6 (dropped out after session 2), Esther transferred to cycle B on 18 March.
- Cycle B (KMP-C002, mixed, Ruth the coordinator), Tuesdays from 3 March, closed early on 8 April
  after session 5: Faith 5/6 (completed), Esther 2 of the sessions after she joined (dropped out after 4).
- Cycle C (MSK-C001, Grace): Ivy enrolled, nothing held.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime

from group_ipt.core import cycles, users
from group_ipt.core.sessions import SessionEntry, record_session
from group_ipt.store import db as dbmod

from .conftest import add_participant

NOW = datetime(2026, 2, 20, 9, 0)
CHECKLIST = (
    "started_on_time",
    "welcomed_members",
    "reviewed_symptoms",
    "linked_mood_to_events",
    "kept_focus",
    "checked_goals",
    "set_homework",
)


def add_screening(
    db,
    participant: dict,
    total: float | None,
    on: str,
    *,
    occasion: str = "screening",
    cycle_id: str | None = None,
    session_id: str | None = None,
    eligible: int | None = None,
    by: str | None = None,
    instrument: str = "phq9",
) -> dict:
    record = {
        "id": str(uuid.uuid4()),
        "site_id": participant["site_id"],
        "participant_id": participant["id"],
        "instrument_id": instrument,
        "instrument_version": "1",
        "occasion": occasion,
        "cycle_id": cycle_id,
        "session_id": session_id,
        "answers_json": "{}",
        "total": total,
        "raw_total": total,
        "band": None,
        "eligible": eligible,
        "cutoff": 10,
        "missing_json": "[]",
        "prorated": 0,
        "risk": 0,
        "risk_items_json": "[]",
        "risk_observed": 0,
        "exclusions_json": "[]",
        "administered_on": on,
        "administered_by": by,
        "language": "en",
        "submission_key": uuid.uuid4().hex,
        "note": None,
        "created_at": f"{on}T08:00:00+00:00",
        "updated_at": f"{on}T08:00:00+00:00",
    }
    with dbmod.write(db):
        db["screenings"].insert(record)
    return record


def add_referral(
    db,
    participant: dict,
    on: str,
    triggers: list[dict],
    *,
    status: str = "open",
    due: list[tuple[str, str | None]] = (),
    by: str | None = None,
) -> dict:
    record = {
        "id": str(uuid.uuid4()),
        "site_id": participant["site_id"],
        "participant_id": participant["id"],
        "screening_id": None,
        "reason": "test",
        "triggers_json": json.dumps(triggers),
        "urgency": "routine",
        "status": status,
        "created_by": by,
        "created_at": f"{on}T09:00:00+00:00",
        "updated_at": f"{on}T09:00:00+00:00",
    }
    if status == "closed":
        # Closed as software from before outcomes closed one (a note says why): a closed referral
        # always carries what closing needs, or the record rules refuse it (sync/rules.py).
        record["note"] = "closed"
    with dbmod.write(db):
        db["referrals"].insert(record)
        for due_on, done_on in due:
            db["referral_followups"].insert(
                {
                    "id": str(uuid.uuid4()),
                    "site_id": record["site_id"],
                    "referral_id": record["id"],
                    "due_on": due_on,
                    "done_on": done_on,
                    "created_at": record["created_at"],
                    "updated_at": record["created_at"],
                }
            )
    return record


def _cycle(db, protocols, site: str, first: str, facilitator: str, group_type: str) -> dict:
    return cycles.create_cycle(
        db,
        site_id=users.get_site(db, site)["id"],
        protocol=protocols["short-6"],
        facilitator_ids=[users.get_user_by_username(db, facilitator)["id"]],
        group_type=group_type,
        venue="Hall",
        first_date=date.fromisoformat(first),
        weekday=date.fromisoformat(first).weekday(),
        start_time="14:00",
        actor=None,
        now=NOW,
    )


def _session(db, cycle_id: str, number: int, kind: str = "group") -> dict:
    return next(
        s
        for s in cycles.sessions(db, cycle_id)
        if s["number"] == number and (s["kind"] == kind or (number == 0 and kind == "group"))
    )


def _take(db, protocols, session: dict, marks: dict[str, str], actor: dict, fidelity: dict | None = None) -> None:
    record_session(
        db,
        session["id"],
        SessionEntry(marks, fidelity=fidelity),
        expected_version=session["version"],
        protocols=protocols,
        actor=actor,
        today=date(2026, 6, 30),
    )


def build(db, protocols) -> dict:
    """Build the programme; return the participants, members and cycles by name."""
    amina = users.get_user_by_username(db, "amina")
    names = ("Agnes", "Betty", "Carol", "Dora", "Esther", "Faith", "Gina", "Hope")
    p = {n: add_participant(db, "KMP", f"{n} Test", phone=f"0772 10000{i}") for i, n in enumerate(names)}
    p["Ivy"] = add_participant(db, "MSK", "Ivy Test")
    # Screening (occasion screening): Gina not eligible, Hope screened in 2025.
    for name, total, on in (
        ("Agnes", 17, "2026-02-10"),
        ("Betty", 12, "2026-02-10"),
        ("Carol", 14, "2026-02-11"),
        ("Dora", 19, "2026-02-11"),
        ("Esther", 15, "2026-02-12"),
        ("Faith", 20, "2026-02-12"),
    ):
        add_screening(db, p[name], total, on, eligible=1, by=amina["id"])
    add_screening(db, p["Gina"], 6, "2026-02-15", eligible=0)
    add_screening(db, p["Hope"], 11, "2025-12-20", eligible=1)
    add_screening(db, p["Ivy"], 13, "2026-02-14", eligible=1)
    # Referrals: Gina (exclusion, follow-up overdue), Dora (risk answer, closed), Hope (2025, still open).
    add_referral(
        db,
        p["Gina"],
        "2026-02-15",
        [{"kind": "exclusion", "code": "psychosis"}],
        due=[("2026-02-22", None)],
        by=amina["id"],
    )
    add_referral(
        db,
        p["Dora"],
        "2026-03-20",
        [{"kind": "risk_item", "instrument": "phq9", "item": "q9", "value": 1}],
        status="closed",
        due=[("2026-03-27", "2026-03-27")],
    )
    add_referral(
        db, p["Hope"], "2025-12-20", [{"kind": "risk_observed"}, {"kind": "risk_item"}], due=[("2026-12-01", None)]
    )

    a = _cycle(db, protocols, "KMP", "2026-03-02", "amina", "women")
    b = _cycle(db, protocols, "KMP", "2026-03-03", "coord", "mixed")
    c = _cycle(db, protocols, "MSK", "2026-03-04", "grace", "women")
    m = {}
    for name in ("Agnes", "Betty", "Carol", "Dora", "Esther"):
        m[name] = cycles.enrol(db, a["id"], p[name]["id"], actor=None, today=date(2026, 2, 20))[0]["id"]
    m["Faith"] = cycles.enrol(db, b["id"], p["Faith"]["id"], actor=None, today=date(2026, 2, 25))[0]["id"]
    m["Ivy"] = cycles.enrol(db, c["id"], p["Ivy"]["id"], actor=None, today=date(2026, 2, 20))[0]["id"]

    A = {n: _session(db, a["id"], n) for n in range(7)}  # noqa: N806
    B = {n: _session(db, b["id"], n) for n in range(7)}  # noqa: N806
    full = dict.fromkeys(CHECKLIST, True)

    def take_a(number, agnes, betty, carol, dora, esther=None, fidelity=None):
        marks = {m["Agnes"]: agnes, m["Betty"]: betty, m["Carol"]: carol, m["Dora"]: dora}
        if esther:
            marks[m["Esther"]] = esther
        _take(db, protocols, _session(db, a["id"], number), marks, amina, fidelity)

    def take_b(number, faith, esther=None):
        marks = {m["Faith"]: faith}
        if esther:
            marks[m["Esther B"]] = esther
        _take(db, protocols, _session(db, b["id"], number), marks, amina)

    take_a(0, "present", "present", "present", "present", "present")
    take_b(0, "present")
    take_a(1, "present", "present", "present", "present", "present", fidelity=full)
    take_b(1, "present")
    take_a(
        2,
        "present",
        "present",
        "present",
        "late",
        "absent",
        fidelity={**full, "kept_focus": False, "set_homework": False},
    )
    take_b(2, "present")
    new = cycles.transfer(db, m["Esther"], b["id"], reason="moved house", actor=None, today=date(2026, 3, 18))
    m["Esther B"] = new["id"]
    take_a(3, "present", "absent", "present", "absent")
    makeup = cycles.add_makeup(db, A[3]["id"], date(2026, 3, 25), "14:00", reason="missed", actor=None)
    _take(db, protocols, makeup, {m["Betty"]: "present"}, amina)
    take_b(3, "present", "present")
    take_a(4, "present", "present", "present", "absent")
    take_b(4, "present", "present")
    take_a(5, "present", "absent", "excused", "absent")
    take_b(5, "present", "absent")
    cycles.close_cycle(
        db, b["id"], protocols["short-6"], early=True, reason="venue lost", actor=None, today=date(2026, 4, 8)
    )
    take_a(6, "present", "present", "present", "absent")
    cycles.close_cycle(db, a["id"], protocols["short-6"], early=False, actor=None, today=date(2026, 4, 14))

    # PHQ-9 baseline and end scores (screening_matches decides which count).
    add_screening(db, p["Agnes"], 16, "2026-03-02", occasion="baseline", cycle_id=a["id"], session_id=A[0]["id"])
    add_screening(db, p["Agnes"], 6, "2026-04-13", occasion="end", cycle_id=a["id"], session_id=A[6]["id"])
    add_screening(db, p["Betty"], 4, "2026-04-15", occasion="end")  # no cycle on the form: within the grace days
    add_screening(db, p["Carol"], 13, "2026-03-02", occasion="baseline", cycle_id=a["id"], session_id=A[0]["id"])
    add_screening(db, p["Carol"], None, "2026-04-13", occasion="end", cycle_id=a["id"])  # too many answers missing
    add_screening(db, p["Dora"], 18, "2026-03-02", occasion="baseline", cycle_id=a["id"], session_id=A[0]["id"])
    add_screening(db, p["Dora"], 15, "2026-04-13", occasion="end", cycle_id=a["id"])
    add_screening(db, p["Esther"], 14, "2026-03-02", occasion="baseline", cycle_id=a["id"], session_id=A[0]["id"])
    add_screening(db, p["Esther"], 11, "2026-03-17", occasion="mid", cycle_id=a["id"])
    add_screening(db, p["Esther"], 7, "2026-04-08", occasion="end", cycle_id=b["id"])
    add_screening(db, p["Faith"], 21, "2026-03-03", occasion="baseline", cycle_id=b["id"], session_id=B[0]["id"])
    add_screening(db, p["Faith"], 9, "2026-04-08", occasion="end", cycle_id=b["id"])
    add_screening(db, p["Faith"], 3, "2026-07-08", occasion="followup", cycle_id=b["id"])  # not the end score
    return {"participants": p, "members": m, "cycles": {"A": a, "B": b, "C": c}}

"""One rule for a member's symptom change in a cycle: baseline, last score, response, remission.

The printed cycle report and the indicators page both use these functions, so one
cycle shows one result wherever it is read (docs/reports.md, "Symptom change").

- **Baseline**: the measure of the cycle's pre-group session, matched as the
  measures-due list matches it (``followup.screening_matches``); else the latest
  score on or before enrolment. A transferred member keeps the baseline of the
  cycle they were first enrolled in.
- **Last score**: the measure of the last group session (occasion ``end``), or, for
  a cycle closed early, the ``end`` measure given when it closed. Mid-cycle scores
  and follow-ups months later are not the last score: until the end measure is
  given, a member has no last score (the report says "not yet").
- **Response**: the last score is at most half the baseline (a drop of 50 % or
  more; a baseline of 0 cannot respond).
- **Remission**: the last score is below 5 on the PHQ-9 (for another outcome
  instrument: below the top of its lowest band plus one).

Plain Python, no Flask. Scores are ``screenings`` rows with a total, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

import sqlite_utils

from ..formfiles.instruments import Instrument
from ..formfiles.protocols import Protocol
from ..store.db import marks, row, rows
from . import followup

OUTCOME_INSTRUMENT = "phq9"
RESPONSE_SHARE = Fraction(1, 2)  # at least a 50% drop from baseline
REMISSION_BELOW = 5  # PHQ-9 total under 5: minimal symptoms


@dataclass(frozen=True)
class MemberScores:
    """A member's baseline and last score rows (None when missing) and what follows from them."""

    baseline: dict | None
    last: dict | None
    remission_below: float = REMISSION_BELOW

    @property
    def baseline_total(self) -> float | None:
        return None if self.baseline is None else self.baseline["total"]

    @property
    def last_total(self) -> float | None:
        return None if self.last is None else self.last["total"]

    @property
    def paired(self) -> bool:
        return self.baseline is not None and self.last is not None

    @property
    def change(self) -> float | None:
        return change(self.baseline_total, self.last_total)

    @property
    def responded(self) -> bool | None:
        return responded(self.baseline_total, self.last_total)

    @property
    def remitted(self) -> bool | None:
        return remitted(self.last_total, self.remission_below) if self.paired else None


def change(baseline: float | None, last: float | None) -> float | None:
    """Return last minus baseline (negative: fewer symptoms), None without both."""
    if baseline is None or last is None:
        return None
    return last - baseline


def improvement(baseline: float | None, last: float | None) -> float | None:
    """Return the share by which a score fell (0.5 = half as high); None without both or from 0."""
    if baseline is None or last is None or baseline <= 0:
        return None
    return float((Fraction(str(baseline)) - Fraction(str(last))) / Fraction(str(baseline)))


def responded(baseline: float | None, last: float | None) -> bool | None:
    """Return whether the score dropped by RESPONSE_SHARE or more; None without both scores."""
    if baseline is None or last is None:
        return None
    if baseline <= 0:
        return False
    return Fraction(str(last)) <= Fraction(str(baseline)) * (1 - RESPONSE_SHARE)


def remitted(last: float | None, below: float = REMISSION_BELOW) -> bool | None:
    """Return whether the last score is under the remission threshold; None without it."""
    return None if last is None else last < below


def remission_below(instrument: Instrument | None) -> float:
    """Return the score under which a member counts as well: 5 on the PHQ-9, else the lowest band's top + 1."""
    if instrument is None or instrument.id == OUTCOME_INSTRUMENT or not instrument.bands:
        return REMISSION_BELOW
    return min(instrument.bands, key=lambda band: band.min).max + 1


def last_group_session(sessions: Sequence[dict], protocol: Protocol | None) -> dict | None:
    """Return the cycle's last group session (the protocol's last number), where the end measure is due."""
    regular = [s for s in sessions if s["kind"] == "group"]
    number: int | None
    if protocol is not None and protocol.group_sessions:
        number = max(p.number for p in protocol.group_sessions)
    else:
        number = max((s["number"] for s in regular), default=None)
    return next((s for s in regular if s["number"] == number), None)


def pick_baseline(
    scores: Sequence[dict],
    *,
    instrument: str,
    first_cycle_id: str,
    pre_group: dict | None,
    enrolled_on: str,
    grace_days: int,
) -> dict | None:
    """Return the baseline row among a person's scores for the membership they were first enrolled with."""
    due_on = date.fromisoformat((pre_group["scheduled_date"] if pre_group else enrolled_on)[:10])
    matched = [
        s
        for s in scores
        if followup.screening_matches(
            s,
            instrument=instrument,
            occasion="baseline",
            cycle_id=first_cycle_id,
            session_id=pre_group["id"] if pre_group else None,
            due_on=due_on,
            grace_days=grace_days,
        )
    ]
    if matched:
        return matched[-1]
    before = [s for s in scores if s["instrument_id"] == instrument and s["administered_on"][:10] <= enrolled_on]
    return before[-1] if before else None


def pick_last(
    scores: Sequence[dict], *, instrument: str, cycle: dict, last_session: dict | None, grace_days: int, today: date
) -> dict | None:
    """Return the last-score row: the end measure of the last group session (or of the early close)."""
    if last_session is not None and last_session["status"] != "cancelled":
        due = last_session["scheduled_date"]
    else:  # closed early: the end measure is taken when the group stops
        due = cycle.get("closed_on") or (last_session or {}).get("scheduled_date") or today.isoformat()
    matched = [
        s
        for s in scores
        if followup.screening_matches(
            s,
            instrument=instrument,
            occasion="end",
            cycle_id=cycle["id"],
            session_id=last_session["id"] if last_session else None,
            due_on=date.fromisoformat(due[:10]),
            grace_days=grace_days,
        )
    ]
    return matched[-1] if matched else None


def first_membership(db: sqlite_utils.Database, member: dict) -> dict:
    """Follow transfers back to the membership the person was first enrolled with."""
    seen = {member["id"]}
    current = member
    while current.get("transferred_from"):
        earlier = row(db, "select * from members where id = ?", (current["transferred_from"],))
        if earlier is None or earlier["id"] in seen:
            break
        seen.add(earlier["id"])
        current = earlier
    return current


def pre_group_session(db: sqlite_utils.Database, cycle_id: str) -> dict | None:
    return row(
        db,
        "select * from sessions where cycle_id = ? and kind = 'pre-group' order by number, created_at limit 1",
        (cycle_id,),
    )


def cycle_scores(
    db: sqlite_utils.Database,
    cycle: dict,
    members: Sequence[dict],
    protocol: Protocol | None,
    *,
    instrument: Instrument | None,
    grace_days: int,
    today: date,
) -> dict[str, MemberScores]:
    """Return {member id: MemberScores} for the members of one cycle (what the printed report shows)."""
    if instrument is None or not members:
        return {m["id"]: MemberScores(None, None) for m in members}
    below = remission_below(instrument)
    sessions = rows(
        db, "select * from sessions where cycle_id = ? order by scheduled_date, number, created_at", (cycle["id"],)
    )
    last_session = last_group_session(sessions, protocol)
    scores: dict[str, list[dict]] = {}
    for r in db.query(
        f"select * from screenings where instrument_id = ? and total is not null and participant_id"
        f" in ({marks(members)}) order by administered_on, created_at",
        [instrument.id, *(m["participant_id"] for m in members)],
    ):
        scores.setdefault(r["participant_id"], []).append(r)
    found = {}
    for member in members:
        mine = scores.get(member["participant_id"], [])
        first = first_membership(db, member)
        baseline = pick_baseline(
            mine,
            instrument=instrument.id,
            first_cycle_id=first["cycle_id"],
            pre_group=pre_group_session(db, first["cycle_id"]),
            enrolled_on=first["enrolled_on"],
            grace_days=grace_days,
        )
        last = pick_last(
            mine, instrument=instrument.id, cycle=cycle, last_session=last_session, grace_days=grace_days, today=today
        )
        found[member["id"]] = MemberScores(baseline, last, below)
    return found

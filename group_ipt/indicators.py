"""Programme indicators for a period: what a ministry and a funder ask for, with the records behind each.

Plain functions on the database and the loaded protocols (no Flask). Every
figure is computed from a list of records, and the same list is what
:func:`records` returns, so a number and the list behind it always agree.
Labels and definitions are English msgids (the web page translates them).

The rules, written once here and in docs/reports.md:

- Periods follow DHIS2's period ids: ``2026`` (year), ``2026Q4`` (quarter),
  ``202611`` (month), ``2026W47`` (ISO week); a range ``2026-01-01..2026-03-31``
  is allowed on screen and in CSV (DHIS2 needs one of the ids above).
- Completion and dropout use the cycle's own rule: the member statuses set when
  the cycle closed by ``Protocol.is_completed`` (``followup.member_summaries``).
  The cohort is the members of the cycles closed in the period; a member who
  was transferred out is counted once, in the cycle they moved to.
- Symptom scores (PHQ-9): baseline, end (last) score, response and remission are
  the one rule of :mod:`group_ipt.outcomes`, which the printed cycle report uses
  too. Means and shares are over members with both scores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import sqlite_utils

from . import cycles as cycles_module
from . import followup, outcomes, report_store
from .errors import N_
from .periods import Period
from .protocols import Protocol

OUTCOME_INSTRUMENT = outcomes.OUTCOME_INSTRUMENT  # also named in the triggers of schema/m0007_report_store.py
SITE, FACILITATOR, PROTOCOL, GROUP_TYPE = "site", "facilitator", "protocol", "group_type"
ALL_FILTERS = (SITE, FACILITATOR, PROTOCOL, GROUP_TYPE)
PERSON_FILTERS = (SITE, FACILITATOR)  # screening and referrals happen before any cycle
RAISED_ON = "coalesce(s.administered_on, substr(r.created_at, 1, 10))"  # a referral's date
OPEN_STATUSES = ("open", "referred", "followed_up")  # every status but closed (schema's check)
NEXT_DUE = "(select min(f.due_on) from referral_followups f where f.referral_id = r.id and f.done_on is null)"


class UnknownIndicator(LookupError):
    """No indicator has this id (or no part of it has this key)."""


# --- filters and results ----------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What to count: always limited to ``site_ids`` (the user's sites, or the one chosen)."""

    site_ids: tuple[str, ...]
    period: Period | None = None  # None: all time
    facilitator_id: str | None = None
    protocol_id: str | None = None
    group_type: str | None = None
    cycle_ids: tuple[str, ...] | None = None  # only these cycles (the stored figures are computed per cycle)

    def active(self) -> tuple[str, ...]:
        """Return the filters beyond site and period that are set."""
        return tuple(
            name
            for name, value in (
                (FACILITATOR, self.facilitator_id),
                (PROTOCOL, self.protocol_id),
                (GROUP_TYPE, self.group_type),
            )
            if value
        )


@dataclass(frozen=True)
class Part:
    """One line of an indicator's breakdown (a reason, a session number)."""

    key: str
    label: str  # English msgid with %(name)s params
    params: dict[str, Any]
    value: float | None
    numerator: int | None = None
    denominator: int | None = None


@dataclass(frozen=True)
class Indicator:
    id: str
    section: str
    label: str
    definition: str
    kind: str  # count, share (0-1), mean
    value: float | None  # None: nothing to compute it from
    numerator: int | None = None
    denominator: int | None = None
    parts: tuple[Part, ...] = ()
    filtered_by: tuple[str, ...] = ALL_FILTERS

    def part(self, key: str) -> Part:
        for p in self.parts:
            if p.key == key:
                return p
        raise UnknownIndicator(f"{self.id}.{key}")


@dataclass(frozen=True)
class Spec:
    id: str
    section: str
    label: str
    definition: str
    kind: str
    family: str
    filtered_by: tuple[str, ...] = ALL_FILTERS


S_SCREEN = N_("Screening and referral")
S_CYCLES = N_("Enrolment and cycles")
S_ATTEND = N_("Attendance, completion and dropout")
S_OUTCOME = N_("Symptom outcome (PHQ-9)")
S_FIDELITY = N_("Fidelity")

SPECS: tuple[Spec, ...] = (
    Spec(
        "screened",
        S_SCREEN,
        N_("People screened"),
        N_("People with at least one screening questionnaire (occasion: screening) given in the period."),
        "count",
        "screening",
        PERSON_FILTERS,
    ),
    Spec(
        "eligible",
        S_SCREEN,
        N_("People eligible"),
        N_(
            "People screened in the period with at least one screening at or above the eligibility cut-off "
            "and no exclusion."
        ),
        "count",
        "screening",
        PERSON_FILTERS,
    ),
    Spec(
        "referrals",
        S_SCREEN,
        N_("Safety referrals raised"),
        N_("Referrals raised in the period, by what raised them (one referral can have several reasons)."),
        "count",
        "referrals",
        PERSON_FILTERS,
    ),
    Spec(
        "referrals_open",
        S_SCREEN,
        N_("Referrals still open"),
        N_("Referrals raised up to the end of the period that are not closed today."),
        "count",
        "open_referrals",
        PERSON_FILTERS,
    ),
    Spec(
        "referrals_overdue",
        S_SCREEN,
        N_("Referrals with an overdue follow-up"),
        N_("Open referrals with a planned follow-up contact not done and due before today."),
        "count",
        "open_referrals",
        PERSON_FILTERS,
    ),
    Spec(
        "enrolled",
        S_CYCLES,
        N_("People enrolled"),
        N_("Members enrolled in a cycle in the period; a transfer to another cycle is not a new enrolment."),
        "count",
        "enrolment",
    ),
    Spec(
        "cycles_started",
        S_CYCLES,
        N_("Cycles started"),
        N_("Cycles whose first group session was held in the period."),
        "count",
        "cycles",
    ),
    Spec(
        "cycles_completed",
        S_CYCLES,
        N_("Cycles completed"),
        N_("Cycles closed in the period after all their sessions."),
        "count",
        "cycles",
    ),
    Spec(
        "cycles_closed_early",
        S_CYCLES,
        N_("Cycles closed early"),
        N_("Cycles closed in the period before their last session, with a reason."),
        "count",
        "cycles",
    ),
    Spec(
        "attendance_rate",
        S_ATTEND,
        N_("Attendance rate"),
        N_(
            "Group sessions attended (present or late, a make-up counting for the session it makes up) out of "
            "those marked, for sessions held in the period; by session number."
        ),
        "share",
        "attendance",
    ),
    Spec(
        "members_ended",
        S_ATTEND,
        N_("Members at the end of a cycle"),
        N_("Members of the cycles closed in the period (a member transferred out counts in the cycle they moved to)."),
        "count",
        "outcome",
    ),
    Spec(
        "completion_rate",
        S_ATTEND,
        N_("Completion rate"),
        N_(
            "Members who completed by their protocol's rule (share of group sessions attended) out of the "
            "members at the end of a cycle."
        ),
        "share",
        "outcome",
    ),
    Spec(
        "dropout_rate",
        S_ATTEND,
        N_("Dropout rate"),
        N_(
            "Members who dropped out or withdrew out of the members at the end of a cycle; by the last group "
            "session they attended."
        ),
        "share",
        "outcome",
    ),
)
_SCORED = {
    "completers": N_("Members who completed, in cycles closed in the period, with both a baseline and an end score."),
    "everyone": N_(
        "Members of the cycles closed in the period, completed or not, with both a baseline and an end score."
    ),
}
_NO_END = {
    "completers": N_(
        "Members who completed, in cycles closed in the period, without an end score (or without a "
        "baseline): left out of the figures below."
    ),
    "everyone": N_(
        "Members of the cycles closed in the period without an end score (or without a baseline): left "
        "out of the figures below."
    ),
}
for _group in ("completers", "everyone"):
    SPECS += (
        Spec(
            f"{_group}_scored",
            S_OUTCOME,
            N_("Completers with a baseline and an end score")
            if _group == "completers"
            else N_("Members with a baseline and an end score"),
            _SCORED[_group],
            "count",
            "outcome",
        ),
        Spec(
            f"{_group}_no_end_score",
            S_OUTCOME,
            N_("Completers with no end score") if _group == "completers" else N_("Members with no end score"),
            _NO_END[_group],
            "count",
            "outcome",
        ),
        Spec(
            f"{_group}_baseline_mean",
            S_OUTCOME,
            N_("Mean baseline score, completers")
            if _group == "completers"
            else N_("Mean baseline score, everyone enrolled"),
            N_("Mean PHQ-9 at the pre-group session (or the latest before enrolment), of members with both scores."),
            "mean",
            "outcome",
        ),
        Spec(
            f"{_group}_end_mean",
            S_OUTCOME,
            N_("Mean end score, completers") if _group == "completers" else N_("Mean end score, everyone enrolled"),
            N_("Mean PHQ-9 at the last group session, of members with both scores."),
            "mean",
            "outcome",
        ),
        Spec(
            f"{_group}_change_mean",
            S_OUTCOME,
            N_("Mean change, completers") if _group == "completers" else N_("Mean change, everyone enrolled"),
            N_("Mean of end minus baseline score (negative: fewer symptoms), of members with both scores."),
            "mean",
            "outcome",
        ),
        Spec(
            f"{_group}_response_rate",
            S_OUTCOME,
            N_("Score at least halved, completers")
            if _group == "completers"
            else N_("Score at least halved, everyone enrolled"),
            N_("Share of members with both scores whose end score is at most half their baseline."),
            "share",
            "outcome",
        ),
        Spec(
            f"{_group}_remission_rate",
            S_OUTCOME,
            N_("Below 5 at the end, completers")
            if _group == "completers"
            else N_("Below 5 at the end, everyone enrolled"),
            N_("Share of members with both scores whose end score is below 5 (minimal symptoms)."),
            "share",
            "outcome",
        ),
    )
SPECS += (
    Spec(
        "fidelity_checklist_rate",
        S_FIDELITY,
        N_("Sessions with a fidelity checklist"),
        N_("Group sessions held in the period for which a facilitator filled in the fidelity checklist."),
        "share",
        "fidelity",
    ),
    Spec(
        "fidelity_items_rate",
        S_FIDELITY,
        N_("Checklist items done"),
        N_("Items answered 'done' out of all items answered, over the checklists of those sessions."),
        "share",
        "fidelity",
    ),
)
SPEC_BY_ID = {s.id: s for s in SPECS}
INDICATOR_IDS = tuple(SPEC_BY_ID)

# The columns of each family's records, in order (the view and the CSV label them).
COLUMNS = {
    "screening": ("participant_code", "name", "site_code", "first_screened_on", "screenings", "eligible"),
    "referrals": ("participant_code", "name", "site_code", "raised_on", "urgency", "status", "reasons"),
    "open_referrals": (
        "participant_code",
        "name",
        "site_code",
        "raised_on",
        "urgency",
        "status",
        "next_due_on",
        "overdue",
    ),
    "enrolment": ("participant_code", "name", "site_code", "cycle_code", "enrolled_on", "status"),
    "cycles": (
        "cycle_code",
        "site_code",
        "protocol_id",
        "group_type",
        "facilitators",
        "first_held_on",
        "status",
        "closed_on",
        "members",
    ),
    "attendance": ("participant_code", "name", "site_code", "cycle_code", "session_number", "session_date", "attended"),
    "outcome": (
        "participant_code",
        "name",
        "site_code",
        "cycle_code",
        "outcome",
        "group_sessions_attended",
        "last_session_attended",
        "baseline",
        "baseline_on",
        "end",
        "end_on",
        "change",
        "improved_50",
        "below_5",
    ),
    "fidelity": (
        "cycle_code",
        "site_code",
        "session_number",
        "session_date",
        "checklists",
        "items_done",
        "items_answered",
    ),
}
PERSONAL_COLUMNS = frozenset({"name"})


@dataclass
class Records:
    columns: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)


# --- the report -------------------------------------------------------------------------


def _marks(values: Sequence) -> str:
    return ",".join("?" for _ in values) or "''"


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


OUTCOME_CHUNK = 200  # closed cycles read together


@dataclass
class _CycleRows:
    """The sessions, members, attendance and PHQ-9 scores of several cycles, read in four queries."""

    sessions: dict[str, list[dict]]
    members: dict[str, list[dict]]
    records: dict[str, dict[str, list[dict]]]
    scores: dict[str, list[dict]]

    @classmethod
    def read(cls, db: sqlite_utils.Database, cycle_ids: list[str]) -> _CycleRows:
        members = cycles_module.members_of(db, cycle_ids)
        scores: dict[str, list[dict]] = {
            pid: [] for found in members.values() for pid in (m["participant_id"] for m in found)
        }
        for r in db.query(
            f"select * from screenings where participant_id in (select participant_id from members"
            f" where cycle_id in ({_marks(cycle_ids)})) and instrument_id = ? and total is not null"
            " order by administered_on, created_at",
            [*cycle_ids, OUTCOME_INSTRUMENT],
        ):
            scores.setdefault(r["participant_id"], []).append(r)
        return cls(cycles_module.sessions_of(db, cycle_ids), members, followup.member_records_of(db, cycle_ids), scores)


class Report:
    """All indicators of one set of filters, computed once, with the records behind each."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        filters: Filters,
        protocols: dict[str, Protocol],
        *,
        today: date,
        grace_days: int = 14,
    ) -> None:
        self.db = db
        self.filters = filters
        self.protocols = protocols
        self.today = today
        self.grace_days = grace_days

    # -- SQL helpers

    def _in_period(self, column: str) -> tuple[str, list]:
        if self.filters.period is None:
            return "", []
        return f" and {column} between ? and ?", list(self.filters.period.bounds())

    def _sites(self, column: str, site_ids: Sequence[str] | None = None) -> tuple[str, list]:
        site_ids = self.filters.site_ids if site_ids is None else site_ids
        return f" and {column} in ({_marks(site_ids)})", list(site_ids)

    def _cycle_filter(
        self, alias: str = "c", id_column: str = "id", site_ids: Sequence[str] | None = None
    ) -> tuple[str, list]:
        """Return the filters on a cycle's site, protocol, group type, facilitator (and cycle ids).

        ``alias`` is a ``cycles`` row (``id_column`` "id"), or a stored ``report_*`` row, which
        carries its cycle's site, protocol and group type (``id_column`` "cycle_id").
        ``site_ids`` replaces the filters' sites (one site at a time, see ``_summed``).
        """
        f = self.filters
        # With a few cycles named, read them by id: the unary + keeps the planner off the site index.
        sql, params = self._sites(f"{'+' if f.cycle_ids is not None else ''}{alias}.site_id", site_ids)
        if f.protocol_id:
            sql += f" and {alias}.protocol_id = ?"
            params.append(f.protocol_id)
        if f.group_type:
            sql += f" and {alias}.group_type = ?"
            params.append(f.group_type)
        if f.facilitator_id:
            sql += f" and {alias}.{id_column} in (select cycle_id from cycle_facilitators where user_id = ?)"
            params.append(f.facilitator_id)
        if f.cycle_ids is not None:
            sql += f" and {alias}.{id_column} in ({_marks(f.cycle_ids)})"
            params += f.cycle_ids
        return sql, params

    # -- families: each returns its records; the figures are counted from them

    @cached_property
    def screening(self) -> list[dict]:
        where, params = self._sites("s.site_id")
        period, more = self._in_period("s.administered_on")
        sql = (
            "select p.code as participant_code, p.name, si.code as site_code,"
            " min(s.administered_on) as first_screened_on, count(*) as screenings,"
            " max(coalesce(s.eligible, 0)) as eligible"
            " from screenings s join participants p on p.id = s.participant_id join sites si on si.id = s.site_id"
            f" where s.occasion = 'screening'{where}{period}"
        )
        params += more
        if self.filters.facilitator_id:
            sql += " and s.administered_by = ?"
            params.append(self.filters.facilitator_id)
        return list(self.db.query(sql + " group by s.participant_id order by first_screened_on, p.code", params))

    def _referral_query(self, columns: str, *, open_only: bool) -> tuple[str, list]:
        """Return a query of ``columns`` over the referrals raised in the period (or still open at its end).

        The records behind the referral figures (these figures themselves are counted from the
        stored ``report_referrals``, which the tests hold equal to these records).
        """
        where, params = self._sites("r.site_id")
        indexed = ""
        if open_only:
            # Through referrals_open_by_site: the planner's statistics see few statuses and
            # would read every referral (27,000 at 100,000 participants).
            indexed = " indexed by referrals_open_by_site"
            period = ""
            if self.filters.period is not None:
                period = f" and {RAISED_ON} <= ?"
                params.append(self.filters.period.end.isoformat())
            period += f" and r.status in ({_marks(OPEN_STATUSES)})"  # not "!= 'closed'": the index is used
            params += OPEN_STATUSES
        else:
            period, more = self._in_period(RAISED_ON)
            params += more
            if self.filters.period is not None:
                # The same referrals found by their stored day (migration 0010) instead of reading
                # every referral; the day is also checked against the records just above.
                period += (
                    " and r.id in (select d.referral_id from report_referrals d where d.raised_on between ? and ?)"
                )
                params += more
        sql = (
            f"select {columns} from referrals r{indexed} join participants p on p.id = r.participant_id"
            f" join sites si on si.id = r.site_id left join screenings s on s.id = r.screening_id"
            f" where 1 = 1{where}{period}"
        )
        if self.filters.facilitator_id:
            sql += " and r.created_by = ?"
            params.append(self.filters.facilitator_id)
        return sql, params

    def _referral_rows(self, *, open_only: bool) -> list[dict]:
        sql, params = self._referral_query(
            f"p.code as participant_code, p.name, si.code as site_code, {RAISED_ON} as raised_on, r.urgency,"
            f" r.status, r.triggers_json, {NEXT_DUE} as next_due_on",
            open_only=open_only,
        )
        found = []
        for r in self.db.query(sql + " order by raised_on, p.code", params):
            r["reasons"] = " ".join(_reason_keys(json.loads(r.pop("triggers_json") or "[]")))
            r["overdue"] = int(r["next_due_on"] is not None and r["next_due_on"] < self.today.isoformat())
            found.append(r)
        return found

    def _referral_figures(self) -> tuple[int, dict[str, int], int, int]:
        """Return referrals raised, per reason, open and overdue, from the stored rows (migration 0010)."""
        where, params = self._sites("d.site_id")
        by = ""
        if self.filters.facilitator_id:
            by = " and d.created_by = ?"
            params.append(self.filters.facilitator_id)
        period, more = self._in_period("d.raised_on")
        raised, reasons = 0, {}
        for triggers, n in self.db.execute(
            f"select d.triggers_json, count(*) from report_referrals d indexed by report_referrals_by_day"
            f" where 1 = 1{period}{where}{by} group by 1",
            more + params,
        ):
            raised += n
            for key in _reason_keys(json.loads(triggers or "[]")):
                reasons[key] = reasons.get(key, 0) + n
        period = ""
        if self.filters.period is not None:
            period = " and d.raised_on <= ?"
            params = [*params, self.filters.period.end.isoformat()]
        still_open, overdue = self.db.execute(
            f"select count(*), coalesce(sum(d.next_due_on < ?), 0) from report_referrals d"
            f" indexed by report_referrals_open where d.open = 1{where}{by}{period}",
            [self.today.isoformat(), *params],
        ).fetchone()
        return raised, reasons, still_open, overdue

    @cached_property
    def referrals(self) -> list[dict]:
        return self._referral_rows(open_only=False)

    @cached_property
    def open_referrals(self) -> list[dict]:
        return self._referral_rows(open_only=True)

    @cached_property
    def enrolment(self) -> list[dict]:
        where, params = self._cycle_filter()
        period, more = self._in_period("m.enrolled_on")
        return list(
            self.db.query(
                "select p.code as participant_code, p.name, si.code as site_code, c.code as cycle_code, m.enrolled_on,"
                " m.status, c.id as cycle_id from members m join cycles c on c.id = m.cycle_id"
                " join participants p on p.id = m.participant_id"
                f" join sites si on si.id = c.site_id where m.transferred_from is null{where}{period}"
                " order by m.enrolled_on, c.code, p.code",
                params + more,
            )
        )

    @cached_property
    def cycles(self) -> list[dict]:
        where, params = self._cycle_filter()
        return list(
            self.db.query(
                "select c.id, c.code as cycle_code, si.code as site_code, c.protocol_id, c.group_type,"
                " (select group_concat(u.display_name, ', ') from cycle_facilitators f join users u on u.id = f.user_id"
                "  where f.cycle_id = c.id) as facilitators,"
                " (select min(x.scheduled_date) from sessions x where x.cycle_id = c.id and x.kind = 'group'"
                "  and x.status = 'held') as first_held_on, c.status, c.closed_on,"
                " (select count(*) from members m where m.cycle_id = c.id and m.status != 'transferred') as members"
                f" from cycles c join sites si on si.id = c.site_id where 1 = 1{where} order by c.first_date, c.code",
                params,
            )
        )

    def _within(self, day: str | None) -> bool:
        if day is None:
            return False
        if self.filters.period is None:
            return True
        start, end = self.filters.period.bounds()
        return start <= day[:10] <= end

    @cached_property
    def attendance(self) -> list[dict]:
        """Return one row per member and group session number: attended at that number or at its make-up."""
        where, params = self._cycle_filter()
        if self.filters.period is not None:
            # Only cycles with a held session in the period can have a pair whose first date is in it
            # (a member's sessions all belong to one cycle): the same rows, without reading every cycle's.
            where += (
                " and x.cycle_id in (select cycle_id from sessions where status = 'held'"
                " and scheduled_date between ? and ?)"
            )
            params = [*params, *self.filters.period.bounds()]
        pairs: dict[tuple[str, int], dict] = {}
        for r in self.db.query(
            "select a.member_id, a.status, x.number, x.scheduled_date, x.cycle_id, p.code as participant_code, p.name,"
            " si.code as site_code, c.code as cycle_code from attendance a join sessions x on x.id = a.session_id"
            " join members m on m.id = a.member_id join participants p on p.id = m.participant_id"
            " join cycles c on c.id = x.cycle_id join sites si on si.id = c.site_id"
            f" where x.status = 'held' and x.kind in ('group', 'makeup') and x.number > 0{where}"
            " order by x.scheduled_date",
            params,
        ):
            key = (r["member_id"], r["number"])
            attended = int(r["status"] in followup.ATTENDED)
            if key in pairs:
                pairs[key]["attended"] = max(pairs[key]["attended"], attended)
                continue
            pairs[key] = {
                "participant_code": r["participant_code"],
                "name": r["name"],
                "site_code": r["site_code"],
                "cycle_code": r["cycle_code"],
                "session_number": r["number"],
                "session_date": r["scheduled_date"],
                "attended": attended,
                "cycle_id": r["cycle_id"],
            }
        found = [p for p in pairs.values() if self._within(p["session_date"])]
        return sorted(found, key=lambda p: (p["cycle_code"], p["session_number"], p["participant_code"]))

    @cached_property
    def outcome(self) -> list[dict]:
        """Return one row per member of the cycles closed in the period, with outcome and scores."""
        where, params = self._cycle_filter()
        period, more = self._in_period("c.closed_on")
        closed = list(
            self.db.query(
                "select c.*, si.code as site_code from cycles c join sites si on si.id = c.site_id"
                f" where c.status in ('closed', 'closed_early'){where}{period} order by c.closed_on, c.code",
                params + more,
            )
        )
        result = []
        for start in range(0, len(closed), OUTCOME_CHUNK):  # a few queries per chunk of cycles, not per member
            chunk = closed[start : start + OUTCOME_CHUNK]
            data = _CycleRows.read(self.db, [c["id"] for c in chunk])
            self._scores_cache.update(data.scores)
            for cycle in chunk:
                result += self._cycle_outcome(cycle, data)
        return result

    def _cycle_outcome(self, cycle: dict, data: _CycleRows) -> list[dict]:
        protocol = self.protocols.get(cycle["protocol_id"])
        sessions = data.sessions.get(cycle["id"], [])
        records = data.records.get(cycle["id"], {})
        members = data.members.get(cycle["id"], [])
        summaries = followup.summarise_members(sessions, records, members, protocol) if protocol else {}
        last = outcomes.last_group_session(sessions, protocol)
        rows = []
        for member in members:
            if member["status"] == "transferred":
                continue
            outcome = summaries.get(member["id"], {}).get("outcome", member["status"])
            attended = [
                r["number"]
                for r in records.get(member["id"], [])
                if r["status"] in followup.ATTENDED and r["number"] > 0
            ]
            baseline = self._baseline(member, data)
            end = self._end(member, cycle, last)
            row = {
                "participant_code": member["participant_code"],
                "name": member["name"],
                "site_code": cycle["site_code"],
                "cycle_code": cycle["code"],
                "outcome": outcome,
                "group_sessions_attended": len(set(attended)),
                "last_session_attended": max(attended, default=0),
                "baseline": baseline["total"] if baseline else None,
                "baseline_on": baseline["administered_on"] if baseline else None,
                "end": end["total"] if end else None,
                "end_on": end["administered_on"] if end else None,
                "change": None,
                "improved_50": None,
                "below_5": None,
                "cycle_id": cycle["id"],
                "member_id": member["id"],
            }
            scores = outcomes.MemberScores(baseline, end)
            if scores.paired:
                row["change"] = scores.change
                row["improved_50"] = int(scores.responded)
                row["below_5"] = int(scores.remitted)
            rows.append(row)
        return rows

    @cached_property
    def _scores_cache(self) -> dict[str, list[dict]]:
        return {}

    def _scores(self, participant_id: str) -> list[dict]:
        cache = self._scores_cache
        if participant_id not in cache:
            cache[participant_id] = list(
                self.db.query(
                    "select * from screenings where participant_id = ? and instrument_id = ? and total is not null"
                    " order by administered_on, created_at",
                    (participant_id, OUTCOME_INSTRUMENT),
                )
            )
        return cache[participant_id]

    def _pre_group(self, cycle_id: str, data: _CycleRows) -> dict | None:
        if cycle_id in data.sessions:
            found = [s for s in data.sessions[cycle_id] if s["kind"] == "pre-group"]
            return min(found, key=lambda s: (s["number"], s["created_at"])) if found else None
        cache = self.__dict__.setdefault("_pre_group_cache", {})
        if cycle_id not in cache:  # a transferred member's first cycle, outside the chunk read
            cache[cycle_id] = next(
                iter(
                    self.db.query(
                        "select * from sessions where cycle_id = ? and kind = 'pre-group'"
                        " order by number, created_at limit 1",
                        (cycle_id,),
                    )
                ),
                None,
            )
        return cache[cycle_id]

    def _baseline(self, member: dict, data: _CycleRows) -> dict | None:
        first = outcomes.first_membership(self.db, member)
        return outcomes.pick_baseline(
            self._scores(member["participant_id"]),
            instrument=OUTCOME_INSTRUMENT,
            first_cycle_id=first["cycle_id"],
            pre_group=self._pre_group(first["cycle_id"], data),
            enrolled_on=first["enrolled_on"],
            grace_days=self.grace_days,
        )

    def _end(self, member: dict, cycle: dict, last: dict | None) -> dict | None:
        return outcomes.pick_last(
            self._scores(member["participant_id"]),
            instrument=OUTCOME_INSTRUMENT,
            cycle=cycle,
            last_session=last,
            grace_days=self.grace_days,
            today=self.today,
        )

    @cached_property
    def fidelity(self) -> list[dict]:
        where, params = self._cycle_filter()
        period, more = self._in_period("x.scheduled_date")
        found: dict[str, dict] = {}
        for r in self.db.query(
            "select x.id, x.cycle_id, c.code as cycle_code, si.code as site_code, x.number as session_number,"
            " x.scheduled_date as session_date, f.id as checklist_id, f.answers_json from sessions x"
            " join cycles c on c.id = x.cycle_id join sites si on si.id = c.site_id"
            " left join fidelity_checklists f on f.session_id = x.id"
            f" where x.status = 'held' and x.kind = 'group'{where}{period}"
            " order by x.scheduled_date, c.code",
            params + more,
        ):
            session_id, checklist_id, answers_json = r.pop("id"), r.pop("checklist_id"), r.pop("answers_json")
            here = found.setdefault(
                session_id, {**r, "checklists": 0, "items_done": 0, "items_answered": 0, "session_id": session_id}
            )
            if checklist_id is None:
                continue
            answers = [bool(v) for v in json.loads(answers_json or "{}").values() if v is not None]
            here["checklists"] += 1
            here["items_done"] += sum(answers)
            here["items_answered"] += len(answers)
        return list(found.values())

    # -- figures

    def rows_of(self, indicator_id: str, part: str | None = None) -> list[dict]:
        """Return the records behind one indicator (or one part of its breakdown)."""
        spec = SPEC_BY_ID.get(indicator_id)
        if spec is None:
            raise UnknownIndicator(indicator_id)
        found = self._rows(spec)
        if part is not None:
            predicate = _PART_FILTERS.get(spec.id)
            if predicate is None:
                raise UnknownIndicator(f"{indicator_id}.{part}")
            found = [r for r in found if predicate(r, part)]
        return found

    def _rows(self, spec: Spec) -> list[dict]:
        id_ = spec.id
        if id_ == "eligible":
            return [r for r in self.screening if r["eligible"]]
        if id_ == "referrals_overdue":
            return [r for r in self.open_referrals if r["overdue"]]
        if spec.family == "cycles":
            if id_ == "cycles_started":
                return [r for r in self.cycles if self._within(r["first_held_on"])]
            status = "closed" if id_ == "cycles_completed" else "closed_early"
            return [r for r in self.cycles if r["status"] == status and self._within(r["closed_on"])]
        if spec.family == "outcome":
            return self._outcome_rows(id_)
        return list(getattr(self, spec.family))

    def _outcome_rows(self, id_: str) -> list[dict]:
        if id_ in ("members_ended", "completion_rate", "dropout_rate"):
            return list(self.outcome)
        group, _, measure = id_.partition("_")
        cohort = [r for r in self.outcome if group == "everyone" or r["outcome"] == "completed"]
        if measure == "no_end_score":
            return [r for r in cohort if r["change"] is None]
        return [r for r in cohort if r["change"] is not None]

    def indicator(self, spec: Spec) -> Indicator:
        rows = self._rows(spec)
        base = {
            "id": spec.id,
            "section": spec.section,
            "label": spec.label,
            "definition": spec.definition,
            "kind": spec.kind,
            "filtered_by": spec.filtered_by,
        }
        if spec.kind == "count":
            parts = _reason_parts(_reason_counts(rows)) if spec.id == "referrals" else ()
            return Indicator(**base, value=len(rows), parts=parts)
        if spec.id == "attendance_rate":
            attended = sum(r["attended"] for r in rows)
            return Indicator(
                **base,
                value=_share(attended, len(rows)),
                numerator=attended,
                denominator=len(rows),
                parts=_session_parts(rows),
            )
        if spec.id in ("completion_rate", "dropout_rate"):
            if spec.id == "completion_rate":
                hits = [r for r in rows if r["outcome"] == "completed"]
                parts = ()
            else:
                hits = [r for r in rows if r["outcome"] in DROPPED]
                parts = _dropout_parts(hits, len(rows))
            return Indicator(
                **base, value=_share(len(hits), len(rows)), numerator=len(hits), denominator=len(rows), parts=parts
            )
        if spec.family == "outcome":
            measure = spec.id.split("_", 1)[1]
            if spec.kind == "mean":
                column = {"baseline_mean": "baseline", "end_mean": "end", "change_mean": "change"}[measure]
                return Indicator(**base, value=_mean([r[column] for r in rows]), denominator=len(rows))
            column = "improved_50" if measure == "response_rate" else "below_5"
            hits = sum(r[column] for r in rows)
            return Indicator(**base, value=_share(hits, len(rows)), numerator=hits, denominator=len(rows))
        if spec.id == "fidelity_checklist_rate":
            hits = sum(1 for r in rows if r["checklists"])
            return Indicator(**base, value=_share(hits, len(rows)), numerator=hits, denominator=len(rows))
        if spec.id == "fidelity_items_rate":
            done = sum(r["items_done"] for r in rows)
            answered = sum(r["items_answered"] for r in rows)
            return Indicator(**base, value=_share(done, answered), numerator=done, denominator=answered)
        raise AssertionError(f"no rule for {spec.id}")

    @cached_property
    def indicators(self) -> list[Indicator]:
        """Every indicator, in the order of SPECS, from the stored per-cycle figures (see report_store)."""
        if self.filters.cycle_ids is not None:
            return self.indicators_from_records()

        def compute() -> tuple[Indicator, ...]:
            self.refresh_store()
            found = self._stored_figures()
            return tuple(found[spec.id] for spec in SPECS)

        return list(self._remembered("indicators", compute))

    @cached_property
    def _version(self) -> tuple | None:
        """The key of this report's figures: database file, filters, day, rules and data version."""
        path = self.db.execute("pragma database_list").fetchone()[2]
        if not path:  # an in-memory database has no name to share figures under
            return None
        return (
            path,
            self.filters,
            self.today,
            report_store.fingerprint(self.protocols, self.grace_days),
            report_store.data_version(self.db),
        )

    def _remembered(self, name: str, compute):
        if self._version is None:
            return compute()
        return report_store.REMEMBERED.get((*self._version, name), compute)

    def indicators_from_records(self) -> list[Indicator]:
        """Every indicator counted from its records (slow on a big programme; tests check both agree)."""
        return [self.indicator(spec) for spec in SPECS]

    def refresh_store(self) -> int:
        """Recompute the stale cycles' stored figures, once per report (the page reads them thrice)."""
        if "_refreshed" not in self.__dict__:
            self.__dict__["_refreshed"] = report_store.refresh(
                self.db, self.protocols, today=self.today, grace_days=self.grace_days
            )
        return self.__dict__["_refreshed"]

    def _one(self, sql: str, params: list) -> tuple:
        return self.db.execute(sql, params).fetchone()

    def _screening_figures(self) -> tuple[int, int]:
        """Return people screened in the period and how many of them were eligible."""
        where, params = self._sites("s.site_id")
        period, more = self._in_period("s.administered_on")
        params += more
        by = ""
        if self.filters.facilitator_id:
            by = " and s.administered_by = ?"
            params.append(self.filters.facilitator_id)
        return tuple(
            self._one(
                "select count(*), coalesce(sum(e), 0) from (select max(coalesce(s.eligible, 0)) as e from screenings s"
                f" where s.occasion = 'screening'{where}{period}{by} group by s.participant_id)",
                params,
            )
        )

    @cached_property
    def _table_generations(self) -> dict[str, str]:
        """How often screenings and stored referral rows changed (triggers of migration 0011)."""
        return dict(self.db.execute("select key, value from report_meta where key like 'changes:%'").fetchall())

    def _unless_changed(self, table: str, compute):
        """Return ``compute()``, remembered for these filters and day until ``table`` changes."""
        if self._version is None:
            return compute()
        path, filters, today, _rules, data = self._version
        # The count of changes is read before the figures, so figures are never older than it.
        changes = self._table_generations.get(f"changes:{table}")
        return report_store.REMEMBERED.get((path, data[1:], filters, today, table, changes), compute)

    def _stored_figures(self) -> dict[str, Indicator]:
        found: dict[str, Indicator] = {}

        def put(
            id_: str,
            value: float | None,
            numerator: int | None = None,
            denominator: int | None = None,
            parts: tuple[Part, ...] = (),
        ) -> None:
            spec = SPEC_BY_ID[id_]
            found[id_] = Indicator(
                id=spec.id,
                section=spec.section,
                label=spec.label,
                definition=spec.definition,
                kind=spec.kind,
                filtered_by=spec.filtered_by,
                value=value,
                numerator=numerator,
                denominator=denominator,
                parts=parts,
            )

        # Screening and referrals: before any cycle, read as they are, each remembered until its
        # table changes (a session saved elsewhere does not recount them).
        screened, eligible = self._unless_changed("screenings", self._screening_figures)
        put("screened", screened)
        put("eligible", eligible)
        raised, reasons, still_open, overdue = self._unless_changed("referrals", self._referral_figures)
        put("referrals", raised, parts=_reason_parts(reasons))
        put("referrals_open", still_open)
        put("referrals_overdue", overdue)

        put("enrolled", sum(n for _day, n in self._enrolled_per_day))
        period, more = self._in_period("r.first_held_on")
        put(
            "cycles_started",
            sum(
                n
                for (n,) in self._summed(
                    "started",
                    "r",
                    0,
                    f"select count(*) from report_cycles r where r.first_held_on is not null{{where}}{period}",
                    more,
                )
            ),
        )
        period, more = self._in_period("r.closed_on")
        closed = dict(
            self._summed(
                "closed",
                "r",
                1,
                "select r.status, count(*) from report_cycles r"
                f" where r.status in ('closed', 'closed_early') and r.closed_on is not null{{where}}{period}"
                " group by r.status",
                more,
            )
        )
        put("cycles_completed", closed.get("closed", 0))
        put("cycles_closed_early", closed.get("closed_early", 0))

        period, more = self._in_period("a.session_date")
        by_number = sorted(
            self._summed(
                "attendance",
                "a",
                1,
                "select a.session_number, sum(a.attended), sum(a.marked) from report_attendance a"
                f" where 1 = 1{{where}}{period} group by a.session_number",
                more,
            )
        )
        attended, marked = sum(r[1] for r in by_number), sum(r[2] for r in by_number)
        put(
            "attendance_rate",
            _share(attended, marked),
            attended,
            marked,
            tuple(Part(str(n), N_("session %(number)s"), {"number": n}, _share(a, m), a, m) for n, a, m in by_number),
        )

        # Per outcome and last session attended: the members, and of those with both scores
        # their count and the sums the means and shares need.
        outcome_from, outcome_params = self._stored_outcomes()
        ended = self._summed(
            "outcomes",
            "o",
            2,
            "select o.outcome, o.last_session_attended, sum(o.members), sum(o.scored),"
            f" sum(o.baseline_sum), sum(o.end_sum), sum(o.change_sum), sum(o.improved), sum(o.below_5) {outcome_from}"
            " group by o.outcome, o.last_session_attended",
            outcome_params,
        )
        cohort = sum(r[2] for r in ended)
        completed = sum(r[2] for r in ended if r[0] == "completed")
        dropped: dict[int, int] = {}
        for r in ended:
            if r[0] in DROPPED:
                dropped[r[1]] = dropped.get(r[1], 0) + r[2]
        put("members_ended", cohort)
        put("completion_rate", _share(completed, cohort), completed, cohort)
        put(
            "dropout_rate",
            _share(sum(dropped.values()), cohort),
            sum(dropped.values()),
            cohort,
            tuple(
                Part(
                    str(n),
                    N_("attended no group session") if n == 0 else N_("after session %(number)s"),
                    {"number": n},
                    _share(count, cohort),
                    count,
                    cohort,
                )
                for n, count in sorted(dropped.items())
            ),
        )
        for group in ("completers", "everyone"):
            mine = [r for r in ended if group == "everyone" or r[0] == "completed"]
            n = sum(r[3] for r in mine)
            baseline, end, change, improved, below = (sum(r[i] or 0 for r in mine) for i in range(4, 9))
            put(f"{group}_scored", n)
            put(f"{group}_no_end_score", sum(r[2] for r in mine) - n)
            put(f"{group}_baseline_mean", baseline / n if n else None, denominator=n)
            put(f"{group}_end_mean", end / n if n else None, denominator=n)
            put(f"{group}_change_mean", change / n if n else None, denominator=n)
            put(f"{group}_response_rate", _share(improved, n), improved, n)
            put(f"{group}_remission_rate", _share(below, n), below, n)

        period, more = self._in_period("r.session_date")
        sessions, with_list, done, answered = (
            self._summed(
                "fidelity",
                "r",
                0,
                "select count(*), coalesce(sum(r.checklists > 0), 0), coalesce(sum(r.items_done), 0),"
                f" coalesce(sum(r.items_answered), 0) from report_fidelity r where 1 = 1{{where}}{period}",
                more,
            )
            or [(0, 0, 0, 0)]
        )[0]
        put("fidelity_checklist_rate", _share(with_list, sessions), with_list, sessions)
        put("fidelity_items_rate", _share(done, answered), done, answered)
        return found

    def _summed(self, name: str, alias: str, keys: int, sql: str, params: list) -> list[tuple]:
        """Return the rows of ``sql`` over stored rows: ``keys`` group columns, then counts and sums.

        ``sql`` has ``{where}`` where the cycle filter on ``alias`` goes (before ``params``);
        it is run grouped by site too (``_by_site``). Such rows add up across sites, and each
        site's rows are remembered until a refresh stores that site's figures again
        (``report_sites.generation``): after a change to one cycle, the next view reads that
        site's rows again, not the whole programme's (45 ms at 100,000 participants). Not with
        a facilitator filter (a new assignment changes no stored row) or named cycles.
        """
        f = self.filters
        sql = _by_site(sql, alias)
        if self._version is None or f.facilitator_id or f.cycle_ids is not None or not f.site_ids:
            where, more = self._stored_filter(alias)
            return _combine((row[1:] for row in self.db.execute(sql.format(where=where), more + params)), keys)
        generations = self._site_generations
        path, _filters, today, rules, data = self._version
        # Not the whole data version: its change log number moves with every record saved.
        shared = (path, today, rules, data[1:], f.period, f.protocol_id, f.group_type, name, sql, tuple(params))
        # {site: (generation, rows)} for this query and these filters, shared by every report
        # asking it. Two threads may count the same site at once: both are right.
        by_site: dict[str, tuple[int, tuple]] = report_store.SITE_SUMS.get(shared, dict)
        missing = [s for s in f.site_ids if by_site.get(s, (None,))[0] != generations.get(s, 0)]
        if missing:  # one read for all of them (indexes by site and day: migration 0011)
            found: dict[str, list] = {s: [] for s in missing}
            where, more = self._cycle_filter(alias, "cycle_id", site_ids=missing)
            for row in self.db.execute(sql.format(where=where), more + params):
                found[row[0]].append(row[1:])
            for site_id in missing:
                by_site[site_id] = (generations.get(site_id, 0), tuple(found[site_id]))
        return _combine((row for site_id in f.site_ids for row in by_site[site_id][1]), keys)

    @cached_property
    def _site_generations(self) -> dict[str, int]:
        """Each site's count of refreshes that stored its figures (read after the refresh, before the rows)."""
        return dict(self.db.execute("select site_id, generation from report_sites").fetchall())

    def _stored_filter(self, alias: str) -> tuple[str, list]:
        return self._cycle_filter(alias, "cycle_id")

    def _stored_outcomes(self) -> tuple[str, list]:
        """Return the FROM ... WHERE of the stored outcome rows of the cycles closed in the period.

        ``{where}`` stands for the cycle filter (see ``_summed``).
        """
        period, more = self._in_period("o.closed_on")
        return f"from report_outcomes o where 1 = 1{{where}}{period}", more

    @cached_property
    def _enrolled_per_day(self) -> tuple[tuple[date, int], ...]:
        """Return (day, members enrolled that day, transfers not counted) for the enrolment figure and chart."""

        def compute() -> tuple[tuple[date, int], ...]:
            self.refresh_store()
            period, more = self._in_period("e.enrolled_on")
            return tuple(
                (date.fromisoformat(day), n)
                for day, n in sorted(
                    self._summed(
                        "enrolment",
                        "e",
                        1,
                        f"select e.enrolled_on, sum(e.members) from report_enrolment e where 1 = 1{{where}}{period}"
                        " group by e.enrolled_on",
                        more,
                    )
                )
            )

        return self._remembered("enrolled_per_day", compute)

    # -- chart series

    def enrolment_series(self) -> list[tuple[str, int]]:
        """Return (bucket label, people enrolled): ISO weeks for up to 13 weeks, else months."""
        per_day = self._enrolled_per_day
        if self.filters.period is not None:
            start, end = self.filters.period.start, self.filters.period.end
        elif per_day:
            start, end = min(d for d, _n in per_day), max(d for d, _n in per_day)
        else:
            return []
        weekly = (end - start).days <= 92
        counts: dict[str, int] = {}
        day = start
        while day <= end:  # every bucket of the span, empty ones too
            counts.setdefault(_bucket(day, weekly), 0)
            day += timedelta(days=1 if weekly else 28)
        counts.setdefault(_bucket(end, weekly), 0)
        for d, n in per_day:
            counts[_bucket(d, weekly)] = counts.get(_bucket(d, weekly), 0) + n
        return sorted(counts.items())

    def score_change_by_cycle(self, group: str = "everyone") -> list[dict]:
        """Return per closed cycle: members with both scores, mean baseline and mean end score."""
        return [
            {"cycle_code": code, "members": n, "baseline": baseline / n, "end": end / n}
            for code, _site, n, baseline, end in self._score_sums(group)
        ]

    def score_change_by_site(self, group: str = "everyone") -> list[dict]:
        """Return the same per site (a national view has hundreds of cycles)."""
        sums: dict[str, list] = {}
        for _code, site, n, baseline, end in self._score_sums(group):
            found = sums.setdefault(site, [0, 0.0, 0.0])
            found[0] += n
            found[1] += baseline
            found[2] += end
        return [
            {"site_code": site, "members": n, "baseline": baseline / n, "end": end / n}
            for site, (n, baseline, end) in sorted(sums.items())
        ]

    def _score_sums(self, group: str) -> tuple[tuple, ...]:
        """Return (cycle code, site code, members with both scores, sum of baselines, sum of end scores)."""

        def compute() -> tuple[tuple, ...]:
            self.refresh_store()
            outcome_from, params = self._stored_outcomes()
            only = " and o.outcome = 'completed'" if group == "completers" else ""
            return tuple(
                sorted(
                    self._summed(
                        f"score_sums:{group}",
                        "o",
                        2,
                        "select o.cycle_code, (select code from sites where id = o.site_id),"
                        f" sum(o.scored), sum(o.baseline_sum), sum(o.end_sum) {outcome_from}{only} and o.scored > 0"
                        " group by o.cycle_id",
                        params,
                    )
                )
            )

        return self._remembered(f"score_sums:{group}", compute)


DROPPED = ("dropped_out", "withdrawn", "dropping_out")


def _by_site(sql: str, alias: str) -> str:
    """Return ``sql`` (a select, grouped or not) with ``alias.site_id`` as first column and group."""
    assert sql.startswith("select ") and sql.count(" group by ") <= 1, sql
    sql = f"select {alias}.site_id, {sql[len('select ') :]}"
    if " group by " in sql:
        return sql.replace(" group by ", f" group by {alias}.site_id, ")
    return f"{sql} group by {alias}.site_id"


def _combine(rows, keys: int) -> list[tuple]:
    """Add up rows that share their first ``keys`` columns (counts and sums; NULL counts as 0)."""
    combined: dict[tuple, list] = {}
    for row in rows:
        key = tuple(row[:keys])
        found = combined.get(key)
        if found is None:
            combined[key] = [value or 0 for value in row[keys:]]
        else:
            for i, value in enumerate(row[keys:]):
                if value:
                    found[i] += value
    return [(*key, *sums) for key, sums in combined.items()]


def _bucket(day: date, weekly: bool) -> str:
    if weekly:
        year, week, _ = day.isocalendar()
        return f"{year}W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def _reason_keys(triggers: list[dict]) -> list[str]:
    keys = []
    for t in triggers:
        kind = t.get("kind")
        key = {"risk_item": "risk_answer", "risk_observed": "risk_observed", "session_risk": "risk_observed"}.get(kind)
        if kind == "exclusion":
            key = f"exclusion_{re.sub(r'[^a-z0-9_]', '_', str(t.get('code', '')).lower())}"
        keys.append(key or "other")
    return list(dict.fromkeys(keys)) or ["other"]


REASON_LABELS = {
    "risk_answer": N_("risk answer on a questionnaire"),
    "risk_observed": N_("risk observed by the facilitator"),
    "other": N_("other reason"),
}


def _reason_parts(counts: dict[str, int]) -> tuple[Part, ...]:
    parts = []
    for key, n in sorted(counts.items()):
        if key.startswith("exclusion_"):
            parts.append(Part(key, N_("exclusion at intake: %(exclusion)s"), {"exclusion": key[10:]}, n))
        else:
            parts.append(Part(key, REASON_LABELS.get(key, REASON_LABELS["other"]), {}, n))
    return tuple(parts)


def _reason_counts(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        for key in r["reasons"].split():
            counts[key] = counts.get(key, 0) + 1
    return counts


def _session_parts(rows: list[dict]) -> tuple[Part, ...]:
    numbers = sorted({r["session_number"] for r in rows})
    parts = []
    for n in numbers:
        here = [r for r in rows if r["session_number"] == n]
        attended = sum(r["attended"] for r in here)
        parts.append(
            Part(str(n), N_("session %(number)s"), {"number": n}, _share(attended, len(here)), attended, len(here))
        )
    return tuple(parts)


def _dropout_parts(dropped: list[dict], cohort: int) -> tuple[Part, ...]:
    numbers = sorted({r["last_session_attended"] for r in dropped})
    parts = []
    for n in numbers:
        count = sum(1 for r in dropped if r["last_session_attended"] == n)
        label = N_("attended no group session") if n == 0 else N_("after session %(number)s")
        parts.append(Part(str(n), label, {"number": n}, _share(count, cohort), count, cohort))
    return tuple(parts)


_ZERO_WHEN_EMPTY = frozenset({"referrals", "dropout_rate"})
_PART_FILTERS = {
    "referrals": lambda r, key: key in r["reasons"].split(),
    "attendance_rate": lambda r, key: str(r["session_number"]) == key,
    "dropout_rate": lambda r, key: r["outcome"] in DROPPED and str(r["last_session_attended"]) == key,
}


# --- the public functions -----------------------------------------------------------------


def compute(
    db: sqlite_utils.Database, filters: Filters, protocols: dict[str, Protocol], *, today: date, grace_days: int = 14
) -> list[Indicator]:
    """Return every indicator for ``filters``, in the order of ``SPECS``."""
    return Report(db, filters, protocols, today=today, grace_days=grace_days).indicators


def records(
    db: sqlite_utils.Database,
    indicator_id: str,
    filters: Filters,
    protocols: dict[str, Protocol] | None = None,
    *,
    today: date,
    part: str | None = None,
    grace_days: int = 14,
) -> Records:
    """Return the records behind an indicator (or one part of it); UnknownIndicator for a wrong id."""
    spec = SPEC_BY_ID.get(indicator_id)
    if spec is None:
        raise UnknownIndicator(indicator_id)
    report = Report(db, filters, protocols or {}, today=today, grace_days=grace_days)
    return Records(COLUMNS[spec.family], report.rows_of(indicator_id, part))


def split_id(full_id: str) -> tuple[str, str | None]:
    """Split ``referrals.risk_answer`` into the indicator id and the part key."""
    indicator_id, _, part = full_id.partition(".")
    return indicator_id, part or None


def value_of(indicators: list[Indicator], full_id: str, field_name: str = "value") -> float | None:
    """Return one figure: ``completion_rate``, ``referrals.risk_answer``; ``field_name`` value/numerator/denominator."""
    indicator_id, part = split_id(full_id)
    found = next((i for i in indicators if i.id == indicator_id), None)
    if found is None:
        raise UnknownIndicator(indicator_id)
    source: Indicator | Part = found
    if part is not None:
        try:
            source = found.part(part)
        except UnknownIndicator:
            # Nothing in this part this period (no dropout after session 3): zero, except a rate with
            # no denominator (no attendance marked at session 3), which has no value.
            if field_name == "denominator":
                return found.denominator
            if found.id not in _ZERO_WHEN_EMPTY:
                return None
            return 0 if found.kind == "count" or field_name == "numerator" else (0.0 if found.denominator else None)
    return getattr(source, field_name)

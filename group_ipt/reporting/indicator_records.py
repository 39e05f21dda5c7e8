"""The records behind each programme indicator, read from the database for a set of filters.

Every figure is counted from a list of records, and the same list is what the
records page and CSV show, so a number and the list behind it always agree. What
the figures mean is in :mod:`group_ipt.reporting.indicator_definitions`; the stored per-cycle
figures (:mod:`group_ipt.reporting.report_store`) are computed from these records too.

- Completion and dropout use the cycle's own rule: the member statuses set when
  the cycle closed by ``Protocol.is_completed`` (``followup.member_summaries``).
  The cohort is the members of the cycles closed in the period; a member who
  was transferred out is counted once, in the cycle they moved to.
- Symptom scores (PHQ-9): baseline, end (last) score, response and remission are
  the one rule of :mod:`group_ipt.core.outcomes`, which the printed cycle report uses
  too. Means and shares are over members with both scores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import sqlite_utils

from ..core import cycles as cycles_module
from ..core import followup, outcomes
from ..formfiles.protocols import Protocol
from ..store.db import marks
from .indicator_definitions import (
    PART_FILTERS,
    SPEC_BY_ID,
    SPECS,
    Filters,
    Indicator,
    Row,
    Spec,
    UnknownIndicator,
    counted,
    reason_keys,
)

OUTCOME_INSTRUMENT = outcomes.OUTCOME_INSTRUMENT  # also named in the triggers of schema/m0007_report_store.py
RAISED_ON = "coalesce(s.administered_on, substr(r.created_at, 1, 10))"  # a referral's date
OPEN_STATUSES = ("open", "referred", "followed_up")  # every status but closed (schema's check)
NEXT_DUE = "(select min(f.due_on) from referral_followups f where f.referral_id = r.id and f.done_on is null)"


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
            f" where cycle_id in ({marks(cycle_ids)})) and instrument_id = ? and total is not null"
            " order by administered_on, created_at",
            [*cycle_ids, OUTCOME_INSTRUMENT],
        ):
            scores.setdefault(r["participant_id"], []).append(r)
        return cls(cycles_module.sessions_of(db, cycle_ids), members, followup.member_records_of(db, cycle_ids), scores)


class RecordReader:
    """The records behind the indicators for one set of filters, each family read once."""

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
        return f" and {column} in ({marks(site_ids)})", list(site_ids)

    def _cycle_filter(
        self, alias: str = "c", id_column: str = "id", site_ids: Sequence[str] | None = None
    ) -> tuple[str, list]:
        """Return the filters on a cycle's site, protocol, group type, facilitator (and cycle ids).

        ``alias`` is a ``cycles`` row (``id_column`` "id"), or a stored ``report_*`` row, which
        carries its cycle's site, protocol and group type (``id_column`` "cycle_id").
        ``site_ids`` replaces the filters' sites (one site at a time, see ``indicators.Report._summed``).
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
            sql += f" and {alias}.{id_column} in ({marks(f.cycle_ids)})"
            params += f.cycle_ids
        return sql, params

    # -- families: each returns its records; the figures are counted from them

    @cached_property
    def screening(self) -> list[Row]:
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
            period += f" and r.status in ({marks(OPEN_STATUSES)})"  # not "!= 'closed'": the index is used
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

    def _referral_rows(self, *, open_only: bool) -> list[Row]:
        sql, params = self._referral_query(
            f"p.code as participant_code, p.name, si.code as site_code, {RAISED_ON} as raised_on, r.urgency,"
            f" r.status, r.triggers_json, {NEXT_DUE} as next_due_on",
            open_only=open_only,
        )
        found = []
        for r in self.db.query(sql + " order by raised_on, p.code", params):
            r["reasons"] = " ".join(reason_keys(json.loads(r.pop("triggers_json") or "[]")))
            r["overdue"] = int(r["next_due_on"] is not None and r["next_due_on"] < self.today.isoformat())
            found.append(r)
        return found

    @cached_property
    def referrals(self) -> list[Row]:
        return self._referral_rows(open_only=False)

    @cached_property
    def open_referrals(self) -> list[Row]:
        return self._referral_rows(open_only=True)

    @cached_property
    def enrolment(self) -> list[Row]:
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
    def cycles(self) -> list[Row]:
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
    def attendance(self) -> list[Row]:
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
    def outcome(self) -> list[Row]:
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

    def _cycle_outcome(self, cycle: dict, data: _CycleRows) -> list[Row]:
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
                row["improved_50"] = int(scores.responded is True)  # a bool: both scores are known
                row["below_5"] = int(scores.remitted is True)
            rows.append(row)
        return rows

    @cached_property
    def _scores_cache(self) -> dict[str, list[dict]]:
        return {}

    def _scores(self, participant_id: str) -> list[Row]:
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
    def fidelity(self) -> list[Row]:
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

    # -- the records behind one indicator

    def rows_of(self, indicator_id: str, part: str | None = None) -> list[Row]:
        """Return the records behind one indicator (or one part of its breakdown)."""
        spec = SPEC_BY_ID.get(indicator_id)
        if spec is None:
            raise UnknownIndicator(indicator_id)
        found = self._rows(spec)
        if part is not None:
            predicate = PART_FILTERS.get(spec.id)
            if predicate is None:
                raise UnknownIndicator(f"{indicator_id}.{part}")
            found = [r for r in found if predicate(r, part)]
        return found

    def _rows(self, spec: Spec) -> list[Row]:
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

    def _outcome_rows(self, id_: str) -> list[Row]:
        if id_ in ("members_ended", "completion_rate", "dropout_rate"):
            return list(self.outcome)
        group, _, measure = id_.partition("_")
        cohort = [r for r in self.outcome if group == "everyone" or r["outcome"] == "completed"]
        if measure == "no_end_score":
            return [r for r in cohort if r["change"] is None]
        return [r for r in cohort if r["change"] is not None]

    def indicator(self, spec: Spec) -> Indicator:
        """Return one indicator counted from its records."""
        return counted(spec, self._rows(spec))

    def indicators_from_records(self) -> list[Indicator]:
        """Every indicator counted from its records (slow on a big programme; tests check both agree)."""
        return [self.indicator(spec) for spec in SPECS]

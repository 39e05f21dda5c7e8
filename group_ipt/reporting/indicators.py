"""Programme indicators for a period: what a ministry and a funder ask for, with the records behind each.

Plain functions on the database and the loaded protocols (no Flask). The house of
the reports, bottom up:

- :mod:`group_ipt.reporting.indicator_definitions`: what each indicator means (``SPECS``), and
  the pure rules that turn records or sums into figures;
- :mod:`group_ipt.reporting.indicator_records`: the records behind each indicator, read for a
  set of filters;
- :mod:`group_ipt.reporting.report_store`: those records summed per cycle and stored, kept
  fresh as records change;
- this module: a :class:`Report` adds up the stored rows of the cycles matching the
  filters over the period, and remembers the figures until the data changes.

A figure and the records listed behind it come from the same rules; a test checks
they agree. Periods follow DHIS2's period ids: ``2026`` (year), ``2026Q4``
(quarter), ``202611`` (month), ``2026W47`` (ISO week); a range
``2026-01-01..2026-03-31`` is allowed on screen and in CSV (DHIS2 needs one of the
ids above). The rules are also written in docs/reports.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from functools import cached_property
from typing import TypeVar

import sqlite_utils

from ..formfiles.protocols import Protocol
from . import report_store
from .indicator_definitions import (
    ALL_FILTERS,
    COLUMNS,
    DROPPED,
    FACILITATOR,
    GROUP_TYPE,
    INDICATOR_IDS,
    PERSON_FILTERS,
    PERSONAL_COLUMNS,
    PROTOCOL,
    REASON_LABELS,
    SITE,
    SPEC_BY_ID,
    SPECS,
    Filters,
    Indicator,
    Part,
    Records,
    Spec,
    UnknownIndicator,
    attendance_figure,
    figure,
    outcome_figures,
    reason_keys,
    reason_parts,
    share,
    split_id,
    value_of,
)
from .indicator_records import NEXT_DUE, OPEN_STATUSES, OUTCOME_INSTRUMENT, RAISED_ON, RecordReader

__all__ = [  # the names callers read from here (defined in the modules below this one)
    "ALL_FILTERS",
    "COLUMNS",
    "DROPPED",
    "FACILITATOR",
    "GROUP_TYPE",
    "INDICATOR_IDS",
    "NEXT_DUE",
    "OPEN_STATUSES",
    "OUTCOME_INSTRUMENT",
    "PERSON_FILTERS",
    "PERSONAL_COLUMNS",
    "PROTOCOL",
    "RAISED_ON",
    "REASON_LABELS",
    "SITE",
    "SPEC_BY_ID",
    "SPECS",
    "Filters",
    "Indicator",
    "Part",
    "Records",
    "Report",
    "Spec",
    "UnknownIndicator",
    "compute",
    "records",
    "split_id",
    "value_of",
]

T = TypeVar("T")


class Report(RecordReader):
    """All indicators of one set of filters, from the stored per-cycle figures, remembered until the data changes.

    The records behind each figure are :class:`RecordReader`'s (``rows_of``).
    """

    # -- the figures

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

    def _remembered(self, name: str, compute: Callable[[], T]) -> T:
        if self._version is None:
            return compute()
        return report_store.REMEMBERED.get((*self._version, name), compute)

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

    def _unless_changed(self, table: str, compute: Callable[[], T]) -> T:
        """Return ``compute()``, remembered for these filters and day until ``table`` changes."""
        if self._version is None:
            return compute()
        path, filters, today, _rules, data = self._version
        # The count of changes is read before the figures, so figures are never older than it.
        changes = self._table_generations.get(f"changes:{table}")
        return report_store.REMEMBERED.get((path, data[1:], filters, today, table, changes), compute)

    def _stored_figures(self) -> dict[str, Indicator]:
        """Return every indicator by id, counted from the stored rows (screening and referrals: as they are)."""
        found = [
            *self._person_figures(),
            *self._cycle_figures(),
            self._attendance_figure(),
            *outcome_figures(self._ended()),
            *self._fidelity_figures(),
        ]
        return {i.id: i for i in found}

    def _person_figures(self) -> list[Indicator]:
        """Return the screening and referral figures.

        Screening and referrals happen before any cycle: read as they are, each remembered
        until its table changes (a session saved elsewhere does not recount them).
        """
        screened, eligible = self._unless_changed("screenings", self._screening_figures)
        raised, reasons, still_open, overdue = self._unless_changed("referrals", self._referral_figures)
        return [
            figure("screened", screened),
            figure("eligible", eligible),
            figure("referrals", raised, parts=reason_parts(reasons)),
            figure("referrals_open", still_open),
            figure("referrals_overdue", overdue),
        ]

    def _cycle_figures(self) -> list[Indicator]:
        """Return the members enrolled and the cycles started, completed and closed early."""
        enrolled = sum(n for _day, n in self._enrolled_per_day)
        period, more = self._in_period("r.first_held_on")
        started = self._summed(
            "started",
            "r",
            0,
            f"select count(*) from report_cycles r where r.first_held_on is not null{{where}}{period}",
            more,
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
        return [
            figure("enrolled", enrolled),
            figure("cycles_started", sum(n for (n,) in started)),
            figure("cycles_completed", closed.get("closed", 0)),
            figure("cycles_closed_early", closed.get("closed_early", 0)),
        ]

    def _attendance_figure(self) -> Indicator:
        period, more = self._in_period("a.session_date")
        return attendance_figure(
            self._summed(
                "attendance",
                "a",
                1,
                "select a.session_number, sum(a.attended), sum(a.marked) from report_attendance a"
                f" where 1 = 1{{where}}{period} group by a.session_number",
                more,
            )
        )

    def _ended(self) -> list[tuple]:
        """Return per outcome and last session attended: the members, and of those with both scores
        their count and the sums the means and shares need (see ``outcome_figures``)."""
        outcome_from, outcome_params = self._stored_outcomes()
        return self._summed(
            "outcomes",
            "o",
            2,
            "select o.outcome, o.last_session_attended, sum(o.members), sum(o.scored),"
            f" sum(o.baseline_sum), sum(o.end_sum), sum(o.change_sum), sum(o.improved), sum(o.below_5) {outcome_from}"
            " group by o.outcome, o.last_session_attended",
            outcome_params,
        )

    def _fidelity_figures(self) -> list[Indicator]:
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
        return [
            figure("fidelity_checklist_rate", share(with_list, sessions), with_list, sessions),
            figure("fidelity_items_rate", share(done, answered), done, answered),
        ]

    def _referral_figures(self) -> tuple[int, dict[str, int], int, int]:
        """Return referrals raised, per reason, open and overdue, from the stored rows (migration 0010)."""
        where, params = self._sites("d.site_id")
        by = ""
        if self.filters.facilitator_id:
            by = " and d.created_by = ?"
            params.append(self.filters.facilitator_id)
        period, more = self._in_period("d.raised_on")
        raised = 0
        reasons: dict[str, int] = {}
        for triggers, n in self.db.execute(
            f"select d.triggers_json, count(*) from report_referrals d indexed by report_referrals_by_day"
            f" where 1 = 1{period}{where}{by} group by 1",
            more + params,
        ):
            raised += n
            for key in reason_keys(json.loads(triggers or "[]")):
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


def _by_site(sql: str, alias: str) -> str:
    """Return ``sql`` (a select, grouped or not) with ``alias.site_id`` as first column and group."""
    assert sql.startswith("select ") and sql.count(" group by ") <= 1, sql
    sql = f"select {alias}.site_id, {sql[len('select ') :]}"
    if " group by " in sql:
        return sql.replace(" group by ", f" group by {alias}.site_id, ")
    return f"{sql} group by {alias}.site_id"


def _combine(rows: Iterable[Sequence], keys: int) -> list[tuple]:
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

"""What each programme indicator means: its label, definition, kind and the rule that counts it.

Plain data and pure functions, no database: ``SPECS`` lists the indicators in page
order, ``COLUMNS`` the columns of each family of records behind them, and the
functions below turn records (or the stored per-cycle sums) into figures. Which
records there are is read by :mod:`group_ipt.reporting.indicator_records`; the figures of a
report are put together by :mod:`group_ipt.reporting.indicators`. Labels and definitions are
English msgids (the web page translates them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..base.errors import N_
from .periods import Period

SITE, FACILITATOR, PROTOCOL, GROUP_TYPE = "site", "facilitator", "protocol", "group_type"
ALL_FILTERS = (SITE, FACILITATOR, PROTOCOL, GROUP_TYPE)
PERSON_FILTERS = (SITE, FACILITATOR)  # screening and referrals happen before any cycle


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
# The PHQ-9 figures, once over the members who completed and once over everyone at the end
# of a cycle: (measure, kind, label for completers, label for everyone, definition for
# completers, definition for everyone).
_SCORE_SPECS = (
    (
        "scored",
        "count",
        N_("Completers with a baseline and an end score"),
        N_("Members with a baseline and an end score"),
        N_("Members who completed, in cycles closed in the period, with both a baseline and an end score."),
        N_("Members of the cycles closed in the period, completed or not, with both a baseline and an end score."),
    ),
    (
        "no_end_score",
        "count",
        N_("Completers with no end score"),
        N_("Members with no end score"),
        N_(
            "Members who completed, in cycles closed in the period, without an end score (or without a "
            "baseline): left out of the figures below."
        ),
        N_(
            "Members of the cycles closed in the period without an end score (or without a baseline): left "
            "out of the figures below."
        ),
    ),
    (
        "baseline_mean",
        "mean",
        N_("Mean baseline score, completers"),
        N_("Mean baseline score, everyone enrolled"),
        N_("Mean PHQ-9 at the pre-group session (or the latest before enrolment), of members with both scores."),
        None,  # the same for both
    ),
    (
        "end_mean",
        "mean",
        N_("Mean end score, completers"),
        N_("Mean end score, everyone enrolled"),
        N_("Mean PHQ-9 at the last group session, of members with both scores."),
        None,
    ),
    (
        "change_mean",
        "mean",
        N_("Mean change, completers"),
        N_("Mean change, everyone enrolled"),
        N_("Mean of end minus baseline score (negative: fewer symptoms), of members with both scores."),
        None,
    ),
    (
        "response_rate",
        "share",
        N_("Score at least halved, completers"),
        N_("Score at least halved, everyone enrolled"),
        N_("Share of members with both scores whose end score is at most half their baseline."),
        None,
    ),
    (
        "remission_rate",
        "share",
        N_("Below 5 at the end, completers"),
        N_("Below 5 at the end, everyone enrolled"),
        N_("Share of members with both scores whose end score is below 5 (minimal symptoms)."),
        None,
    ),
)
SPECS += tuple(
    Spec(
        f"{group}_{measure}",
        S_OUTCOME,
        completers_label if group == "completers" else everyone_label,
        completers_definition if group == "completers" or everyone_definition is None else everyone_definition,
        kind,
        "outcome",
    )
    for group in ("completers", "everyone")
    for measure, kind, completers_label, everyone_label, completers_definition, everyone_definition in _SCORE_SPECS
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


Row = dict[str, Any]  # one record behind a figure (the columns of its family, and ids)
DROPPED = ("dropped_out", "withdrawn", "dropping_out")


# --- the rules: records (or stored sums) to figures ---------------------------------------


def share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def figure(
    indicator_id: str,
    value: float | None,
    numerator: int | None = None,
    denominator: int | None = None,
    parts: tuple[Part, ...] = (),
) -> Indicator:
    """Return the indicator ``indicator_id`` with these figures (its words come from its ``Spec``)."""
    spec = SPEC_BY_ID[indicator_id]
    return Indicator(
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


def reason_keys(triggers: list[dict[str, Any]]) -> list[str]:
    """Return the reasons a referral was raised for, from its triggers (``other`` when none is known)."""
    keys = []
    for t in triggers:
        kind = str(t.get("kind", ""))
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


def reason_parts(counts: dict[str, int]) -> tuple[Part, ...]:
    parts = []
    for key, n in sorted(counts.items()):
        if key.startswith("exclusion_"):
            parts.append(Part(key, N_("exclusion at intake: %(exclusion)s"), {"exclusion": key[10:]}, n))
        else:
            parts.append(Part(key, REASON_LABELS.get(key, REASON_LABELS["other"]), {}, n))
    return tuple(parts)


def reason_counts(rows: list[Row]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        for key in r["reasons"].split():
            counts[key] = counts.get(key, 0) + 1
    return counts


def session_part(number: int, attended: int, marked: int) -> Part:
    """Return the attendance at one group session number."""
    return Part(str(number), N_("session %(number)s"), {"number": number}, share(attended, marked), attended, marked)


def dropout_part(number: int, dropped: int, cohort: int) -> Part:
    """Return the members who dropped out after group session ``number`` (0: before any)."""
    label = N_("attended no group session") if number == 0 else N_("after session %(number)s")
    return Part(str(number), label, {"number": number}, share(dropped, cohort), dropped, cohort)


def session_parts(rows: list[Row]) -> tuple[Part, ...]:
    parts = []
    for n in sorted({r["session_number"] for r in rows}):
        here = [r for r in rows if r["session_number"] == n]
        parts.append(session_part(n, sum(r["attended"] for r in here), len(here)))
    return tuple(parts)


def dropout_parts(dropped: list[Row], cohort: int) -> tuple[Part, ...]:
    numbers = sorted({r["last_session_attended"] for r in dropped})
    return tuple(dropout_part(n, sum(1 for r in dropped if r["last_session_attended"] == n), cohort) for n in numbers)


ZERO_WHEN_EMPTY = frozenset({"referrals", "dropout_rate"})
# Which records of an indicator belong to one part of its breakdown.
PART_FILTERS: dict[str, Callable[[Row, str], bool]] = {
    "referrals": lambda r, key: key in r["reasons"].split(),
    "attendance_rate": lambda r, key: str(r["session_number"]) == key,
    "dropout_rate": lambda r, key: r["outcome"] in DROPPED and str(r["last_session_attended"]) == key,
}


def counted(spec: Spec, rows: list[Row]) -> Indicator:
    """Return the indicator ``spec`` counted from the records behind it."""
    if spec.kind == "count":
        return figure(spec.id, len(rows), parts=reason_parts(reason_counts(rows)) if spec.id == "referrals" else ())
    if spec.id == "attendance_rate":
        attended = sum(r["attended"] for r in rows)
        return figure(spec.id, share(attended, len(rows)), attended, len(rows), session_parts(rows))
    if spec.id == "completion_rate":
        completed = sum(1 for r in rows if r["outcome"] == "completed")
        return figure(spec.id, share(completed, len(rows)), completed, len(rows))
    if spec.id == "dropout_rate":
        dropped = [r for r in rows if r["outcome"] in DROPPED]
        return figure(
            spec.id, share(len(dropped), len(rows)), len(dropped), len(rows), dropout_parts(dropped, len(rows))
        )
    if spec.family == "outcome":
        return _counted_scores(spec, rows)
    if spec.id == "fidelity_checklist_rate":
        with_list = sum(1 for r in rows if r["checklists"])
        return figure(spec.id, share(with_list, len(rows)), with_list, len(rows))
    if spec.id == "fidelity_items_rate":
        done = sum(r["items_done"] for r in rows)
        answered = sum(r["items_answered"] for r in rows)
        return figure(spec.id, share(done, answered), done, answered)
    raise AssertionError(f"no rule for {spec.id}")


def _counted_scores(spec: Spec, rows: list[Row]) -> Indicator:
    """Return a PHQ-9 mean or share, over ``rows``: the members with both scores."""
    measure = spec.id.split("_", 1)[1]
    if spec.kind == "mean":
        column = {"baseline_mean": "baseline", "end_mean": "end", "change_mean": "change"}[measure]
        return figure(spec.id, mean([r[column] for r in rows]), denominator=len(rows))
    column = "improved_50" if measure == "response_rate" else "below_5"
    hits = sum(r[column] for r in rows)
    return figure(spec.id, share(hits, len(rows)), hits, len(rows))


def attendance_figure(by_number: Iterable[tuple[int, int, int]]) -> Indicator:
    """Return the attendance rate from (session number, attended, marked), in session order."""
    by_number = sorted(by_number)
    attended, marked = sum(r[1] for r in by_number), sum(r[2] for r in by_number)
    parts = tuple(session_part(n, a, m) for n, a, m in by_number)
    return figure("attendance_rate", share(attended, marked), attended, marked, parts)


def outcome_figures(ended: list[tuple]) -> list[Indicator]:
    """Return the end-of-cycle figures from stored sums, one row per outcome and last session attended.

    A row: outcome, last group session attended, members, members with both scores, and
    the sums of their baseline, end score, change, improved by half, below 5.
    """
    cohort = sum(r[2] for r in ended)
    completed = sum(r[2] for r in ended if r[0] == "completed")
    dropped: dict[int, int] = {}
    for r in ended:
        if r[0] in DROPPED:
            dropped[r[1]] = dropped.get(r[1], 0) + r[2]
    left = sum(dropped.values())
    found = [
        figure("members_ended", cohort),
        figure("completion_rate", share(completed, cohort), completed, cohort),
        figure(
            "dropout_rate",
            share(left, cohort),
            left,
            cohort,
            tuple(dropout_part(n, count, cohort) for n, count in sorted(dropped.items())),
        ),
    ]
    for group in ("completers", "everyone"):
        found += _score_figures(group, [r for r in ended if group == "everyone" or r[0] == "completed"])
    return found


def _score_figures(group: str, ended: list[tuple]) -> list[Indicator]:
    """Return the PHQ-9 figures of ``group`` (completers, everyone) from its rows of stored sums."""
    n = sum(r[3] for r in ended)
    baseline, end, change, improved, below = (sum(r[i] or 0 for r in ended) for i in range(4, 9))
    return [
        figure(f"{group}_scored", n),
        figure(f"{group}_no_end_score", sum(r[2] for r in ended) - n),
        figure(f"{group}_baseline_mean", baseline / n if n else None, denominator=n),
        figure(f"{group}_end_mean", end / n if n else None, denominator=n),
        figure(f"{group}_change_mean", change / n if n else None, denominator=n),
        figure(f"{group}_response_rate", share(improved, n), improved, n),
        figure(f"{group}_remission_rate", share(below, n), below, n),
    ]


# --- reading one figure -------------------------------------------------------------------


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
            if found.id not in ZERO_WHEN_EMPTY:
                return None
            return 0 if found.kind == "count" or field_name == "numerator" else (0.0 if found.denominator else None)
    value: float | None = getattr(source, field_name)
    return value

"""Indicators on a hand-built programme (tests/report_data.py) with answers worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from group_ipt.core import users
from group_ipt.reporting import indicators
from group_ipt.reporting.periods import Period, PeriodError, parse_period

from .report_data import build

TODAY = date(2026, 4, 20)
HALF = "2026-01-01..2026-06-30"


@pytest.fixture
def programme(db, protocols):
    return build(db, protocols)


def site_ids(db, *codes):
    return tuple(users.get_site(db, c)["id"] for c in codes)


def figures(db, protocols, period=HALF, sites=("KMP",), **filters):
    f = indicators.Filters(site_ids=site_ids(db, *sites), period=parse_period(period) if period else None, **filters)
    return {i.id: i for i in indicators.compute(db, f, protocols, today=TODAY)}


@pytest.mark.parametrize(
    ("text", "start", "end", "dhis2"),
    [
        ("2026", "2026-01-01", "2026-12-31", "2026"),
        ("2026Q4", "2026-10-01", "2026-12-31", "2026Q4"),
        ("2026q1", "2026-01-01", "2026-03-31", "2026Q1"),
        ("202602", "2026-02-01", "2026-02-28", "202602"),
        ("2026W47", "2026-11-16", "2026-11-22", "2026W47"),
        ("2026W01", "2025-12-29", "2026-01-04", "2026W1"),
        ("2026-01-05..2026-02-10", "2026-01-05", "2026-02-10", None),
    ],
)
def test_parse_period(text, start, end, dhis2):
    assert parse_period(text) == Period(date.fromisoformat(start), date.fromisoformat(end), dhis2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026Q5", "Unknown period 2026Q5"),
        ("26Q1", "Unknown period"),
        ("", "Unknown period"),
        ("2025W53", "does not exist"),
        ("202613", "Unknown period"),
        ("2026-02-30..2026-03-01", "does not exist"),
        ("2026-03-01..2026-01-01", "ends (2026-01-01) before it starts"),
    ],
)
def test_parse_period_refuses(text, message):
    with pytest.raises(PeriodError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_period(text)


def test_screening_and_referral_figures(db, protocols, programme):
    got = figures(db, protocols)
    assert got["screened"].value == 7  # Hope was screened in 2025
    assert got["eligible"].value == 6  # Gina was below the cut-off
    assert got["referrals"].value == 2
    assert [(p.key, p.value) for p in got["referrals"].parts] == [("exclusion_psychosis", 1), ("risk_answer", 1)]
    assert got["referrals_open"].value == 2  # Gina's, and Hope's from 2025; Dora's is closed
    assert got["referrals_overdue"].value == 1  # Gina's follow-up was due on 22 February


def test_enrolment_and_cycles(db, protocols, programme):
    got = figures(db, protocols)
    assert got["enrolled"].value == 6  # Esther's transfer is not a second enrolment; Ivy is at MSK
    assert (got["cycles_started"].value, got["cycles_completed"].value, got["cycles_closed_early"].value) == (2, 1, 1)


def test_attendance_counts_a_makeup_for_its_session(db, protocols, programme):
    rate = figures(db, protocols)["attendance_rate"]
    assert (rate.numerator, rate.denominator) == (26, 34)
    assert [(p.key, p.numerator, p.denominator) for p in rate.parts] == [
        ("1", 6, 6),
        ("2", 5, 6),
        ("3", 5, 6),
        ("4", 5, 6),
        ("5", 2, 6),
        ("6", 3, 4),
    ]


def test_completion_and_dropout_by_the_protocol_rule(db, protocols, programme):
    got = figures(db, protocols)
    assert got["members_ended"].value == 6  # Esther once, in cycle B
    assert (got["completion_rate"].numerator, got["completion_rate"].denominator) == (4, 6)
    assert got["completion_rate"].value == pytest.approx(4 / 6)
    dropout = got["dropout_rate"]
    assert (dropout.numerator, dropout.denominator) == (2, 6)
    # Dora stopped after session 2; Esther after session 4 of cycle B (closed early).
    assert [(p.key, p.numerator) for p in dropout.parts] == [("2", 1), ("4", 1)]


def test_symptom_outcome_of_completers(db, protocols, programme):
    got = figures(db, protocols)
    # Agnes 16 -> 6, Betty 12 (screening before enrolment) -> 4 (end form without its cycle),
    # Faith 21 -> 9 (cycle closed early); Carol has no end score (too many answers missing).
    assert got["completers_scored"].value == 3
    assert got["completers_no_end_score"].value == 1
    assert got["completers_baseline_mean"].value == pytest.approx(49 / 3)
    assert got["completers_end_mean"].value == pytest.approx(19 / 3)
    assert got["completers_change_mean"].value == pytest.approx(-10)
    assert got["completers_response_rate"].value == pytest.approx(1)
    assert got["completers_remission_rate"].value == pytest.approx(1 / 3)


def test_symptom_outcome_of_everyone_enrolled(db, protocols, programme):
    got = figures(db, protocols)
    # Plus Dora 18 -> 15 and Esther 14 (pre-group of her first cycle) -> 7 (end of cycle B).
    assert (got["everyone_scored"].value, got["everyone_no_end_score"].value) == (5, 1)
    assert got["everyone_baseline_mean"].value == pytest.approx(16.2)
    assert got["everyone_end_mean"].value == pytest.approx(8.2)
    assert got["everyone_change_mean"].value == pytest.approx(-8)
    assert got["everyone_response_rate"].value == pytest.approx(0.8)  # 7 is exactly half of 14
    assert got["everyone_remission_rate"].value == pytest.approx(0.2)


def test_fidelity(db, protocols, programme):
    got = figures(db, protocols)
    assert (got["fidelity_checklist_rate"].numerator, got["fidelity_checklist_rate"].denominator) == (2, 11)
    assert (got["fidelity_items_rate"].numerator, got["fidelity_items_rate"].denominator) == (12, 14)


def test_transferred_member_keeps_first_baseline_and_is_counted_once(db, protocols, programme):
    f = indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period(HALF))
    found = indicators.records(db, "members_ended", f, protocols, today=TODAY).rows
    esther = [r for r in found if r["name"] == "Esther Test"]
    assert len(esther) == 1
    assert (esther[0]["cycle_code"], esther[0]["outcome"], esther[0]["baseline"], esther[0]["end"]) == (
        "KMP-C002",
        "dropped_out",
        14,
        7,
    )


def test_periods_split_the_figures(db, protocols, programme):
    q1, q2 = figures(db, protocols, "2026Q1"), figures(db, protocols, "2026Q2")
    assert (q1["cycles_completed"].value, q2["cycles_completed"].value) == (0, 1)
    assert (q1["members_ended"].value, q2["members_ended"].value) == (0, 6)
    assert q1["completion_rate"].value is None  # nothing to divide
    assert q1["completers_baseline_mean"].value is None
    assert q1["enrolled"].value + q2["enrolled"].value == 6
    assert q1["attendance_rate"].denominator == 24  # held up to 31 March: A 1-4 (5+5+4+4), B 1-4 (1+1+2+2)
    assert figures(db, protocols, None)["screened"].value == 8  # all time: Hope too


def test_site_filter(db, protocols, programme):
    both = figures(db, protocols, sites=("KMP", "MSK"))
    msk = figures(db, protocols, sites=("MSK",))
    assert (both["screened"].value, both["enrolled"].value) == (8, 7)
    assert (msk["screened"].value, msk["enrolled"].value, msk["cycles_started"].value) == (1, 1, 0)
    assert figures(db, protocols, sites=())["screened"].value == 0


def test_facilitator_protocol_and_group_type_filters(db, protocols, programme):
    amina = users.get_user_by_username(db, "amina")["id"]
    mine = figures(db, protocols, facilitator_id=amina)
    assert (mine["enrolled"].value, mine["cycles_started"].value, mine["members_ended"].value) == (5, 1, 4)
    assert mine["screened"].value == 6  # the screenings Amina gave
    women = figures(db, protocols, group_type="women")
    assert (women["cycles_started"].value, women["cycles_closed_early"].value) == (1, 0)
    other = figures(db, protocols, protocol_id="who-8")
    assert (other["enrolled"].value, other["attendance_rate"].value) == (0, None)
    assert other["screened"].value == 7  # screening is not filtered by protocol
    assert "protocol" not in other["screened"].filtered_by


def test_records_agree_with_the_figures(db, protocols, programme):
    f = indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period(HALF))
    report = indicators.Report(db, f, protocols, today=TODAY)
    for indicator in report.indicators:
        found = report.rows_of(indicator.id)
        expected = indicator.value if indicator.kind == "count" else indicator.denominator
        assert len(found) == expected or indicator.id == "fidelity_items_rate", indicator.id
        for part in indicator.parts:
            rows = report.rows_of(indicator.id, part.key)
            assert len(rows) == (
                part.value
                if indicator.kind == "count"
                else part.numerator
                if indicator.id == "dropout_rate"
                else part.denominator
            ), (indicator.id, part.key)


def test_records_columns_and_unknown_ids(db, protocols, programme):
    f = indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period(HALF))
    found = indicators.records(db, "referrals_overdue", f, protocols, today=TODAY)
    assert found.columns[:2] == ("participant_code", "name")
    assert [(r["name"], r["next_due_on"]) for r in found.rows] == [("Gina Test", "2026-02-22")]
    with pytest.raises(indicators.UnknownIndicator):
        indicators.records(db, "nope", f, protocols, today=TODAY)
    with pytest.raises(indicators.UnknownIndicator):
        indicators.records(db, "screened", f, protocols, today=TODAY, part="x")


def test_value_of_parts(db, protocols, programme):
    found = indicators.compute(
        db, indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period(HALF)), protocols, today=TODAY
    )
    assert indicators.value_of(found, "referrals.risk_answer") == 1
    assert indicators.value_of(found, "referrals.risk_observed") == 0  # none this period
    assert indicators.value_of(found, "dropout_rate.2", "numerator") == 1
    assert indicators.value_of(found, "dropout_rate.5") == 0.0
    assert indicators.value_of(found, "attendance_rate.9") is None  # no session 9: no rate
    assert indicators.value_of(found, "completion_rate", "denominator") == 6


def test_chart_series(db, protocols, programme):
    report = indicators.Report(
        db, indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period("2026Q1")), protocols, today=TODAY
    )
    series = dict(report.enrolment_series())
    assert len(series) == 14 and series["2026W08"] == 5 and series["2026W09"] == 1  # weeks of Q1
    whole = indicators.Report(
        db, indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period(HALF)), protocols, today=TODAY
    )
    assert whole.score_change_by_cycle() == [
        {"cycle_code": "KMP-C001", "members": 3, "baseline": pytest.approx(46 / 3), "end": pytest.approx(25 / 3)},
        {"cycle_code": "KMP-C002", "members": 2, "baseline": 17.5, "end": 8.0},
    ]
